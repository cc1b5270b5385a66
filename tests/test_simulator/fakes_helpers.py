"""For the fakes' tests and the sources' tests against them: small deterministic `ga4/` and `meta/`
files in the shape the GA4 and Meta channels write (the channels' own generators are tested
elsewhere), a module's fake server over them, and a urllib JSON client."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from simulator.fakes import FakeServer

FIRST_DAY = date(2025, 3, 1)
DAYS = 10
TODAY = FIRST_DAY + timedelta(days=DAYS - 1)  # 2025-03-10
ACCOUNT = "1000000001"
OTHER_ACCOUNT = "1000000002"
PLATFORMS = ("facebook", "instagram")
SHARED_NAME = "Kedai Ramadan"  # two campaigns of ACCOUNT carry it


def served_world(fake: str, write: Callable[[Path], None]):
    """The module-scoped fixtures `data_dir` (a folder `write` fills) and `server` (the `fake`
    API serving it on 127.0.0.1): `data_dir, server = served_world("ga4", write_sessions)`."""

    @pytest.fixture(scope="module")
    def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
        folder = tmp_path_factory.mktemp(f"{fake}_world")
        write(folder)
        return folder

    @pytest.fixture(scope="module")
    def server(data_dir: Path) -> Iterator[FakeServer]:
        with FakeServer(data_dir, [fake], today=TODAY) as served:
            yield served

    return data_dir, server


def recorded(recorder: Callable[[FakeServer], Any]):
    """The fixture `fake`: `recorder(server)` (a class that records what the fake was sent),
    reset before and after each test: `fake = recorded(Fake)`."""

    @pytest.fixture
    def fake(server: FakeServer) -> Iterator[Any]:
        made = recorder(server)
        made.reset()
        yield made
        made.reset()

    return fake


SESSIONS_SCHEMA = pa.schema(
    [
        ("date", pa.string()),
        ("user_pseudo_id", pa.string()),
        ("session_source", pa.string()),
        ("session_medium", pa.string()),
        ("session_campaign_name", pa.string()),
        ("device_category", pa.string()),
        ("region", pa.string()),
        ("platform", pa.string()),
        ("is_new_user", pa.bool_()),
        ("is_engaged", pa.bool_()),
        ("key_events", pa.int64()),
        ("purchase_revenue", pa.float64()),
    ]
)
INSIGHTS_SCHEMA = pa.schema(
    [
        ("date_start", pa.string()),
        ("date_stop", pa.string()),
        ("account_id", pa.string()),
        ("campaign_id", pa.string()),
        ("campaign_name", pa.string()),
        ("adset_id", pa.string()),
        ("adset_name", pa.string()),
        ("ad_id", pa.string()),
        ("ad_name", pa.string()),
        ("publisher_platform", pa.string()),
        ("impressions", pa.int64()),
        ("reach", pa.int64()),
        ("clicks", pa.int64()),
        ("spend", pa.float64()),
        ("purchase_value", pa.float64()),
        ("purchases", pa.int64()),
    ]
)


def write_sessions(data_dir: Path, n_sessions: int = 400, n_users: int = 70, seed: int = 3) -> Path:
    """One row per session over DAYS days; a user's first session is their new-user session."""
    rng = np.random.default_rng(seed)
    day = np.sort(rng.integers(0, DAYS, n_sessions))
    users = rng.integers(0, n_users, n_sessions)
    sources = [
        ("google", "organic", None),
        ("(direct)", "(none)", "(direct)"),
        ("facebook", "paid", "ramadan_promo"),
        ("instagram", "paid", "new_menu"),
        ("newsletter", "email", "weekly_digest"),
    ]
    source = rng.integers(0, len(sources), n_sessions)
    purchase = rng.random(n_sessions) < 0.3
    revenue = np.where(purchase, np.round(rng.uniform(25_000, 300_000, n_sessions), 1), 0.0)
    first_seen: set[int] = set()
    is_new = []
    for user in users:  # sessions are in date order, so a user's first row is their first visit
        is_new.append(int(user) not in first_seen)
        first_seen.add(int(user))
    table = pa.table(
        {
            "date": [(FIRST_DAY + timedelta(days=int(d))).strftime("%Y%m%d") for d in day],
            "user_pseudo_id": [f"{1_000_000 + int(u)}.{1_700_000_000 + int(u)}" for u in users],
            "session_source": [sources[s][0] for s in source],
            "session_medium": [sources[s][1] for s in source],
            "session_campaign_name": [sources[s][2] for s in source],
            "device_category": rng.choice(["mobile", "desktop", "tablet"], n_sessions).tolist(),
            "region": rng.choice(["Jakarta", "West Java", "Bali"], n_sessions).tolist(),
            "platform": rng.choice(["web", "iOS", "Android"], n_sessions).tolist(),
            "is_new_user": is_new,
            "is_engaged": (rng.random(n_sessions) < 0.6).tolist(),
            "key_events": (purchase.astype(int) + rng.integers(0, 2, n_sessions)).tolist(),
            "purchase_revenue": revenue.tolist(),
        },
        schema=SESSIONS_SCHEMA,
    )
    path = data_dir / "ga4" / "sessions.parquet"
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(table, path)
    return path


def _time(day: date, hour: int = 10) -> str:
    return f"{day.isoformat()}T{hour:02d}:00:00+0700"


def write_meta(data_dir: Path, seed: int = 5) -> Path:
    """Four campaigns (three in ACCOUNT, one in OTHER_ACCOUNT), two ad sets each, two ads per ad
    set, and daily insights per ad and publisher platform. Campaigns 0 and 2 share a name (a
    relaunch), as Meta allows."""
    rng = np.random.default_rng(seed)
    campaigns, adsets, ads = [], [], []
    for c in range(4):
        account = ACCOUNT if c < 3 else OTHER_ACCOUNT
        campaign_id = f"2385000000000{c:02d}"
        status = "PAUSED" if c == 1 else "ACTIVE"
        campaigns.append(
            {
                "id": campaign_id,
                "account_id": account,
                "name": SHARED_NAME if c in (0, 2) else f"Kedai campaign {c}",
                "status": status,
                "effective_status": status,
                "objective": "OUTCOME_SALES",
                "daily_budget": str(500_000 + 100_000 * c),
                "created_time": _time(FIRST_DAY - timedelta(days=10 - c)),
                "updated_time": _time(FIRST_DAY + timedelta(days=c), 12),
                "start_time": _time(FIRST_DAY),
            }
        )
        for a in range(2):
            adset_id = f"2385000000001{c}{a}"
            adsets.append(
                {
                    "id": adset_id,
                    "account_id": account,
                    "campaign_id": campaign_id,
                    "name": f"Kedai adset {c}.{a}",
                    "status": "ACTIVE",
                    "effective_status": "CAMPAIGN_PAUSED" if status == "PAUSED" else "ACTIVE",
                    "daily_budget": "250000",
                    "created_time": _time(FIRST_DAY - timedelta(days=9)),
                    "updated_time": _time(FIRST_DAY + timedelta(days=a), 13),
                    "start_time": _time(FIRST_DAY),
                }
            )
            for b in range(2):
                archived = c == 0 and a == 0 and b == 1
                ads.append(
                    {
                        "id": f"238500000002{c}{a}{b}",
                        "account_id": account,
                        "campaign_id": campaign_id,
                        "adset_id": adset_id,
                        "name": f"Kedai ad {c}.{a}.{b}",
                        "status": "ARCHIVED" if archived else "ACTIVE",
                        "effective_status": "ARCHIVED" if archived else "ACTIVE",
                        "created_time": _time(FIRST_DAY - timedelta(days=8)),
                        "updated_time": _time(FIRST_DAY + timedelta(days=b + c), 14),
                    }
                )
    meta_dir = data_dir / "meta"
    meta_dir.mkdir(parents=True, exist_ok=True)
    for name, rows in (("campaigns", campaigns), ("adsets", adsets), ("ads", ads)):
        (meta_dir / f"{name}.json").write_text(json.dumps(rows, indent=1))

    by_id = {c["id"]: c for c in campaigns} | {s["id"]: s for s in adsets}
    records = []
    for d in range(DAYS):
        day = (FIRST_DAY + timedelta(days=d)).isoformat()
        for ad in ads:
            for platform in PLATFORMS:
                impressions = int(rng.integers(0, 3000)) if rng.random() > 0.05 else 0
                clicks = int(rng.binomial(impressions, 0.02))
                purchases = int(rng.binomial(clicks, 0.1))
                records.append(
                    {
                        "date_start": day,
                        "date_stop": day,
                        "account_id": ad["account_id"],
                        "campaign_id": ad["campaign_id"],
                        "campaign_name": by_id[ad["campaign_id"]]["name"],
                        "adset_id": ad["adset_id"],
                        "adset_name": by_id[ad["adset_id"]]["name"],
                        "ad_id": ad["id"],
                        "ad_name": ad["name"],
                        "publisher_platform": platform,
                        "impressions": impressions,
                        "reach": int(impressions * rng.uniform(0.6, 0.95)),
                        "clicks": clicks,
                        "spend": round(impressions * float(rng.uniform(20, 60)) / 1000 * 15, 2),
                        "purchase_value": round(purchases * float(rng.uniform(40_000, 120_000)), 2),
                        "purchases": purchases,
                    }
                )
    path = meta_dir / "insights.parquet"
    pq.write_table(pa.Table.from_pylist(records, schema=INSIGHTS_SCHEMA), path)
    return path


def write_all(data_dir: Path) -> Path:
    write_sessions(data_dir)
    write_meta(data_dir)
    return data_dir


def http(
    method: str,
    url: str,
    body: dict | None = None,
    headers: dict[str, str] | None = None,
) -> tuple[int, dict[str, str], dict]:
    """One request with urllib: (status, lower-cased headers, JSON body), errors included."""
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, method=method, headers=headers or {})
    if data is not None:
        request.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            status, raw_headers, payload = response.status, response.headers, response.read()
    except urllib.error.HTTPError as error:
        status, raw_headers, payload = error.code, error.headers, error.read()
    return status, {k.lower(): v for k, v in raw_headers.items()}, json.loads(payload)
