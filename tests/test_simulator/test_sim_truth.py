"""truth.json agrees with the data it describes, and plants what the README says it plants."""

from __future__ import annotations

import json
from collections import Counter

import pytest
from sim_helpers import rows


@pytest.fixture(scope="module")
def truth(tiny_sim):
    return json.loads(tiny_sim.truth.read_text())


def test_truth_is_sorted_json_with_the_parameters(tiny_sim, truth):
    text = tiny_sim.truth.read_text()
    assert text == json.dumps(truth, sort_keys=True, indent=2, ensure_ascii=False) + "\n"
    params = truth["parameters"]
    assert (params["seed"], params["r"], params["alpha"], params["a"], params["b"]) == (
        7,
        0.9,
        15.0,
        0.8,
        6.0,
    )
    assert {"spend_p", "spend_q", "spend_gamma", "customers", "start_date"} <= set(params)
    assert "days" not in params  # the world does not depend on it
    assert truth["as_of"] == "2025-03-01"


def test_figures_match_the_database(truth, query):
    figures = truth["figures"]
    assert query(
        "SELECT sum(total_idr) FROM orders WHERE status = 'completed' AND deleted_at IS NULL"
    ) == [(figures["completed_revenue"],)]
    assert (
        dict(query("SELECT status, count(*) FROM orders GROUP BY 1")) == figures["orders_by_status"]
    )
    assert (
        dict(query("SELECT status, count(*) FROM orders WHERE deleted_at IS NULL GROUP BY 1"))
        == figures["live_orders_by_status"]
    )
    assert (
        dict(query("SELECT substr(signed_up_at, 1, 7), count(*) FROM customers GROUP BY 1"))
        == figures["customers_acquired_by_month"]
    )
    assert (
        dict(query("SELECT acquisition_channel, count(*) FROM customers GROUP BY 1"))
        == figures["customers_by_channel"]
    )
    for table, count in figures["rows"].items():
        assert query(f"SELECT count(*) FROM {table}") == [(count,)]
    assert query("SELECT count(DISTINCT customer_id) FROM orders") == [
        (figures["customers_ordered"],)
    ]
    assert [(s["store_id"], s["store_code"], s["opened_on"]) for s in figures["stores"]] == query(
        "SELECT store_id, store_code, opened_on FROM stores ORDER BY 1"
    )


def test_latent_churn_is_consistent_with_orders(truth, query):
    """A churned guest's dropout is their last purchase, so churn can't outrun ordering guests."""
    figures = truth["figures"]
    churned = sum(figures["customers_churned_by_month"].values())
    assert 0 < churned < figures["customers_ordered"]
    assert figures["customers_alive"] == figures["customers_ordered"] - churned
    # Every churned guest made at least two purchases (a trial and the repeat they left after).
    [(repeaters,)] = query(
        "SELECT count(*) FROM (SELECT customer_id FROM orders GROUP BY 1 HAVING count(*) >= 2)"
    )
    assert churned <= repeaters


def test_planted_store_openings_and_schedule(truth):
    planted = truth["planted"]
    assert planted["store_openings"]["JKT-03"] == "2025-01-28"
    assert planted["store_openings"]["JBR-03"] == "2025-03-17"  # not yet in the DB on 2025-03-01
    assert "JBR-03" not in {s["store_code"] for s in truth["figures"]["stores"]}
    assert planted["seasonal_items"]["items"][0]["sku"] == "SSN-001"


def test_planted_behaviour_shows_in_the_default_world(default_sim):
    """Shares and rates in the data sit where the generative model put them."""
    truth = json.loads(default_sim.truth.read_text())
    db = default_sim.ordering_db
    [(orders, cancelled, refunded, mean_basket)] = rows(
        db,
        "SELECT count(*), avg(status = 'cancelled'), avg(status = 'refunded'), avg(subtotal_idr) "
        "FROM orders",
    )
    assert orders > 5000
    assert 0.03 < cancelled < 0.05 and 0.008 < refunded < 0.025
    params = truth["parameters"]
    expected_basket = params["spend_p"] * params["spend_gamma"] / (params["spend_q"] - 1)
    assert abs(mean_basket / expected_basket - 1) < 0.15
    [(home_share,)] = rows(
        db,
        "SELECT avg(o.store_id = c.home_store_id) "
        "FROM orders o JOIN customers c USING (customer_id)",
    )
    assert home_share > 0.8
    per_guest = dict(
        rows(
            db,
            "SELECT acquisition_channel, count(o.order_id) * 1.0 / count(DISTINCT c.customer_id) "
            "FROM customers c LEFT JOIN orders o USING (customer_id) GROUP BY 1",
        )
    )
    assert per_guest["referral"] > per_guest["organic"] > per_guest["instagram_ads"]
    monthly = truth["figures"]["customers_acquired_by_month"]
    assert monthly["2025-06"] > monthly["2025-01"] * 1.5  # growth plus new stores
    assert 1900 < sum(monthly.values()) < 2100  # `customers` sign-ups over acquisition_days
    weekday = Counter(d for (d,) in rows(db, "SELECT strftime('%w', signed_up_at) FROM customers"))
    assert weekday["6"] + weekday["0"] > 2 / 7 * sum(weekday.values())
