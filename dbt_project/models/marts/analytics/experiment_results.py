"""Experiment readouts (regulars.analytics.experiments): per experiment, variation and metric,
the lift against control with its 95% interval and p-value, CUPED-adjusted, and a sample-ratio
mismatch test that marks a readout untrustworthy."""

from regulars.analytics.experiments import UNIT_COLUMNS, experiment_readouts
from regulars.analytics.relations import from_pandas, to_pandas


def model(dbt, session):
    dbt.config(materialized="table")
    units = to_pandas(dbt.ref("experiment_exposures"), columns=UNIT_COLUMNS)
    return from_pandas(experiment_readouts(units), session)
