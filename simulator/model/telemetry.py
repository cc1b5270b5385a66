"""Service telemetry: one record per API call the apps and the web make to the chain's backend,
landing in the `telemetry` stream.

Calls follow activity: every order comes with its ordering session (menu, cart, checkout,
payment, status polls) and about one browsing session of a few calls, in the store's day parts.
One generator per day draws that day's calls, so any day's records are the same whatever the
horizon. Planted: a 90-minute payment outage (503s and timeouts) and a slow loyalty service.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any, NamedTuple

import numpy as np

from simulator.model.clock import (
    DAY_US,
    HOUR_US,
    MINUTE_US,
    day_part_hours,
    day_start_us,
    local_hours_to_us,
)
from simulator.model.rand import Stream, counter_uniform, keyed_rng
from simulator.model.timeline import Timeline

SERVICES = ("menu", "cart", "checkout", "payment", "auth", "loyalty")
MENU, CART, CHECKOUT, PAYMENT, AUTH, LOYALTY = range(len(SERVICES))
# Latency: median ms and log-sd per service. Planted: loyalty is consistently slow.
MEDIAN_MS = (80.0, 60.0, 150.0, 250.0, 90.0, 600.0)
LOG_SD = (0.5, 0.5, 0.5, 0.5, 0.5, 0.6)
SLOW_SERVICE = "loyalty"
PLATFORMS = ("ios", "android", "web")
IOS, ANDROID, WEB = range(3)
PLATFORM_LATENCY = (1.0, 1.15, 0.85)
IOS_SHARE = 0.3  # of app users (Indonesia is mostly Android)
CLIENT_TIMEOUT_MS = 10_000
TIMEOUT_SHARE = 0.0005
SERVER_ERROR_SHARE = 0.002
SERVER_ERRORS = (500, 502, 503)
SERVER_ERROR_WEIGHTS = (0.5, 0.3, 0.2)
BROWSE_SESSIONS_PER_ORDER = 1.0
# Planted outage: the payment service on day 40, 11:45-13:15 WIB (the lunch peak).
OUTAGE_SERVICE = "payment"
OUTAGE_DAY = 40
OUTAGE_START_UTC_HOUR = 4.75
OUTAGE_MINUTES = 90
OUTAGE_503_SHARE = 0.6
OUTAGE_TIMEOUT_SHARE = 0.25  # the rest of the calls succeed, four times slower
MOBILE_RELEASE_EVERY = 21  # days; 3.k.0 ships on day -20 + 21k (iOS two days later)
ADOPTION_DAYS = 6.0  # mean lag before a guest's app updates
WEB_DEPLOY_EVERY = 7


class Endpoint(NamedTuple):
    service: int
    route: str
    ok_status: int
    client_error_share: float
    client_error: int


ENDPOINTS = (
    Endpoint(AUTH, "POST /v1/auth/refresh", 200, 0.02, 401),
    Endpoint(AUTH, "GET /v1/me", 200, 0.003, 401),
    Endpoint(MENU, "GET /v1/stores/{store_id}/menu", 200, 0.0, 404),
    Endpoint(MENU, "GET /v1/menu/items/{item_id}", 200, 0.002, 404),
    Endpoint(LOYALTY, "GET /v1/loyalty/balance", 200, 0.0, 404),
    Endpoint(LOYALTY, "GET /v1/loyalty/rewards", 200, 0.0, 404),
    Endpoint(CART, "POST /v1/cart/items", 201, 0.01, 409),
    Endpoint(CART, "GET /v1/cart", 200, 0.0, 404),
    Endpoint(CHECKOUT, "POST /v1/checkout", 201, 0.01, 422),
    Endpoint(PAYMENT, "POST /v1/payments", 201, 0.015, 402),
    Endpoint(PAYMENT, "GET /v1/payments/{payment_id}", 200, 0.0, 404),
    Endpoint(CHECKOUT, "GET /v1/orders/{order_id}", 200, 0.0, 404),
)
_ROUTE = {e.route: i for i, e in enumerate(ENDPOINTS)}
# (endpoint, seconds from placing the order); calls before it stretch with the guest's pace.
ORDER_SESSION = (
    (_ROUTE["POST /v1/auth/refresh"], -420),
    (_ROUTE["GET /v1/stores/{store_id}/menu"], -400),
    (_ROUTE["GET /v1/loyalty/balance"], -390),
    (_ROUTE["GET /v1/menu/items/{item_id}"], -300),
    (_ROUTE["GET /v1/menu/items/{item_id}"], -240),
    (_ROUTE["POST /v1/cart/items"], -200),
    (_ROUTE["POST /v1/cart/items"], -150),
    (_ROUTE["GET /v1/cart"], -90),
    (_ROUTE["POST /v1/checkout"], 0),
    (_ROUTE["POST /v1/payments"], 6),
    (_ROUTE["GET /v1/payments/{payment_id}"], 15),
    (_ROUTE["GET /v1/orders/{order_id}"], 600),
)
BROWSE_SESSION = (
    (_ROUTE["GET /v1/me"], 0),
    (_ROUTE["GET /v1/stores/{store_id}/menu"], 5),
    (_ROUTE["GET /v1/menu/items/{item_id}"], 40),
    (_ROUTE["GET /v1/loyalty/balance"], 60),
)
_SERVICE_OF = np.array([e.service for e in ENDPOINTS])
_OK = np.array([e.ok_status for e in ENDPOINTS])
_CLIENT_SHARE = np.array([e.client_error_share for e in ENDPOINTS])
_CLIENT_ERROR = np.array([e.client_error for e in ENDPOINTS])


def outage_window_us(tl: Timeline) -> tuple[int, int]:
    start = day_start_us(tl.config.start_date, OUTAGE_DAY) + int(OUTAGE_START_UTC_HOUR * HOUR_US)
    return start, start + OUTAGE_MINUTES * MINUTE_US


WEB_VERSION = 100_000  # version ids: 3.k.0 is k, the web deploy of week d is WEB_VERSION + d


def _versions(platform: np.ndarray, day: int, lag_days: np.ndarray) -> np.ndarray:
    """App version id per call: mobile apps update `lag_days` after a release; the web always
    runs the latest weekly deploy."""
    late = np.where(platform == IOS, 2, 0)
    release = np.maximum((day - lag_days + 20 - late) // MOBILE_RELEASE_EVERY, 0)
    return np.where(platform == WEB, WEB_VERSION + day // WEB_DEPLOY_EVERY, release)


def version_labels(tl: Timeline, ids: np.ndarray) -> tuple[np.ndarray, list[str]]:
    """The distinct version ids present, and their labels (3.k.0, web-YYYY.MM.DD)."""
    present = np.unique(ids)
    labels = []
    for v in present.tolist():
        if v < WEB_VERSION:
            labels.append(f"3.{v}.0")
        else:
            deploy = tl.config.start_date + timedelta(days=(v - WEB_VERSION) * WEB_DEPLOY_EVERY)
            labels.append("web-" + deploy.strftime("%Y.%m.%d"))
    return present, labels


def _session_calls(
    rng: np.random.Generator, tl: Timeline, day: int, rows: np.ndarray, store: np.ndarray
) -> dict[str, np.ndarray]:
    """The calls of each order's ordering session and of its browsing sessions at some other
    time of the day: session (index into rows), endpoint and occurred_us."""
    o, n = tl.orders, rows.size
    endpoints, offsets = (np.array(v) for v in zip(*ORDER_SESSION, strict=True))
    pace = rng.uniform(0.5, 2.0, size=n)
    k = endpoints.size
    seconds = np.where(offsets < 0, offsets[None, :] * pace[:, None], offsets[None, :])
    seconds = seconds + rng.uniform(-5, 5, size=(n, k))
    order_calls = {
        "session": np.repeat(np.arange(n), k),
        "endpoint": np.tile(endpoints, n),
        "occurred_us": (o.placed_us[rows][:, None] + seconds * 1e6).astype(np.int64).ravel(),
    }
    n_browse = rng.poisson(BROWSE_SESSIONS_PER_ORDER, size=n)
    owner = np.repeat(np.arange(n), n_browse)
    hours = day_part_hours(rng, owner.size)
    begin = local_hours_to_us(
        day_start_us(tl.config.start_date, day), hours, tl.stores.utc_offset[store[owner]]
    )
    endpoints, offsets = (np.array(v) for v in zip(*BROWSE_SESSION, strict=True))
    k = endpoints.size
    seconds = offsets[None, :] * rng.uniform(0.5, 2.0, size=(owner.size, 1))
    browse_calls = {
        "session": np.repeat(owner, k),
        "endpoint": np.tile(endpoints, owner.size),
        "occurred_us": (begin[:, None] + seconds * 1e6).astype(np.int64).ravel(),
    }
    calls = {name: np.concatenate([order_calls[name], browse_calls[name]]) for name in order_calls}
    calls["occurred_us"] = calls["occurred_us"] + rng.integers(0, 1000, size=calls["endpoint"].size)
    return calls


def _outcomes(
    rng: np.random.Generator,
    tl: Timeline,
    endpoint: np.ndarray,
    occurred_us: np.ndarray,
    service: np.ndarray,
    plat: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Latency (ms, before rounding), status code and client timeout of each call, with the
    planted outage: most payment calls in its window fail fast with 503 or time out."""
    m = endpoint.size
    latency = (
        np.take(MEDIAN_MS, service)
        * np.take(PLATFORM_LATENCY, plat)
        * np.exp(np.take(LOG_SD, service) * rng.standard_normal(m))
    )
    status = np.take(_OK, endpoint)
    outcome = rng.random(m)
    client = outcome < np.take(_CLIENT_SHARE, endpoint)
    status = np.where(client, np.take(_CLIENT_ERROR, endpoint), status)
    server = (outcome >= 0.5) & (outcome < 0.5 + SERVER_ERROR_SHARE)
    server_code = rng.choice(SERVER_ERRORS, size=m, p=SERVER_ERROR_WEIGHTS)
    status = np.where(server, server_code, status)
    timeout = rng.random(m) < TIMEOUT_SHARE

    start, end = outage_window_us(tl)
    hit = (service == SERVICES.index(OUTAGE_SERVICE)) & (occurred_us >= start) & (occurred_us < end)
    fate = rng.random(m)
    down = hit & (fate < OUTAGE_503_SHARE)
    status = np.where(down, 503, status)
    latency = np.where(down, rng.uniform(20, 80, size=m), latency)
    timeout |= hit & (fate >= OUTAGE_503_SHARE) & (fate < OUTAGE_503_SHARE + OUTAGE_TIMEOUT_SHARE)
    latency = np.where(hit & ~down, latency * 4, latency)
    return latency, status, timeout


def day_calls(tl: Timeline, day: int) -> dict[str, np.ndarray]:
    """Every call made on `day`'s sessions (occurred may spill past midnight), unsorted. The
    helpers draw from one generator in a fixed sequence: their call order is the stream."""
    rng = keyed_rng(tl.config.seed, Stream.TELEMETRY, day)
    o, pop, stores = tl.orders, tl.population, tl.stores
    bounds = day_start_us(tl.config.start_date, np.array([day, day + 1]))
    lo, hi = np.searchsorted(o.placed_us, bounds)
    rows = np.arange(lo, hi)
    cust = o.customer_idx[rows]
    ios = counter_uniform(tl.config.seed, Stream.TELEMETRY, pop.customer_id[cust], 0) < IOS_SHARE
    platform = np.where(o.is_app[rows], np.where(ios, IOS, ANDROID), WEB)
    store = o.store_idx[rows]
    adoption = rng.exponential(ADOPTION_DAYS, size=rows.size)
    calls = _session_calls(rng, tl, day, rows, store)
    m = calls["endpoint"].size
    session = calls.pop("session")
    service = _SERVICE_OF[calls["endpoint"]]
    plat = platform[session]
    latency, status, timeout = _outcomes(
        rng, tl, calls["endpoint"], calls["occurred_us"], service, plat
    )
    latency_ms = np.where(timeout, CLIENT_TIMEOUT_MS, np.maximum(np.rint(latency), 5))
    version = _versions(plat, day, np.floor(adoption[session]).astype(np.int64))
    raw = rng.bit_generator.random_raw(2 * m).reshape(2, m)
    calls.update(
        service=service,
        platform=plat,
        store_id=stores.store_id[store[session]],
        latency_ms=latency_ms.astype(np.int64),
        status_code=np.where(timeout, -1, status).astype(np.int64),
        is_timeout=timeout,
        version=version,
        request_hi=raw[0],
        request_lo=raw[1],
        arrival_us=calls["occurred_us"]
        + latency_ms.astype(np.int64) * 1000
        + rng.integers(500_000, 8_000_000, size=m),
    )
    return calls


def telemetry_truth(tl: Timeline, end_us: int) -> dict[str, Any]:
    """The planted outage and slow service, and latency and error figures of the calls made by
    end_us (latency quantiles exclude client timeouts, which only show the client's cap)."""
    last_day = (end_us - day_start_us(tl.config.start_date, 0)) // DAY_US
    start, end = outage_window_us(tl)
    paying = SERVICES.index(OUTAGE_SERVICE)
    service, latency, failed, in_window = [], [], [], []
    for day in range(int(last_day) + 1):
        calls = day_calls(tl, day)
        done = calls["occurred_us"] <= end_us
        occurred, timeout = calls["occurred_us"][done], calls["is_timeout"][done]
        service.append(calls["service"][done].astype(np.int8))
        latency.append(np.where(timeout, -1, calls["latency_ms"][done]).astype(np.int32))
        failed.append(timeout | (calls["status_code"][done] >= 500))
        in_window.append(
            (calls["service"][done] == paying) & (occurred >= start) & (occurred < end)
        )
    service, latency = np.concatenate(service), np.concatenate(latency)
    failed, in_window = np.concatenate(failed), np.concatenate(in_window)
    per_service = {}
    for s, name in enumerate(SERVICES):
        mine = service == s
        answered = latency[mine & (latency >= 0)]
        per_service[name] = {
            "calls": int(mine.sum()),
            "p50_ms": round(float(np.percentile(answered, 50)), 1) if answered.size else None,
            "p95_ms": round(float(np.percentile(answered, 95)), 1) if answered.size else None,
            "error_rate": round(float(failed[mine].mean()), 6) if mine.any() else None,
        }
    payment = service == SERVICES.index(OUTAGE_SERVICE)
    fmt = lambda us: str(np.datetime64(int(us), "us")) + "Z"  # noqa: E731
    return {
        "planted": {
            "outage": {
                "service": OUTAGE_SERVICE,
                "start": fmt(start),
                "end": fmt(end),
                "status_503_share": OUTAGE_503_SHARE,
                "timeout_share": OUTAGE_TIMEOUT_SHARE,
            },
            "slow_service": SLOW_SERVICE,
            "median_ms": dict(zip(SERVICES, MEDIAN_MS, strict=True)),
            "log_sd": dict(zip(SERVICES, LOG_SD, strict=True)),
            "client_timeout_ms": CLIENT_TIMEOUT_MS,
        },
        "calls": int(service.size),
        "services": per_service,
        "outage": {
            "happened": bool(end <= end_us),
            "calls_in_window": int(in_window.sum()),
            "error_rate_in_window": (
                round(float(failed[in_window].mean()), 6) if in_window.any() else None
            ),
            "error_rate_outside_window": (
                round(float(failed[payment & ~in_window].mean()), 6)
                if (payment & ~in_window).any()
                else None
            ),
        },
        "slowest_by_p95": max(
            (name for name in SERVICES if per_service[name]["p95_ms"] is not None),
            key=lambda name: per_service[name]["p95_ms"],
            default=None,
        ),
    }
