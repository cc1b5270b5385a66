"""Email/SMS campaigns: Customer.io's webhook format, who may be sent to, the holdout, retried
deliveries, and the planted uplift on ordering."""

from __future__ import annotations

import re
from collections import Counter, defaultdict

import numpy as np
import pytest
from ops_helpers import OPS_WORLD, as_of, emit_world, stream_lines

from simulator import WorldConfig
from simulator.model.campaigns import FAILURES, KINDS, METRICS, simulate_campaigns
from simulator.model.catalog import FIRST_NAMES, LAST_NAMES
from simulator.model.clock import DAY_US, NEVER, end_of_day_us
from simulator.model.purchases import day_keys, settle_extra_purchases
from simulator.model.snapshot import customers_table, order_items_table, orders_table
from simulator.model.timeline import simulate

ULID = re.compile(r"^[0-9A-HJKMNP-TV-Z]{26}$")
EMAIL_METRICS = {"sent", "delivered", "opened", "clicked", "bounced", "dropped", "unsubscribed"}
SMS_METRICS = {"sent", "delivered", "clicked", "failed"}
IDENTITY = {"newsletter_id", "delivery_id", "customer_id", "identifiers", "recipient"}


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    out = tmp_path_factory.mktemp("messaging")
    tl, truth = emit_world(OPS_WORLD, out)
    run = simulate_campaigns(tl.config, tl.population, tl.purchases, tl.accounts)
    events = [event for _, event, _ in stream_lines(out, "messaging")]
    raw = [line for _, _, line in stream_lines(out, "messaging")]
    return tl, truth, run, events, raw


def test_every_event_has_the_fields_customer_io_sends(world):
    _, _, _, events, _ = world
    assert {(e["object_type"], e["metric"]) for e in events} == {
        *(("email", m) for m in EMAIL_METRICS),
        *(("sms", m) for m in SMS_METRICS),
    }
    for e in events:
        assert list(e) == ["event_id", "object_type", "metric", "timestamp", "data"]
        assert ULID.match(e["event_id"]) and isinstance(e["timestamp"], int)
        data = e["data"]
        extra = set(data) - IDENTITY
        if e["object_type"] == "email":
            assert "subject" in data and data["recipient"] == data["identifiers"]["email"]
            extra -= {"subject"}
        else:
            assert re.match(r"^\+628\d{8,11}$", data["recipient"])
        assert data["customer_id"] == data["identifiers"]["id"]
        assert set(data["identifiers"]) == {"id", "email", "cio_id"}
        assert isinstance(data["newsletter_id"], int) and len(data["delivery_id"]) == 32
        if e["metric"] == "clicked":
            email = e["object_type"] == "email"
            assert extra == ({"href", "link_id", "machine"} if email else {"href", "link_id"})
            assert data["href"].startswith("https://") and data.get("machine") is not True
        elif e["metric"] in {"bounced", "dropped", "failed"}:
            assert extra == {"failure_message"}
        else:
            assert extra == set()
        # The event id's time prefix is the event's millisecond.
        assert _ulid_ms(e["event_id"]) // 1000 == e["timestamp"]


def test_a_message_keeps_its_delivery_id_and_guest(world):
    _, _, _, events, _ = world
    by_delivery = defaultdict(set)
    for e in events:
        by_delivery[e["data"]["delivery_id"]].add(
            (e["data"]["newsletter_id"], e["data"]["customer_id"])
        )
    assert all(len(owners) == 1 for owners in by_delivery.values())
    assert len({owner for owners in by_delivery.values() for owner in owners}) == len(by_delivery)


def test_retried_deliveries_repeat_the_same_event(world):
    _, truth, _, events, raw = world
    copies = Counter(e["event_id"] for e in events)
    twice = [event_id for event_id, n in copies.items() if n == 2]
    assert max(copies.values()) == 2 and twice
    assert 0.002 < len(twice) / len(copies) < 0.01  # about 0.5% are delivered twice
    lines = defaultdict(set)
    for e, line in zip(events, raw, strict=True):
        lines[e["event_id"]].add(line)
    assert all(len(lines[event_id]) == 1 for event_id in twice)  # the same body each time
    hooks = truth["messaging"]["webhooks"]
    assert hooks["deliveries"] == len(events)
    assert hooks["duplicate_deliveries"] == len(events) - len(copies)
    first = {e["event_id"]: e["metric"] for e in events}
    assert hooks["events_by_metric"] == {m: Counter(first.values())[m] for m in METRICS}


def test_sends_go_only_to_consenting_open_accounts_signed_up_before(world):
    tl, _, run, events, _ = world
    cal = run.campaigns
    attempts = defaultdict(set)  # newsletter_id -> guests messaged (sent or dropped)
    for e in events:
        if e["metric"] in {"sent", "dropped"}:
            attempts[e["data"]["newsletter_id"]].add(int(e["data"]["customer_id"]))
    assert attempts
    for c, campaign_id in enumerate(cal.campaign_id.tolist()):
        if campaign_id not in attempts:
            continue
        # The customers table as it stood at the send instant.
        guests = customers_table(tl, int(cal.send_us[c])).columns
        consent = {
            "email": guests["accepts_email_marketing"],
            "sms": guests["accepts_sms_marketing"],
        }[("email", "sms")[cal.channel[c]]]
        allowed = set(
            guests["customer_id"][(consent == 1) & ~guests["deleted_at"].present].tolist()
        )
        assert attempts[campaign_id] <= allowed, cal.name[c]
        signed_up = guests["signed_up_at"].us[
            np.isin(guests["customer_id"], list(attempts[campaign_id]))
        ]
        assert (signed_up < cal.send_us[c]).all()


def test_the_holdout_receives_nothing(world):
    _, truth, run, events, _ = world
    messaged = {(e["data"]["newsletter_id"], int(e["data"]["customer_id"])) for e in events}
    cid = run.campaigns.campaign_id
    held = set(
        zip(
            cid[run.holdout_campaign].tolist(),
            (run.holdout_customer + 1).tolist(),
            strict=True,
        )
    )
    assert held and not held & messaged
    share = run.holdout_customer.size / run.eligible.sum()
    assert 0.07 < share < 0.13
    for entry in truth["messaging"]["campaigns"]:
        assert entry["holdout"] + entry["messages"] == entry["eligible"]


def test_truth_counts_match_the_latent_sends(world):
    tl, truth, run, _, _ = world
    end = end_of_day_us(as_of(OPS_WORLD))
    entries = truth["messaging"]["campaigns"]
    assert [e["campaign_id"] for e in entries] == run.campaigns.campaign_id.tolist()
    assert {e["kind"] for e in entries} == {k.key for k in KINDS}
    for c, entry in enumerate(entries):
        mine = run.send_campaign == c
        assert entry["messages"] == int(mine.sum())
        assert entry["events"]["delivered"] == int((run.delivered_us[mine] <= end).sum())
        assert entry["events"]["opened"] == int((run.opened_us[mine] <= end).sum())
        assert entry["induced_orders"] == int((tl.orders.campaign == c).sum())
    delivered = sum(e["events"]["delivered"] for e in entries)
    assert 0.95 < delivered / sum(e["events"]["sent"] for e in entries) < 1.0


@pytest.fixture(scope="module")
def large():
    """About 30,000 guests over 300 days: ~20,000 held-out sends, enough to see a 2-4 point
    uplift in orders within a week."""
    config = WorldConfig(seed=11, customers=30_000, days=300, acquisition_days=300)
    tl = simulate(config, config.first_as_of)
    return tl, simulate_campaigns(config, tl.population, tl.purchases, tl.accounts)


def test_the_planted_uplift_shows_in_orders_within_seven_days(large):
    tl, run = large
    o, cal = tl.orders, run.campaigns
    end = end_of_day_us(tl.horizon)
    treated, held, planted = [], [], []
    for c in np.flatnonzero(cal.send_us + 7 * DAY_US <= end):
        lo, hi = np.searchsorted(
            o.placed_us, [cal.send_us[c], cal.send_us[c] + 7 * DAY_US], "right"
        )
        orders = np.bincount(o.customer_idx[lo:hi], minlength=len(tl.population))
        delivered = (run.send_campaign == c) & (run.delivered_us != NEVER)
        treated.append(orders[run.send_customer[delivered]])
        held.append(orders[run.holdout_customer[run.holdout_campaign == c]])
        planted.append(np.full(delivered.sum(), KINDS[cal.kind[c]].uplift))
    treated, held, planted = (np.concatenate(v) for v in (treated, held, planted))
    uplift = treated.mean() - held.mean()
    se = np.sqrt(treated.var() / treated.size + held.var() / held.size)
    assert se < 0.006 and held.size > 15_000
    assert abs(uplift - planted.mean()) < 3.5 * se  # planted: about 0.024 orders a guest
    assert uplift > 2 * se


def test_induced_orders_are_ordinary_orders_of_treated_guests(large):
    tl, run = large
    o, cal = tl.orders, run.campaigns
    induced = np.flatnonzero(o.campaign >= 0)
    assert induced.size > 3000
    # Each one went to a delivered recipient, 1-6 days after the send day, after the send.
    campaign, guest = o.campaign[induced], o.customer_idx[induced]
    delivered = set(
        zip(
            run.send_campaign[run.delivered_us != NEVER].tolist(),
            run.send_customer[run.delivered_us != NEVER].tolist(),
            strict=True,
        )
    )
    assert set(zip(campaign.tolist(), guest.tolist(), strict=True)) <= delivered
    days = (o.placed_us[induced] - cal.send_us[campaign]) / DAY_US
    assert days.min() > 0 and days.max() < 7
    assert (o.placed_us[induced] < tl.accounts.closed_us[guest]).all()
    # In the ordering tables with their lines; still one order a guest a day.
    end = end_of_day_us(tl.horizon)
    orders = orders_table(tl, end)
    lines = order_items_table(tl, end, len(orders)).columns
    assert np.isin(induced + 1, lines["order_id"]).all()
    day = o.placed_us // DAY_US
    assert np.unique(o.customer_idx * 100_000 + day).size == o.placed_us.size
    # Only a guest's first order can carry WELCOME20, whatever brought it.
    first = np.zeros(o.placed_us.size, dtype=bool)
    _, first_rows = np.unique(o.customer_idx, return_index=True)
    first[first_rows] = True
    welcome = orders.columns["promo_code"] == "WELCOME20"
    assert welcome.any() and not (welcome & ~first).any()


def _ulid_ms(ulid: str) -> int:
    alphabet = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
    value = 0
    for char in ulid[:10]:
        value = value * 32 + alphabet.index(char)
    return value


def test_a_taken_day_moves_the_campaign_order_to_the_next_free_one():
    taken = np.sort(day_keys(np.array([0, 0, 1]), np.array([5, 6, 5])))
    days = settle_extra_purchases(
        [taken, np.zeros(0, dtype=np.int64)],
        np.array([0, 1, 2, 0]),
        np.array([5, 5, 5, 6]),
        np.array([9, 9, 9, 6]),
    )
    assert days.tolist() == [7, 6, 5, -1]


def test_text_put_into_json_needs_no_escaping():
    texts = [*FAILURES, *(s for k in KINDS for s in k.subjects), *FIRST_NAMES, *LAST_NAMES]
    assert not any('"' in t or "\\" in t for t in texts)
