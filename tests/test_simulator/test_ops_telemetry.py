"""Service telemetry: one record per API call, the planted payment outage and the slow service."""

from __future__ import annotations

import re
from collections import defaultdict
from datetime import datetime, timedelta

import numpy as np
import pytest
from ops_helpers import emit_world, stream_lines

from simulator import WorldConfig
from simulator.model.telemetry import (
    CLIENT_TIMEOUT_MS,
    ENDPOINTS,
    OUTAGE_DAY,
    OUTAGE_MINUTES,
    OUTAGE_SERVICE,
    OUTAGE_START_UTC_HOUR,
    SERVICES,
    SLOW_SERVICE,
)

# 45 days of a busier chain, so the 90-minute outage on day 40 sees a hundred payment calls.
WORLD = WorldConfig(seed=11, customers=4000, days=45, acquisition_days=60)
UUID4 = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")
KEYS = [
    "request_id",
    "occurred_at",
    "service",
    "endpoint",
    "platform",
    "app_version",
    "store_id",
    "status_code",
    "latency_ms",
    "is_timeout",
]


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    out = tmp_path_factory.mktemp("telemetry")
    tl, truth = emit_world(WORLD, out)
    calls = [call for _, call, _ in stream_lines(out, "telemetry")]
    return tl, truth["telemetry"], calls


def _at(call: dict) -> datetime:
    return datetime.strptime(call["occurred_at"], "%Y-%m-%dT%H:%M:%S.%fZ")


def test_records_have_the_documented_fields(world):
    tl, truth, calls = world
    routes = {e.route: SERVICES[e.service] for e in ENDPOINTS}
    stores = set(tl.stores.store_id.tolist())
    assert len({c["request_id"] for c in calls}) == len(calls) == truth["calls"]
    for c in calls:
        assert list(c) == KEYS
        assert UUID4.match(c["request_id"])
        assert routes[c["endpoint"]] == c["service"]
        assert c["platform"] in {"ios", "android", "web"} and c["store_id"] in stores
        assert re.match(r"^(3\.\d+\.0|web-\d{4}\.\d{2}\.\d{2})$", c["app_version"])
        assert c["app_version"].startswith("web-") == (c["platform"] == "web")
        if c["is_timeout"]:
            assert c["status_code"] is None and c["latency_ms"] == CLIENT_TIMEOUT_MS
        else:
            assert 100 <= c["status_code"] < 600 and 5 <= c["latency_ms"] < CLIENT_TIMEOUT_MS
    # About sixteen calls per order: an ordering session and some browsing.
    assert 13 < len(calls) / tl.orders.placed_us.size < 20


def test_the_payment_outage_shows_in_the_error_rate(world):
    _, truth, calls = world
    start = datetime.combine(WORLD.start_date, datetime.min.time()) + timedelta(
        days=OUTAGE_DAY, hours=OUTAGE_START_UTC_HOUR
    )
    end = start + timedelta(minutes=OUTAGE_MINUTES)
    inside, outside = [], []
    for c in calls:
        if c["service"] == OUTAGE_SERVICE:
            failed = c["is_timeout"] or c["status_code"] >= 500
            (inside if start <= _at(c) < end else outside).append(failed)
    assert len(inside) > 50
    assert np.mean(inside) > 0.7 and np.mean(outside) < 0.01
    outage = truth["outage"]
    assert outage["happened"] and outage["calls_in_window"] == len(inside)
    assert outage["error_rate_in_window"] == round(float(np.mean(inside)), 6)
    planted = truth["planted"]["outage"]
    assert planted["start"].startswith(start.isoformat())
    assert planted["end"].startswith(end.isoformat())


def test_the_slow_service_has_the_highest_p95(world):
    _, truth, calls = world
    latency = defaultdict(list)
    for c in calls:
        if not c["is_timeout"]:
            latency[c["service"]].append(c["latency_ms"])
    p95 = {s: float(np.percentile(v, 95)) for s, v in latency.items()}
    assert max(p95, key=p95.get) == SLOW_SERVICE == truth["slowest_by_p95"]
    others = [v for s, v in p95.items() if s != SLOW_SERVICE]
    assert p95[SLOW_SERVICE] > 2.5 * max(others) and p95[SLOW_SERVICE] > 3 * np.median(others)
    for service, value in p95.items():
        assert truth["services"][service]["p95_ms"] == round(value, 1)
