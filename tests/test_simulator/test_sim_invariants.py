"""Business invariants of the generated ordering data, checked in SQL against the database."""

from __future__ import annotations

import json
from datetime import date, datetime

import numpy as np
import pytest
from sim_helpers import rows

from simulator import WorldConfig
from simulator.model.catalog import PROMOS
from simulator.model.clock import DAY_US, day_start_us
from simulator.model.timeline import simulate

STATUSES = {"placed", "preparing", "completed", "cancelled", "refunded"}


def test_money_adds_up(query):
    assert query(
        "SELECT count(*) FROM order_items WHERE line_total_idr != quantity * unit_price_idr"
    ) == [(0,)]
    assert query(
        """
        SELECT count(*) FROM orders o
        JOIN (SELECT order_id, sum(line_total_idr) AS lines FROM order_items GROUP BY 1) i
          USING (order_id)
        WHERE o.subtotal_idr != i.lines
        """
    ) == [(0,)]
    assert query(
        "SELECT count(*) FROM orders "
        "WHERE total_idr != subtotal_idr - discount_idr + delivery_fee_idr"
    ) == [(0,)]
    assert query("SELECT DISTINCT currency FROM orders") == [("IDR",)]
    # Every order has 1-5 distinct dishes; quantities and prices are positive whole rupiah.
    [(fewest, most, repeated)] = query(
        "SELECT min(lines), max(lines), sum(dishes != lines) FROM (SELECT count(*) AS lines, "
        "count(DISTINCT menu_item_id) AS dishes FROM order_items GROUP BY order_id)"
    )
    assert (fewest, most, repeated) == (1, 5, 0)
    assert query(
        "SELECT count(*) FROM orders WHERE order_id NOT IN (SELECT order_id FROM order_items)"
    ) == [(0,)]
    assert query("SELECT min(quantity), min(unit_price_idr) >= 15000 FROM order_items") == [(1, 1)]


def test_fees_and_promos(query):
    assert query(
        "SELECT count(*) FROM orders WHERE (fulfilment_type = 'delivery') != (delivery_fee_idr > 0)"
    ) == [(0,)]
    assert query(
        "SELECT count(*) FROM orders WHERE (promo_code IS NULL) != (discount_idr = 0)"
    ) == [(0,)]
    assert query(
        "SELECT count(*) FROM orders WHERE discount_idr > subtotal_idr OR discount_idr % 100 != 0"
    ) == [(0,)]
    codes = {
        code
        for (code,) in query("SELECT DISTINCT promo_code FROM orders WHERE promo_code IS NOT NULL")
    }
    assert codes <= {p.code for p in PROMOS} and "WELCOME20" in codes
    # WELCOME20 only ever on a guest's first order.
    assert query(
        """
        SELECT count(*) FROM orders o WHERE promo_code = 'WELCOME20'
        AND EXISTS (
            SELECT 1 FROM orders e WHERE e.customer_id = o.customer_id AND e.placed_at < o.placed_at
        )
        """
    ) == [(0,)]


def test_no_order_before_the_store_opens_or_the_guest_signs_up(query):
    assert query(
        "SELECT count(*) FROM orders o JOIN stores s USING (store_id) "
        "WHERE date(o.placed_at) < s.opened_on"
    ) == [(0,)]
    assert query(
        "SELECT count(*) FROM orders o JOIN customers c USING (customer_id) "
        "WHERE o.placed_at <= c.signed_up_at"
    ) == [(0,)]
    assert query(
        "SELECT count(*) FROM customers c JOIN stores s ON s.store_id = c.home_store_id "
        "WHERE date(c.signed_up_at) < s.opened_on"
    ) == [(0,)]
    # A store opening inside the period takes orders from its opening day, not before.
    [(code, opened_on, first_order)] = query(
        "SELECT store_code, opened_on, min(date(placed_at)) "
        "FROM stores JOIN orders USING (store_id) WHERE opened_on >= '2025-01-01' GROUP BY 1, 2"
    )
    assert code == "JKT-03" and opened_on <= first_order


def test_status_lifecycle(query):
    assert {s for (s,) in query("SELECT DISTINCT status FROM orders")} <= STATUSES
    by_status = dict(
        query(
            """
            SELECT status, count(*) FROM orders WHERE
                 (status = 'completed' AND completed_at IS NOT NULL
                  AND cancelled_at IS NULL AND refunded_at IS NULL)
              OR (status = 'refunded' AND completed_at IS NOT NULL
                  AND refunded_at > completed_at AND cancelled_at IS NULL)
              OR (status = 'cancelled' AND cancelled_at > placed_at
                  AND completed_at IS NULL AND refunded_at IS NULL)
            GROUP BY status
            """
        )
    )
    assert sum(by_status.values()) == query("SELECT count(*) FROM orders")[0][0]
    assert set(by_status) == {"completed", "refunded", "cancelled"}
    assert query("SELECT count(*) FROM orders WHERE completed_at < placed_at") == [(0,)]
    # updated_at is the latest thing that happened to the order.
    assert query(
        """
        SELECT count(*) FROM orders WHERE updated_at != max(
            placed_at, coalesce(completed_at, ''), coalesce(cancelled_at, ''),
            coalesce(refunded_at, ''), coalesce(deleted_at, ''))
        """
    ) == [(0,)]
    assert query("SELECT count(*) FROM orders WHERE created_at != placed_at") == [(0,)]
    assert query(
        "SELECT count(*) FROM order_items i JOIN orders o USING (order_id) "
        "WHERE i.created_at != o.placed_at OR i.updated_at != i.created_at"
    ) == [(0,)]


def test_orders_follow_day_parts_in_local_time(query):
    hours = query(
        "SELECT cast(strftime('%H', placed_at) AS int) "
        "  + CASE WHEN s.province = 'Bali' THEN 8 ELSE 7 END "  # WITA, else WIB
        "FROM orders JOIN stores s USING (store_id)"
    )
    local = [h for (h,) in hours]
    assert min(local) >= 9 and max(local) <= 22
    lunch = sum(11 <= h <= 13 for h in local)
    afternoon = sum(14 <= h <= 16 for h in local)
    dinner = sum(18 <= h <= 20 for h in local)
    assert lunch > afternoon and dinner > afternoon


def test_unit_prices_are_the_menu_price_of_the_day(tiny_sim, query):
    truth = json.loads(tiny_sim.truth.read_text())
    changes = truth["planted"]["price_reviews"]["changes"]
    assert changes and {c["date"] for c in changes} == {"2025-01-31"}
    repriced = {c["sku"]: c["new_price"] for c in changes}
    sold = query(
        "SELECT m.sku, date(i.created_at) >= '2025-01-31', i.unit_price_idr, m.price_idr "
        "FROM order_items i JOIN menu_items m USING (menu_item_id)"
    )
    assert all(
        price == current for sku, after, price, current in sold if after or sku not in repriced
    )
    before = {(sku, price) for sku, after, price, _ in sold if not after and sku in repriced}
    assert before and all(price < repriced[sku] for sku, price in before)


def test_customers_have_plausible_profiles(query):
    values = query(
        "SELECT email, phone, full_name, preferred_platform, acquisition_channel FROM customers"
    )
    assert all(email.endswith((".com", ".co.id")) and "@" in email for email, *_ in values)
    assert all(phone is None or phone.startswith("+628") for _, phone, *_ in values)
    assert {p for *_, p, _ in values} == {"app", "web"}
    assert {c for *_, c in values} == {
        "organic",
        "instagram_ads",
        "google_search",
        "referral",
        "email_sms",
    }
    assert query("SELECT count(DISTINCT email) = count(*) FROM customers") == [(1,)]
    assert query(
        "SELECT count(*) FROM customers WHERE updated_at < created_at OR created_at != signed_up_at"
    ) == [(0,)]


@pytest.fixture(scope="module")
def default_rows(default_sim):
    return lambda sql: rows(default_sim.ordering_db, sql)


def test_closed_accounts_are_scrubbed_and_stop_ordering(default_rows):
    closed = default_rows(
        "SELECT email, phone, full_name, accepts_email_marketing, accepts_sms_marketing, "
        "deleted_at = updated_at FROM customers WHERE deleted_at IS NOT NULL"
    )
    assert len(closed) >= 10
    assert set(closed) == {(None, None, None, 0, 0, 1)}
    assert default_rows(
        "SELECT count(*) FROM orders o JOIN customers c USING (customer_id) "
        "WHERE o.placed_at >= c.deleted_at"
    ) == [(0,)]


def test_soft_deleted_orders_and_menu_items(default_rows):
    [(deleted, total)] = default_rows("SELECT count(deleted_at), count(*) FROM orders")
    assert 0 < deleted < total * 0.01
    assert default_rows("SELECT count(*) FROM orders WHERE deleted_at < placed_at") == [(0,)]
    # The first seasonal dish: launched day 20, sold out day 76, deleted day 104.
    assert default_rows(
        "SELECT sku, is_available, substr(created_at, 1, 10), substr(deleted_at, 1, 10) "
        "FROM menu_items WHERE sku = 'SSN-001'"
    ) == [("SSN-001", 0, "2025-01-21", "2025-04-15")]
    [(last_sold,)] = default_rows(
        "SELECT max(date(i.created_at)) FROM order_items i JOIN menu_items m USING (menu_item_id) "
        "WHERE m.sku = 'SSN-001'"
    )
    assert date.fromisoformat(last_sold) < date(2025, 3, 18)


def test_profiles_and_consent_change_over_time(default_rows):
    [(edited, total)] = default_rows("SELECT sum(updated_at > created_at), count(*) FROM customers")
    assert 0.2 * total < edited < 0.6 * total
    stamps = [
        datetime.fromisoformat(u) for (u,) in default_rows("SELECT updated_at FROM customers")
    ]
    assert max(stamps) <= datetime(2025, 6, 29, 23, 59, 59, 999999)


def test_a_small_chain_has_days_whose_only_orders_a_campaign_brought():
    """30 guests over 200 days: on a quiet day the campaigns' orders stand alone. Until they were
    generated without a base day to merge into, such a world stopped the build (an empty basket
    sum), so any small chain with a year of history could not be simulated."""
    config = WorldConfig(seed=7, customers=30, days=200, acquisition_days=200)
    timeline = simulate(config, config.first_as_of)
    orders, lines = timeline.orders, timeline.lines
    placed_day = (orders.placed_us - day_start_us(config.start_date, 0)) // DAY_US
    by_campaign = orders.campaign >= 0
    campaign_only_days = [
        day for day in np.unique(placed_day) if by_campaign[placed_day == day].all()
    ]
    assert campaign_only_days, "the world no longer has the case this test is for"
    line_sums = np.bincount(lines.order_row, weights=lines.line_total, minlength=orders.total.size)
    np.testing.assert_array_equal(line_sums, orders.subtotal)
