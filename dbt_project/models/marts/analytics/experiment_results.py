"""Experiment readouts (regulars.analytics.experiments): per experiment, variation and metric,
the lift against control with its 95% interval and p-value, CUPED-adjusted, and a sample-ratio
mismatch test that marks a readout untrustworthy."""

from regulars.analytics.experiments import experiment_readouts


def model(dbt, session):
    dbt.config(materialized="table")
    units = dbt.ref("experiment_exposures").df()
    return experiment_readouts(units)
