"""Behavioural clusters of ordering guests (regulars.analytics.clusters), named for a marketer.

Reads customer_features; k is chosen by silhouette within [cluster_k_min, cluster_k_max] and the
seed makes a rebuild on the same data give the same clusters. With fewer guests than the
smallest k (a young chain, or one without order data) the table is empty, its columns typed.
"""

from regulars.analytics.clusters import TooFewCustomers, cluster_customers, unclustered
from regulars.analytics.relations import from_pandas, to_pandas


def model(dbt, session):
    dbt.config(materialized="table")
    k_min, k_max = int(dbt.config.get("cluster_k_min")), int(dbt.config.get("cluster_k_max"))
    # Empty when `[chain] currency` is unset: the descriptions then print bare amounts.
    currency = dbt.config.get("chain_currency")
    try:
        assignments, profiles = cluster_customers(
            to_pandas(dbt.ref("customer_features")),
            k_range=range(k_min, k_max + 1),
            seed=int(dbt.config.get("cluster_seed")),
            currency=currency or None,
        )
    except TooFewCustomers:
        return from_pandas(unclustered(), session)
    per_run = ["silhouette", "cluster_silhouette", "k_chosen", "silhouette_by_k"]
    run = profiles[["cluster_id", *per_run]]
    clusters = assignments.merge(run, on="cluster_id", how="left", validate="many_to_one")
    return from_pandas(clusters, session)
