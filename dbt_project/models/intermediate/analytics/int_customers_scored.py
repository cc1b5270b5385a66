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
"""

from datetime import date, timedelta

from regulars.analytics.lifetime_value import NotEnoughHistory, fit_lifetime_value, unscored
from regulars.analytics.relations import from_pandas, to_pandas


def model(dbt, session):
    # A table, not the folder's view: a Python model cannot be a view, and the fit is costly.
    dbt.config(materialized="table")
    calibration_end = dbt.config.get("clv_calibration_end")
    calibration_end = date.fromisoformat(calibration_end) if calibration_end else None
    holdout_days = int(dbt.config.get("clv_holdout_days"))
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
    orders = still_recording(orders, calibration_end, holdout_days)
    try:
        customers, run = fit_lifetime_value(
            orders,
            calibration_end=calibration_end,
            holdout_days=holdout_days,
            high_risk_below=float(dbt.config.get("churn_risk_high_below")),
            low_risk_from=float(dbt.config.get("churn_risk_low_from")),
        )
    except NotEnoughHistory:
        return from_pandas(unscored(run_prefix="run_"), session)
    for name, value in run.as_row().items():
        customers[f"run_{name}"] = value
    # A reliable run's warning is None, which pandas leaves untyped and DuckDB would store as an
    # integer column; text either way keeps the table's type from run to run.
    customers["run_fit_warning"] = customers["run_fit_warning"].astype("string")
    return from_pandas(customers, session)


def still_recording(orders, calibration_end, holdout_days):
    """The orders of the sources whose newest order falls after the calibration end.

    The calibration end is the fit's own default (regulars.analytics.lifetime_value) over all the
    orders, unless configured.
    """
    if orders.empty:
        return orders
    days = orders["order_date"].astype("datetime64[us]")
    if calibration_end is None:
        newest, oldest = days.max(), days.min()
        holdout_days = min(holdout_days, (newest - oldest).days // 3)
        cutoff = newest - timedelta(days=holdout_days)
    else:
        cutoff = days.dtype.type(calibration_end)
    newest_of_source = days.groupby(orders["source_system"]).transform("max")
    return orders[newest_of_source > cutoff].drop(columns="source_system")
