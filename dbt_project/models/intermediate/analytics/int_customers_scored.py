"""Every ordering guest scored by the lifetime value model, with the run's fit beside each row.

The fit (BG/NBD + Gamma-Gamma, regulars.analytics.lifetime_value) sees only what a chain's old
POS export also has: customer, day and amount of each completed order. Two marts split this
table: customer_lifetime_value (per guest) and clv_model_runs (one row per fit, kept over runs).
A fit that cannot tell who is still a customer (run_fit_is_reliable false, run_fit_warning says
why) leaves the dropout-dependent forecasts null.

The fit reads the orders of the sources still recording in the hold-out window: an import that
ended before it (an old POS export, replaced by the ordering platform) would make every guest
only it knew look lost when it is the file that stopped, not the guests. A chain whose only data
is an import that runs to the end is fitted on it whole.

Refits: the calibration period ends on the last day of a clv_refit_every_days step (a week by
default), and a build whose calibration data is the one this table's last fit saw takes that
fit's parameters (run_parameters_reused) instead of compiling and fitting the models again. Every
guest is still scored on the day's orders, so a daily build costs the scoring, and a full rebuild
gives the same table as the increments did (the fit is deterministic).
"""

from datetime import date

from regulars.analytics.lifetime_value import (
    NotEnoughHistory,
    default_calibration_end,
    fit_lifetime_value,
    unscored,
)
from regulars.analytics.relations import first_row, from_pandas, to_pandas


def model(dbt, session):
    # A table, not the folder's view: a Python model cannot be a view, and the fit is costly.
    dbt.config(materialized="table")
    calibration_end = dbt.config.get("clv_calibration_end")
    calibration_end = date.fromisoformat(calibration_end) if calibration_end else None
    holdout_days = int(dbt.config.get("clv_holdout_days"))
    refit_every_days = int(dbt.config.get("clv_refit_every_days"))
    orders = to_pandas(
        dbt.ref("fct_orders"),
        where="is_completed and customer_id is not null",
        columns=[
            "customer_id",
            "placed_date as order_date",
            "net_revenue as amount",
            "source_system",
        ],
    )
    orders = still_recording(orders, calibration_end, holdout_days, refit_every_days)
    previous = first_row(dbt.this, session)
    try:
        customers, run = fit_lifetime_value(
            orders,
            calibration_end=calibration_end,
            holdout_days=holdout_days,
            high_risk_below=float(dbt.config.get("churn_risk_high_below")),
            low_risk_from=float(dbt.config.get("churn_risk_low_from")),
            refit_every_days=refit_every_days,
            previous_fit=_run_fields(previous),
        )
    except NotEnoughHistory:
        return from_pandas(unscored(run_prefix="run_"), session)
    for name, value in run.as_row().items():
        customers[f"run_{name}"] = value
    # A reliable run's warning is None, which pandas leaves untyped and DuckDB would store as an
    # integer column; text either way keeps the table's type from run to run.
    customers["run_fit_warning"] = customers["run_fit_warning"].astype("string")
    return from_pandas(customers, session)


def _run_fields(row):
    """The previous build's run (what fit_lifetime_value returned as run_*), None when there was
    none: a first build, a chain with nothing to fit, or a table from before the run's digest."""
    if row is None or row.get("run_calibration_digest") is None:
        return None
    return {name.removeprefix("run_"): value for name, value in row.items()}


def still_recording(orders, calibration_end, holdout_days, refit_every_days):
    """The orders of the sources whose newest order falls after the calibration end.

    The calibration end is the fit's own default (regulars.analytics.lifetime_value) over all the
    orders, unless configured.
    """
    if orders.empty:
        return orders
    days = orders["order_date"].astype("datetime64[us]")
    if calibration_end is None:
        calibration_end = default_calibration_end(
            days.min().date(), days.max().date(), holdout_days, refit_every_days
        )
    cutoff = days.dtype.type(calibration_end)
    newest_of_source = days.groupby(orders["source_system"]).transform("max")
    return orders[newest_of_source > cutoff].drop(columns="source_system")
