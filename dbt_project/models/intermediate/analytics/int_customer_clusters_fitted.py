"""The behavioural clusters as fitted (regulars.analytics.clusters), one row per cluster: its
name, description, size and silhouette on the fit's day, its centroid, and the scaling that puts
any day's features beside it. customer_clusters assigns every guest with it.

The fit reads the rows of int_customer_features_as_of as of the refit day: the last day of a
cluster_refit_every_days step at least cluster_refit_settle_days before the latest. A build whose
features digest (those features, the fit's settings and code) is the one this table's fit
carries keeps that fit (parameters_reused) instead of trying every k again. A week of daily
builds then shares one fit, and a segment its name and centroid, and a full rebuild fits on the
same features the daily builds did (the fit is seeded), so it gives the same table.
"""

from regulars.analytics.clusters import fit_or_keep, with_menu_shares
from regulars.analytics.relations import from_pandas, previous_rows, to_pandas


def model(dbt, session):
    # A table, not the folder's view: a Python model cannot be a view, and the fit is kept.
    dbt.config(materialized="table")
    k_min, k_max = int(dbt.config.get("cluster_k_min")), int(dbt.config.get("cluster_k_max"))
    # A statement of its own: dbt passes a Python model only the configs its parser finds, and
    # the parser does not look inside `x or y` in a call's argument, where this read was: the
    # build got None, and the descriptions printed bare amounts whatever the chain's currency.
    currency = dbt.config.get("chain_currency")
    refit_day = "as_of_kind = 'refit_day'"
    features = with_menu_shares(
        to_pandas(dbt.ref("int_customer_features_as_of"), where=refit_day),
        to_pandas(dbt.ref("int_customer_menu_mix_as_of"), where=refit_day),
    )
    fitted = fit_or_keep(
        features,
        previous_rows(dbt.this, session),
        k_range=range(k_min, k_max + 1),
        seed=int(dbt.config.get("cluster_seed")),
        # Empty when `[chain] currency` is unset: the descriptions then print bare amounts.
        currency=currency or None,
    )
    return from_pandas(fitted, session)
