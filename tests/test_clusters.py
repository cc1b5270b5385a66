"""Behavioural clusters: planted blobs are recovered with the planted k, the same seed gives the
same clusters and names, names speak a marketer's language; a fit kept as a table assigns as it
fitted, and is kept while its features do not change; then the marts world's customers."""

from __future__ import annotations

import re

import duckdb
import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import make_blobs
from sklearn.metrics import adjusted_rand_score

from regulars.analytics import clusters
from regulars.analytics.clusters import (
    FEATURES,
    assign_clusters,
    cluster_customers,
    fit_clusters,
    fit_from_frame,
    fit_or_keep,
    fit_to_frame,
    with_menu_shares,
)

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


def test_the_menu_block_is_the_chains_own_categories():
    # A jaffle shop's menu: the categories were six fixed columns of the simulator's menu (mains,
    # noodles, ...), so any other menu clustered on zeros and no segment spoke of it.
    rng = np.random.default_rng(8)
    features = guests(rng).drop(columns="kind")
    beverage_fans = features["customer_id"] % 3 == 0
    share = np.where(beverage_fans, 0.8, 0.1) + rng.normal(0, 0.03, len(features))
    # The first three guests bought only jaffles: no beverage row, read as a share of 0.
    share[:3] = 0.0
    ids = features["customer_id"]
    beverage = pd.DataFrame({"customer_id": ids, "category": "cold beverage", "item_share": share})
    jaffle = pd.DataFrame({"customer_id": ids, "category": "jaffle", "item_share": 1 - share})
    mix = pd.concat([beverage.iloc[3:], jaffle])
    wide = with_menu_shares(features, mix)
    assert [c for c in wide.columns if c.startswith("menu_share:")] == [
        "menu_share:cold beverage",
        "menu_share:jaffle",
    ]
    assert wide.loc[wide["customer_id"] == 0, "menu_share:cold beverage"].item() == 0.0
    fit, assignments = fit_clusters(wide, k_range=range(2, 9))
    # One block of two columns: each weighs 1/sqrt(2), as the four day-parts weigh 1/2 each.
    menu = [i for i, c in enumerate(fit.columns) if c.startswith("menu_share:")]
    assert np.allclose(fit.weights[menu], 1 / np.sqrt(2))
    # The beverage fans are told apart, in the menu's own words.
    fans = assignments.merge(wide, on="customer_id")
    by_fans = fans.groupby(fans["menu_share:cold beverage"] > 0.5)["cluster_name"].agg(
        lambda names: names.mode().iloc[0]
    )
    assert "heavy on cold beverage" in by_fans[True].lower()
    assert "heavy on cold beverage" not in by_fans[False].lower()
    assert fit.profiles["cluster_description"].str.contains("cold beverage share of items").any()
    # A category nobody bought any more is a share of 0 for today's guests, not a failure.
    today = with_menu_shares(features, mix[mix["category"] == "jaffle"])
    assert len(assign_clusters(today, fit)) == len(features)


def test_a_fit_kept_as_a_table_assigns_every_guest_as_it_fitted_them():
    """The fit's table gives back its scaling and centroids to the bit, and assigning the fitted
    guests (in any order) through it gives each the cluster the fit gave, with its profile."""
    frame = guests(np.random.default_rng(5)).drop(columns="kind")
    fit, assignments = fit_clusters(frame, k_range=range(2, 7))
    table = fit_to_frame(fit)
    assert table["cluster_id"].tolist() == list(range(1, len(table) + 1))
    kept = fit_from_frame(table.sample(frac=1.0, random_state=2))
    for name in ("fill", "center", "scale", "weights", "centroids"):
        assert np.array_equal(getattr(kept, name), getattr(fit, name)), name
    assert kept.columns == fit.columns and kept.log_columns == [
        "frequency_orders",
        "monetary_net_revenue",
    ]
    assigned = assign_clusters(frame.sample(frac=1.0, random_state=3), kept)
    expected = assignments.merge(
        fit.profiles[["cluster_id", *clusters.ASSIGNED_FROM_FIT[2:]]], on="cluster_id"
    )
    # Read back from the table, the text columns are pandas' nullable strings.
    pd.testing.assert_frame_equal(assigned, expected[assigned.columns.tolist()], check_dtype=False)
    # A guest whose rating is missing is scaled as the fit scaled one: the mean, z = 0.
    assert frame["avg_rating"].isna().sum() > 100
    # Lapsed on the fit's day, the same guest back at a regular's pace is a regular now.
    lapsed = assignments.loc[frame["recency_days"].idxmax()]
    regular = assignments.loc[frame["frequency_orders"].idxmax(), "cluster_id"]
    back = frame.loc[frame["customer_id"] == lapsed["customer_id"]].copy()
    back[["frequency_orders", "monetary_net_revenue", "recency_days"]] = [14, 1.8e6, 2]
    back[["delivery_order_share", "app_order_share", "promo_order_share"]] = [0.9, 0.95, 0.1]
    assert lapsed["cluster_id"] != regular
    assert assign_clusters(back, kept)["cluster_id"].tolist() == [regular]
    with pytest.raises(KeyError, match="recency_days"):
        assign_clusters(frame.drop(columns="recency_days"), kept)


def test_the_fit_is_kept_while_its_features_are_the_same_and_fitted_again_when_one_changes(
    monkeypatch,
):
    frame = guests(np.random.default_rng(5)).drop(columns="kind")
    frame["as_of_date"] = pd.Timestamp("2025-03-16")
    first = fit_or_keep(frame, None, k_range=range(2, 7))
    assert not first["parameters_reused"].any()
    assert first["features_as_of"].astype(str).unique().tolist() == ["2025-03-16"]

    # DuckDB gives the table back with the date as a timestamp and its rows in any order.
    stored = duckdb.sql("select * from first order by cluster_id desc").df()
    with monkeypatch.context() as patched:
        patched.setattr(clusters, "fit_clusters", lambda *a, **k: pytest.fail("fitted again"))
        kept = fit_or_keep(frame.sample(frac=1.0, random_state=4), stored, k_range=range(2, 7))
    assert kept["parameters_reused"].all()
    pd.testing.assert_frame_equal(
        kept.drop(columns="parameters_reused"), first.drop(columns="parameters_reused")
    )
    types = "select * exclude (parameters_reused) from {}"
    assert duckdb.sql(types.format("kept")).types == duckdb.sql(types.format("first")).types

    # One guest's spend, or another seed: fitted again.
    changed = frame.copy()
    changed.loc[0, "monetary_net_revenue"] += 1
    refitted = fit_or_keep(changed, stored, k_range=range(2, 7))
    assert not refitted["parameters_reused"].any()
    assert (refitted["features_digest"] != first["features_digest"]).all()
    reseeded = fit_or_keep(frame, stored, k_range=range(2, 7), seed=8)
    assert not reseeded["parameters_reused"].any()

    # Too few guests on the refit day: no fit, the table's columns typed all the same.
    empty = fit_or_keep(frame.head(2), stored, k_range=range(3, 7))
    assert empty.empty
    assert duckdb.sql(types.format("empty")).types == duckdb.sql(types.format("first")).types


def test_marts_world_clusters_are_the_weeks_fit_assigned_and_cover_every_guest(warehouse):
    at_refit = with_menu_shares(
        warehouse.sql(
            "select * from intermediate.int_customer_features_as_of where as_of_kind = 'refit_day'"
        ).df(),
        warehouse.sql(
            "select * from intermediate.int_customer_menu_mix_as_of where as_of_kind = 'refit_day'"
        ).df(),
    )
    features = with_menu_shares(
        warehouse.sql("select * from marts.customer_features").df(),
        warehouse.sql("select * from marts.customer_menu_mix").df(),
    )
    # The simulator's menu, each category a feature.
    menu = ("desserts", "drinks", "mains", "noodles", "rice_bowls", "snacks")
    assert [c for c in features.columns if c.startswith("menu_share:")] == [
        f"menu_share:{c}" for c in menu
    ]
    # The refit day: the last Sunday at least a week (cluster_refit_settle_days) before the as-of,
    # and the orders placed by then.
    (as_of,) = features["as_of_date"].dt.date.unique()
    (refit_day,) = at_refit["as_of_date"].dt.date.unique()
    assert refit_day.isoweekday() == 7 and 7 <= (as_of - refit_day).days < 14
    # The refit day has fewer guests, and the accounts closed since: customer_features has not.
    closed = warehouse.sql(
        "select customer_id from intermediate.int_customers_unioned where is_deleted"
    ).df()["customer_id"]
    assert len(at_refit) < len(features)
    assert set(at_refit["customer_id"]) - set(features["customer_id"]) <= set(closed)
    both = at_refit.merge(features, on="customer_id", suffixes=("_then", "_now"))
    assert (both["frequency_orders_then"] <= both["frequency_orders_now"]).all()
    assert (both["last_order_date_then"].dt.date <= refit_day).all()
    fit, assignments = fit_clusters(at_refit)
    profiles = fit.profiles
    assert 3 <= profiles["k_chosen"].iloc[0] <= 8
    assert profiles["cluster_id"].tolist() == list(range(1, len(profiles) + 1))
    assert profiles["customers"].is_monotonic_decreasing
    assert profiles["customers"].sum() == len(at_refit)
    assert profiles["cluster_name"].is_unique
    assert not profiles["cluster_name"].str.contains(r"\(cluster").any()
    # Frequency and spend are the world's strongest signal: the most frequent cluster must say so.
    top = profiles.sort_values("mean_frequency_orders").iloc[-1]
    assert "frequent" in top["cluster_name"].lower()
    # The dbt models fitted the same function with the same seed and k range on the refit day's
    # features, and assigned every guest of the as-of by today's.
    fitted = warehouse.sql("select * from intermediate.int_customer_clusters_fitted").df()
    assert not fitted["parameters_reused"].any(), "the marts world's one build fitted"
    # The chain's currency reaches the build's descriptions (dbt's parser once dropped it).
    money = fitted["cluster_description"].str.contains("spend|average order")
    assert money.any() and fitted.loc[money, "cluster_description"].str.contains("IDR ").all()
    assert (
        fitted.sort_values("cluster_id")["cluster_name"].tolist()
        == profiles["cluster_name"].tolist()
    )
    stored = warehouse.sql(
        "select customer_id, cluster_id, cluster_name from marts.customer_clusters"
    ).df()
    expected = assign_clusters(features, fit)[["customer_id", "cluster_id", "cluster_name"]]
    assert len(stored) == len(features) == stored["customer_id"].nunique()
    pd.testing.assert_frame_equal(
        stored.sort_values("customer_id").reset_index(drop=True),
        expected.sort_values("customer_id").reset_index(drop=True),
        check_dtype=False,
    )
    # A few days on, most guests are where the fit put them: the same clusters, not new ones.
    stayed = assignments.merge(stored, on="customer_id", suffixes=("_fitted", "_now"))
    assert (stayed["cluster_id_fitted"] == stayed["cluster_id_now"]).mean() > 0.9


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
