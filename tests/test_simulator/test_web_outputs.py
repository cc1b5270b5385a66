"""The web channels' files: deterministic, incremental equals whole, valid Segment Spec messages,
orders matched by Order Completed events, GA4 sessions equal Segment sessions, Meta files
consistent with the truth and with the ad clicks in the events."""

from __future__ import annotations

import dataclasses
import json
from collections import Counter
from datetime import timedelta

import pyarrow.parquet as pq
import pytest
from web_helpers import (
    ISO,
    WEB_TINY,
    dedup,
    emit_world,
    event_files,
    parse_ts,
    read_events,
    sessionise,
)

from simulator.model.clock import end_of_day_us
from simulator.model.snapshot import ordering_tables

TYPES = {"identify", "track", "page", "screen"}
LIBRARIES = {"analytics.js", "analytics-kotlin", "analytics-swift"}


LATER = WEB_TINY.first_as_of + timedelta(days=5)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """The tiny world built at 65 days in one go."""
    out = tmp_path_factory.mktemp("web_tiny")
    tl, truth = emit_world(dataclasses.replace(WEB_TINY, days=65), out, LATER)
    return out, tl, truth, read_events(out)


def _tree(root):
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in root.rglob("*") if p.is_file()}


def test_build_then_advance_equals_a_longer_build(tiny, tmp_path):
    """Also determinism: a second computation by another route gives the same bytes."""
    whole, _, truth, _ = tiny
    emit_world(WEB_TINY, tmp_path, WEB_TINY.first_as_of)
    before = {p.relative_to(tmp_path) for p in event_files(tmp_path)}
    _, stepped = emit_world(WEB_TINY, tmp_path, LATER, since=WEB_TINY.first_as_of)
    assert _tree(tmp_path) == _tree(whole)
    assert stepped == truth
    after = {p.relative_to(tmp_path) for p in event_files(tmp_path)}
    assert before < after and any(f"date={LATER:%Y-%m-%d}" in str(p) for p in after - before)


def test_two_emits_give_identical_bytes(tiny, tmp_path):
    whole, _, truth, _ = tiny
    _, again = emit_world(dataclasses.replace(WEB_TINY, days=65), tmp_path, LATER)
    assert _tree(whole) == _tree(tmp_path)
    assert json.dumps(truth, sort_keys=True) == json.dumps(again, sort_keys=True)


def test_every_message_follows_the_segment_spec(tiny):
    _, _, _, events = tiny
    assert len(events) > 2_000
    for e in events:
        assert e["type"] in TYPES
        assert isinstance(e["messageId"], str) and len(e["messageId"]) == 36
        for field in ("timestamp", "originalTimestamp", "sentAt", "receivedAt"):
            assert ISO.match(e[field]), (field, e[field])
        assert e["timestamp"] <= e["sentAt"] <= e["receivedAt"]
        assert e.get("anonymousId") or e.get("userId")
        ctx = e["context"]
        assert ctx["library"]["name"] in LIBRARIES and ctx["library"]["version"]
        assert ctx["locale"] == "id-ID" and ctx["ip"].count(".") == 3
        if ctx["library"]["name"] == "analytics.js":
            assert ctx["page"]["url"].startswith("https://") and "userAgent" in ctx
            assert "app" not in ctx
        else:
            assert {"app", "device", "os"} <= set(ctx) and "page" not in ctx
        if e["type"] == "track":
            assert isinstance(e["event"], str) and isinstance(e["properties"], dict)
        elif e["type"] in ("page", "screen"):
            assert isinstance(e["name"], str) and isinstance(e["properties"], dict)
            assert (e["type"] == "page") == (ctx["library"]["name"] == "analytics.js")
        else:
            assert isinstance(e["traits"], dict) and e["userId"]
        assert "userId" not in e or isinstance(e["userId"], str)
        assert None not in ctx.values()


def test_ecommerce_events_carry_real_menu_items(tiny):
    _, tl, _, events = tiny
    names = dict(zip(tl.menu.sku, tl.menu.name, strict=True))
    seen = Counter(e.get("event") for e in events)
    for name in ("Product Viewed", "Product Added", "Checkout Started", "Order Completed"):
        assert seen[name] > 50, name
    for e in events:
        if e.get("event") in ("Product Viewed", "Product Added"):
            p = e["properties"]
            assert names[p["sku"]] == p["name"] and p["currency"] == "IDR" and p["price"] > 0
        if e.get("event") == "Order Completed":
            products = e["properties"]["products"]
            assert products and all(names[p["sku"]] == p["name"] for p in products)


def test_every_order_has_exactly_one_order_completed(tiny):
    _, tl, _, events = tiny
    orders = ordering_tables(tl, LATER)["orders"].columns
    completed = [e for e in dedup(events) if e.get("event") == "Order Completed"]
    by_id = Counter(e["properties"]["order_id"] for e in completed)
    assert max(by_id.values()) == 1
    db = {
        str(i): (total, fee)
        for i, total, fee in zip(
            orders["order_id"], orders["total_idr"], orders["delivery_fee_idr"], strict=True
        )
    }
    assert set(by_id) <= set(db)
    # Everything placed more than 3 days before the as-of date has arrived.
    settled = end_of_day_us(LATER) - 4 * 86_400_000_000
    placed = orders["placed_at"].us
    assert {str(i) for i, p in zip(orders["order_id"], placed, strict=True) if p < settled} <= set(
        by_id
    )
    for e in completed:
        total, fee = db[e["properties"]["order_id"]]
        assert e["properties"]["total"] == total
        assert e["properties"]["revenue"] == total - fee
        assert e["userId"] and e["properties"]["currency"] == "IDR"


def test_duplicates_and_late_arrivals(tiny):
    _, _, truth, events = tiny
    ids = Counter(e["messageId"] for e in events)
    dups = sum(c - 1 for c in ids.values())
    assert dups == truth["events"]["duplicate_lines"] > 0
    assert len(ids) == truth["events"]["distinct_message_ids"]
    assert truth["events"]["arrived_over_1_hour_late"] > 0
    assert truth["events"]["max_delay_hours"] <= 72


def test_identities_stitch_anonymous_browsing_to_the_guest(tiny):
    _, _, truth, events = tiny
    anon_of_user = {}
    for e in events:
        if e["type"] == "identify":
            anon_of_user.setdefault(e["userId"], set()).add(e["anonymousId"])
    assert len(anon_of_user) >= truth["identities"]["guests_signed_up"] * 0.9
    assert truth["identities"]["guests_seen_under_several_anonymous_ids_before_signup"] > 0
    assert any(len(a) > 1 for a in anon_of_user.values())  # logins on a second device


def test_ga4_sessions_equal_segment_sessions(tiny):
    out, _, truth, events = tiny
    ga4 = pq.read_table(out / "ga4" / "sessions.parquet").to_pylist()
    assert len(ga4) == truth["ga4"]["sessions"] == truth["sessions"]["total"]
    cutoff = end_of_day_us(LATER) // 1_000_000 - 4 * 86_400
    sessions = sessionise(dedup(events))
    segment_starts = sorted(
        int(parse_ts(s[0]["timestamp"])) for ss in sessions.values() for s in ss
    )
    segment = [t for t in segment_starts if t < cutoff]
    ga = sorted(r["ga_session_id"] for r in ga4 if r["ga_session_id"] < cutoff)
    assert segment == ga
    row = ga4[0]
    assert len(row["date"]) == 8 and row["platform"] in ("web", "iOS", "Android")
    assert {r["region"] for r in ga4} <= {"Jakarta", "West Java", "Bali"}
    assert sum(r["key_events"] for r in ga4) == truth["sessions"]["converting"]
    assert {r["session_source"] for r in ga4} >= {"(direct)", "instagram", "facebook", "google"}


def test_meta_files_match_truth_and_events(tiny):
    out, _, truth, events = tiny
    campaigns = json.loads((out / "meta" / "campaigns.json").read_text())
    ads = json.loads((out / "meta" / "ads.json").read_text())
    insights = pq.read_table(out / "meta" / "insights.parquet").to_pylist()
    names = {c["name"] for c in campaigns}
    assert all(
        isinstance(c["daily_budget"], str) and c["daily_budget"].isdigit() for c in campaigns
    )
    spend, platform_spend = Counter(), Counter()
    for r in insights:
        spend[r["campaign_name"]] += r["spend"]
        platform_spend[(r["campaign_name"], r["publisher_platform"])] += r["spend"]
        assert r["clicks"] <= r["impressions"] and r["reach"] <= r["impressions"]
    for name, figures in truth["ads"]["by_campaign"].items():
        assert spend[name] == pytest.approx(figures["spend"])
        assert name in names
        for platform, by_platform in figures["by_platform"].items():
            assert platform_spend[(name, platform)] == pytest.approx(by_platform["spend"])
    # Most of the spend on Instagram, some on Facebook, a little in Audience Network apps.
    total = truth["ads"]["spend"]
    share = {p: f["spend"] / total for p, f in truth["ads"]["by_platform"].items()}
    assert share["instagram"] > 0.7 and 0.04 < share["facebook"] < 0.25
    assert 0 < share["audience_network"] < 0.08
    assert sum(f["spend"] for f in truth["ads"]["by_platform"].values()) == pytest.approx(total)

    # Every ad click is tagged with the platform Meta placed it on, in the events and in GA4,
    # as many sessions per campaign and platform as the delivery's landed clicks.
    ad_ids = {a["id"] for a in ads}
    clicks = [
        e["context"]["campaign"]
        for e in events
        if e["context"].get("campaign", {}).get("medium") == "paid_social"
    ]
    assert {c["source"] for c in clicks} == {"instagram", "facebook", "audience_network"}
    assert {c["name"] for c in clicks} <= names
    assert {c["content"] for c in clicks} <= ad_ids
    ga4 = pq.read_table(out / "ga4" / "sessions.parquet").to_pylist()
    ga4_clicks = Counter(
        (r["session_campaign_name"], r["session_source"])
        for r in ga4
        if r["session_medium"] == "paid_social"
    )
    landed = {
        (name, platform): f["landed_sessions"]
        for name, c in truth["ads"]["by_campaign"].items()
        for platform, f in c["by_platform"].items()
        if f["landed_sessions"]
    }
    assert ga4_clicks == landed
    assert sum(r["purchases"] for r in insights) == truth["ads"]["purchases"] > 0
