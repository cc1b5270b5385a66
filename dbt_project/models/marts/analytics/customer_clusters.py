"""Every ordering guest of customer_features in a behavioural cluster, named for a marketer.

The clusters are the week's fit (int_customer_clusters_fitted: k chosen by silhouette within
[cluster_k_min, cluster_k_max], seeded, on the features as of the refit day); each guest goes to
the nearest centroid by today's features, scaled as the fit scaled its own. A segment keeps its
id, name and description for the week while its guests move as they behave. Without a fit (a
chain with too few guests on the refit day, or no order data) the table is empty, its columns
typed.
"""

from regulars.analytics.clusters import (
    assign_clusters,
    fit_from_frame,
    unclustered,
    with_menu_shares,
)
from regulars.analytics.relations import from_pandas, to_pandas


def model(dbt, session):
    dbt.config(materialized="table")
    fitted = to_pandas(dbt.ref("int_customer_clusters_fitted"))
    if fitted.empty:
        return from_pandas(unclustered(), session)
    features = with_menu_shares(
        to_pandas(dbt.ref("customer_features")), to_pandas(dbt.ref("customer_menu_mix"))
    )
    return from_pandas(assign_clusters(features, fit_from_frame(fitted)), session)
