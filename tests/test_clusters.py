"""Behavioural clusters: planted blobs are recovered with the planted k, the same seed gives the
same clusters and names, names speak a marketer's language; then the marts world's customers."""

from __future__ import annotations

import re

import duckdb
import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import make_blobs
from sklearn.metrics import adjusted_rand_score

from regulars.analytics.clusters import FEATURES, cluster_customers

PROFILE_COLUMNS = [
    "cluster_id",
    "cluster_name",
    "cluster_description",
    "customers",
    "share",
    "silhouette",
    "cluster_silhouette",
    "k_chosen",
    "silhouette_by_k",
]


@pytest.fixture(scope="module")
def blobs() -> tuple[pd.DataFrame, np.ndarray]:
    """Five well-separated blobs of unequal size in six generic dimensions."""
    points, planted = make_blobs(
        n_samples=[400, 300, 200, 150, 100],
        n_features=6,
        cluster_std=0.6,
        center_box=(-10, 10),
        random_state=3,
    )
    frame = pd.DataFrame(points, columns=[f"x{i}" for i in range(6)])
    frame.insert(0, "customer_id", np.arange(len(frame)) * 7 + 1000)
    return frame, planted


def test_planted_blobs_and_their_k_are_recovered(blobs):
    frame, planted = blobs
    assignments, profiles = cluster_customers(frame, k_range=range(2, 9))
    assert list(profiles.columns[: len(PROFILE_COLUMNS)]) == PROFILE_COLUMNS
    assert profiles["k_chosen"].unique().tolist() == [5]
    assert profiles["silhouette"].iloc[0] > 0.7
    truth = pd.Series(planted, index=frame["customer_id"]).loc[assignments["customer_id"]]
    assert adjusted_rand_score(truth, assignments["cluster_id"]) == pytest.approx(1.0)
    # Ids by size: the 400-point blob is cluster 1, the 100-point one cluster 5.
    assert profiles["customers"].tolist() == [400, 300, 200, 150, 100]
    assert profiles["cluster_id"].tolist() == [1, 2, 3, 4, 5]
    assert profiles["share"].sum() == pytest.approx(1.0)
    assert sorted(assignments["customer_id"]) == sorted(frame["customer_id"])


def test_same_seed_gives_identical_output_whatever_the_row_order(blobs):
    frame, _ = blobs
    first = cluster_customers(frame, seed=11)
    again = cluster_customers(frame, seed=11)
    shuffled = cluster_customers(frame.sample(frac=1.0, random_state=1), seed=11)
    for one, other in ((first, again), (first, shuffled)):
        pd.testing.assert_frame_equal(one[0], other[0])
        pd.testing.assert_frame_equal(one[1], other[1])


def guests(rng: np.random.Generator) -> pd.DataFrame:
    """Three planted kinds of guests in customer_features' columns: frequent big-spending app
    delivery guests, lapsed one-off web guests who pick up, promo-hunting dine-in lunch guests."""
    kinds = {
        "regular": (300, {"frequency_orders": 12, "monetary_net_revenue": 1.5e6,
                          "delivery_order_share": 0.9, "app_order_share": 0.95,
                          "recency_days": 5, "promo_order_share": 0.1}),
        "lapsed": (250, {"frequency_orders": 1, "monetary_net_revenue": 8e4,
                         "delivery_order_share": 0.1, "app_order_share": 0.1,
                         "recency_days": 120, "promo_order_share": 0.1}),
        "promo": (200, {"frequency_orders": 3, "monetary_net_revenue": 2.5e5,
                        "delivery_order_share": 0.1, "app_order_share": 0.5,
                        "recency_days": 30, "promo_order_share": 0.9}),
    }  # fmt: skip
    frames = []
    for kind, (n, centre) in kinds.items():
        frame = pd.DataFrame({"kind": kind}, index=range(n))
        for column, value in centre.items():
            if column.endswith("_share"):
                frame[column] = np.clip(value + rng.normal(0, 0.05, n), 0, 1)
            else:
                frame[column] = np.maximum(value * rng.lognormal(0, 0.2, n), 0)
        frames.append(frame)
    out = pd.concat(frames, ignore_index=True)
    out["avg_rating"] = np.where(rng.random(len(out)) < 0.6, np.nan, rng.uniform(3, 5, len(out)))
    out.insert(0, "customer_id", np.arange(len(out)))
    return out


def test_names_and_descriptions_speak_of_the_distinguishing_behaviour():
    frame = guests(np.random.default_rng(5))
    assignments, profiles = cluster_customers(frame.drop(columns="kind"), k_range=range(2, 7))
    assert profiles["k_chosen"].iloc[0] == 3
    names = profiles["cluster_name"]
    assert names.is_unique and names.str.len().gt(0).all()
    assert profiles["cluster_description"].is_unique
    assert profiles["cluster_description"].str.contains("guests").all()
    by_kind = (
        assignments.merge(frame[["customer_id", "kind"]], on="customer_id")
        .groupby("kind")["cluster_name"]
        .agg(lambda names: names.mode().iloc[0])
    )
    regular = by_kind["regular"].lower()
    assert "frequent" in regular and "big spenders" in regular and "delivery-heavy" in regular
    assert "lapsed" in by_kind["lapsed"].lower() or "one-off" in by_kind["lapsed"].lower()
    assert "promo hunters" in by_kind["promo"].lower()
    # Every feature clustered on is profiled with its mean.
    assert {f"mean_{c}" for c in frame.columns if c in FEATURES} <= set(profiles.columns)


def test_marts_world_clusters_are_stable_named_and_cover_every_guest(warehouse):
    features = warehouse.sql("select * from marts.customer_features").df()
    assignments, profiles = cluster_customers(features)
    again = cluster_customers(features)
    pd.testing.assert_frame_equal(assignments, again[0])
    pd.testing.assert_frame_equal(profiles, again[1])
    assert len(assignments) == len(features) == assignments["customer_id"].nunique()
    assert 3 <= profiles["k_chosen"].iloc[0] <= 8
    assert profiles["cluster_id"].tolist() == list(range(1, len(profiles) + 1))
    assert profiles["customers"].is_monotonic_decreasing
    assert profiles["customers"].sum() == len(features)
    assert profiles["cluster_name"].is_unique
    assert not profiles["cluster_name"].str.contains(r"\(cluster").any()
    # Frequency and spend are the world's strongest signal: the most frequent cluster must say so.
    top = profiles.sort_values("mean_frequency_orders").iloc[-1]
    assert "frequent" in top["cluster_name"].lower()
    # The dbt model (customer_clusters) ran the same function with the same seed and k range.
    stored = warehouse.sql(
        "select customer_id, cluster_id, cluster_name from marts.customer_clusters"
    ).df()
    expected = assignments[["customer_id", "cluster_id", "cluster_name"]]
    pd.testing.assert_frame_equal(
        stored.sort_values("customer_id").reset_index(drop=True),
        expected.sort_values("customer_id").reset_index(drop=True),
        check_dtype=False,
    )


def test_too_few_guests_is_its_own_error_and_the_empty_table_is_typed():
    """A chain without orders yet has no guests to cluster: the dbt model then writes an empty,
    typed table instead of failing the build (tests/test_source_matrix.py runs it)."""
    import pandas as pd

    from regulars.analytics.clusters import TooFewCustomers, cluster_customers, unclustered

    for guests in (0, 2, 3):
        features = pd.DataFrame({"customer_id": range(guests), "orders": range(guests)})
        with pytest.raises(TooFewCustomers, match=f"{guests} rows cannot be split"):
            cluster_customers(features, k_range=range(3, 9))
    # The empty table has the columns a clustering run writes, as DuckDB will type them.
    features, _ = make_blobs(n_samples=60, centers=3, n_features=2, random_state=1)
    frame = pd.DataFrame({"customer_id": range(60), "orders": features[:, 0]})
    assignments, profiles = cluster_customers(frame, k_range=range(3, 4))
    per_run = ["silhouette", "cluster_silhouette", "k_chosen", "silhouette_by_k"]
    fitted = assignments.merge(profiles[["cluster_id", *per_run]], on="cluster_id")
    empty = unclustered()
    assert empty.empty
    assert list(empty.columns) == list(fitted.columns)
    as_sql = duckdb.sql("select * from empty").types
    assert [str(t) for t in as_sql] == [str(t) for t in duckdb.sql("select * from fitted").types]


def test_descriptions_print_money_in_the_chains_currency():
    frame = guests(np.random.default_rng(5)).drop(columns="kind")
    _, profiles = cluster_customers(frame, k_range=range(2, 7), currency="USD")
    described = " ".join(profiles["cluster_description"])
    assert re.search(r"(spend|average order) USD [\d,]+ \(all USD [\d,]+\)", described)
    assert "Rp" not in described


def test_k_chosen_on_a_sample_of_a_large_chain_finds_the_same_clusters():
    """Above max_rows_for_choosing_k guests, the k are tried on a seeded sample and only the
    chosen one is fitted on everyone: same k and same grouping as trying every k on everyone."""
    frame = guests(np.random.default_rng(5)).drop(columns="kind")
    everyone, full_profiles = cluster_customers(frame, k_range=range(2, 7))
    sampled, sampled_profiles = cluster_customers(
        frame, k_range=range(2, 7), max_rows_for_choosing_k=len(frame) // 4
    )
    assert sampled_profiles["k_chosen"].iloc[0] == full_profiles["k_chosen"].iloc[0] == 3
    pairs = everyone.merge(sampled, on="customer_id")
    # Cluster ids are by size, so the same grouping has the same ids.
    assert (pairs["cluster_id_x"] == pairs["cluster_id_y"]).mean() > 0.99
    # Only the k tried differ in their silhouette: the chosen one is the full fit's.
    assert sampled_profiles["silhouette"].iloc[0] == full_profiles["silhouette"].iloc[0]
