"""The GA4 Data API fake over real HTTP: runReport's shape, its figures against the parquet, paging,
auth and injected failures."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import duckdb
import pytest
from fakes_helpers import http, served_world, write_sessions

from simulator.fakes import FakeServer
from simulator.fakes.ga4 import DEFAULT_PROPERTY_ID, DEFAULT_TOKEN

AUTH = {"Authorization": f"Bearer {DEFAULT_TOKEN}"}
ALL_DAYS = {"startDate": "2025-03-01", "endDate": "2025-03-10"}

Report = Callable[..., tuple[int, dict, dict]]


data_dir, server = served_world("ga4", write_sessions)


@pytest.fixture
def report(server: FakeServer) -> Iterator[Report]:
    """POST a runReport body; faults and the request log start empty for each test."""
    server.ga4.faults.clear()
    server.reset_requests()
    url = f"{server.base_url}/v1beta/properties/{DEFAULT_PROPERTY_ID}:runReport"

    def run(body: dict, headers: dict | None = None, url: str = url):
        return http("POST", url, body, AUTH if headers is None else headers)

    yield run
    server.ga4.faults.clear()


def sql(data_dir: Path, query: str) -> list[tuple]:
    sessions = data_dir / "ga4" / "sessions.parquet"
    return duckdb.sql(query.replace("sessions", f"read_parquet('{sessions}')")).fetchall()


def test_response_shape_and_string_values(report: Report) -> None:
    status, _, body = report(
        {
            "dateRanges": [ALL_DAYS],
            "dimensions": [{"name": "date"}, {"name": "platform"}],
            "metrics": [{"name": "sessions"}, {"name": "purchaseRevenue"}],
            "keepEmptyRows": True,
        }
    )
    assert status == 200
    assert body["kind"] == "analyticsData#runReport"
    assert body["dimensionHeaders"] == [{"name": "date"}, {"name": "platform"}]
    assert body["metricHeaders"] == [
        {"name": "sessions", "type": "TYPE_INTEGER"},
        {"name": "purchaseRevenue", "type": "TYPE_CURRENCY"},
    ]
    assert body["metadata"] == {"currencyCode": "IDR", "timeZone": "Asia/Jakarta"}
    assert body["rowCount"] == len(body["rows"]) == 30  # 10 days x 3 platforms
    for row in body["rows"]:
        assert all(isinstance(v["value"], str) for v in row["dimensionValues"])
        assert all(isinstance(v["value"], str) for v in row["metricValues"])
        assert len(row["dimensionValues"][0]["value"]) == 8  # YYYYMMDD
    keys = [tuple(v["value"] for v in r["dimensionValues"]) for r in body["rows"]]
    assert keys == sorted(keys)  # deterministic: dimensions ascending


def test_figures_match_the_parquet(report: Report, data_dir: Path) -> None:
    metrics = ["sessions", "engagedSessions", "keyEvents", "purchaseRevenue", "newUsers"]
    _, _, body = report(
        {
            "dateRanges": [{"startDate": "2025-03-03", "endDate": "2025-03-08"}],
            "dimensions": [{"name": "date"}, {"name": "sessionSource"}],
            "metrics": [{"name": m} for m in metrics],
        }
    )
    got = {
        tuple(v["value"] for v in r["dimensionValues"]): [v["value"] for v in r["metricValues"]]
        for r in body["rows"]
    }
    expected = sql(
        data_dir,
        "SELECT date, session_source, count(*), count(*) FILTER (WHERE is_engaged), "
        "sum(key_events), sum(purchase_revenue), "
        "count(DISTINCT user_pseudo_id) FILTER (WHERE is_new_user) "
        "FROM sessions WHERE date BETWEEN '20250303' AND '20250308' GROUP BY ALL",
    )
    assert len(got) == len(expected) == body["rowCount"]
    for day, source, sessions, engaged, key_events, revenue, new_users in expected:
        values = got[(day, source)]
        assert [int(v) for v in values[:3]] == [sessions, engaged, key_events]
        assert float(values[3]) == pytest.approx(revenue, abs=0.01)
        assert int(values[4]) == new_users
    total = sum(int(v[0]) for v in got.values())
    assert (
        total
        == sql(
            data_dir, "SELECT count(*) FROM sessions WHERE date BETWEEN '20250303' AND '20250308'"
        )[0][0]
    )


def test_paging_returns_every_row_once(report: Report, server: FakeServer) -> None:
    base = {
        "dateRanges": [ALL_DAYS],
        "dimensions": [{"name": "date"}, {"name": "deviceCategory"}, {"name": "region"}],
        "metrics": [{"name": "sessions"}],
    }
    _, _, whole = report(base)
    rows, offset = [], 0
    while True:
        status, _, page = report({**base, "limit": "7", "offset": str(offset)})
        assert status == 200
        assert page["rowCount"] == whole["rowCount"] > 20
        rows += page.get("rows", [])
        offset += 7
        if offset >= page["rowCount"]:
            break
    assert rows == whole["rows"]
    keys = [tuple(v["value"] for v in r["dimensionValues"]) for r in rows]
    assert len(set(keys)) == len(keys) == whole["rowCount"]
    assert server.request_counts()[f"/v1beta/properties/{DEFAULT_PROPERTY_ID}:runReport"] == 1 + (
        -(-whole["rowCount"] // 7)
    )
    _, _, past_end = report({**base, "offset": whole["rowCount"] + 5})
    assert "rows" not in past_end and past_end["rowCount"] == whole["rowCount"]


def test_total_users_are_distinct_not_summed(report: Report, data_dir: Path) -> None:
    distinct = sql(data_dir, "SELECT count(DISTINCT user_pseudo_id) FROM sessions")[0][0]
    _, _, by_day = report(
        {
            "dateRanges": [ALL_DAYS],
            "dimensions": [{"name": "date"}],
            "metrics": [{"name": "totalUsers"}],
            "metricAggregations": ["TOTAL"],
        }
    )
    summed = sum(int(r["metricValues"][0]["value"]) for r in by_day["rows"])
    assert summed > distinct  # users come back on several days
    assert by_day["totals"][0]["metricValues"][0]["value"] == str(distinct)
    assert by_day["totals"][0]["dimensionValues"] == [{"value": "RESERVED_TOTAL"}]
    _, _, overall = report({"dateRanges": [ALL_DAYS], "metrics": [{"name": "totalUsers"}]})
    assert overall["rows"] == [{"metricValues": [{"value": str(distinct)}]}]
    assert "dimensionHeaders" not in overall


def test_relative_dates_count_from_the_worlds_today(report: Report, data_dir: Path) -> None:
    def sessions(start: str, end: str) -> int:
        _, _, body = report(
            {
                "dateRanges": [{"startDate": start, "endDate": end}],
                "metrics": [{"name": "sessions"}],
            }
        )
        return int(body["rows"][0]["metricValues"][0]["value"])

    assert sessions("today", "today") == sessions("2025-03-10", "2025-03-10")
    assert sessions("yesterday", "yesterday") == sessions("2025-03-09", "2025-03-09")
    assert (
        sessions("3daysAgo", "today")
        == sql(data_dir, "SELECT count(*) FROM sessions WHERE date >= '20250307'")[0][0]
    )


def test_two_date_ranges_add_a_date_range_dimension(report: Report) -> None:
    _, _, body = report(
        {
            "dateRanges": [
                {"startDate": "2025-03-01", "endDate": "2025-03-05"},
                {"startDate": "2025-03-06", "endDate": "2025-03-10", "name": "second_half"},
            ],
            "metrics": [{"name": "sessions"}],
        }
    )
    assert body["dimensionHeaders"] == [{"name": "dateRange"}]
    names = [r["dimensionValues"][0]["value"] for r in body["rows"]]
    assert names == ["date_range_0", "second_half"]
    assert sum(int(r["metricValues"][0]["value"]) for r in body["rows"]) == 400


def test_order_bys_and_dimension_filter(report: Report, data_dir: Path) -> None:
    _, _, body = report(
        {
            "dateRanges": [ALL_DAYS],
            "dimensions": [{"name": "sessionSource"}, {"name": "sessionCampaignName"}],
            "metrics": [{"name": "sessions"}],
            "orderBys": [{"metric": {"metricName": "sessions"}, "desc": True}],
            "dimensionFilter": {
                "notExpression": {
                    "filter": {
                        "fieldName": "sessionMedium",
                        "stringFilter": {"matchType": "EXACT", "value": "EMAIL"},
                    }
                }
            },
        }
    )
    counts = [int(r["metricValues"][0]["value"]) for r in body["rows"]]
    assert counts == sorted(counts, reverse=True)
    sources = {
        r["dimensionValues"][0]["value"]: r["dimensionValues"][1]["value"] for r in body["rows"]
    }
    assert "newsletter" not in sources  # case-insensitive by default, like GA4
    assert sources["google"] == "(not set)"  # a missing campaign reads as GA4 writes it
    expected = sql(data_dir, "SELECT count(*) FROM sessions WHERE session_medium <> 'email'")
    assert sum(counts) == expected[0][0]


def test_no_matching_sessions_leaves_rows_and_row_count_out(report: Report) -> None:
    status, _, body = report(
        {
            "dateRanges": [{"startDate": "2024-01-01", "endDate": "2024-01-31"}],
            "dimensions": [{"name": "date"}],
            "metrics": [{"name": "sessions"}],
        }
    )
    assert status == 200
    assert "rows" not in body and "rowCount" not in body  # proto3 JSON drops empty fields


@pytest.mark.parametrize(
    ("headers", "why"),
    [({"Authorization": "Bearer wrong"}, "wrong token"), ({}, "no token")],
)
def test_bad_token_is_401(report: Report, headers: dict, why: str) -> None:
    status, _, body = report({"dateRanges": [ALL_DAYS], "metrics": [{"name": "sessions"}]}, headers)
    assert status == 401, why
    assert body["error"]["code"] == 401
    assert body["error"]["status"] == "UNAUTHENTICATED"


def test_quota_error_once_then_success(report: Report, server: FakeServer) -> None:
    status, _, _ = http("POST", f"{server.base_url}/_fake/faults", {"quota": 1})
    assert status == 200
    body = {"dateRanges": [ALL_DAYS], "metrics": [{"name": "sessions"}]}
    status, _, error = report(body)
    assert status == 429
    assert error["error"]["status"] == "RESOURCE_EXHAUSTED"
    assert error["error"]["message"].startswith("Exhausted property tokens per hour")
    status, _, ok = report(body)
    assert status == 200 and ok["rows"][0]["metricValues"][0]["value"] == "400"
    assert [r["status"] for r in server.requests] == [429, 200]


def test_unavailable_and_expired_token_on_demand(report: Report, server: FakeServer) -> None:
    server.ga4.faults.add("unavailable", count=2, after=1)
    server.ga4.faults.add("expired_token", count=1, after=3)
    body = {"dateRanges": [ALL_DAYS], "metrics": [{"name": "sessions"}]}
    statuses = [report(body)[0] for _ in range(6)]
    assert statuses == [200, 503, 503, 401, 200, 200]  # `after` lets that many through first


def test_invalid_requests(report: Report, server: FakeServer) -> None:
    status, _, body = report(
        {"dateRanges": [ALL_DAYS], "dimensions": [{"name": "city"}], "metrics": [{"name": "x"}]}
    )
    assert status == 400 and body["error"]["status"] == "INVALID_ARGUMENT"
    assert body["error"]["message"].startswith("Field city is not a valid dimension")
    status, _, body = report({"dateRanges": [ALL_DAYS], "metrics": [{"name": "pageViews"}]})
    assert status == 400 and "pageViews is not a valid metric" in body["error"]["message"]
    status, _, body = report({"metrics": [{"name": "sessions"}]})
    assert status == 400
    status, _, body = report({"dateRanges": [ALL_DAYS], "metrics": [{"name": "sessions"}], "x": 1})
    assert status == 400 and 'Unknown name "x"' in body["error"]["message"]
    status, _, body = report(
        {"dateRanges": [ALL_DAYS], "metrics": [{"name": "sessions"}]},
        url=f"{server.base_url}/v1beta/properties/999:runReport",
    )
    assert status == 403 and body["error"]["status"] == "PERMISSION_DENIED"
