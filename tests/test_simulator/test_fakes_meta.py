"""The Meta Marketing API fake over real HTTP: cursor paging through `paging.next`, insights as
strings that add up to the parquet, auth and throttling errors."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qs, quote, urlsplit

import duckdb
import pytest
from fakes_helpers import ACCOUNT, OTHER_ACCOUNT, http, served_world, write_meta

from simulator.fakes import FakeServer
from simulator.fakes.meta import DEFAULT_TOKEN, PURCHASE_ACTION_TYPES

TOKEN = f"access_token={DEFAULT_TOKEN}"
ALL_DAYS = quote(json.dumps({"since": "2025-03-01", "until": "2025-03-10"}))


data_dir, server = served_world("meta", write_meta)


@pytest.fixture
def api(server: FakeServer) -> Iterator[str]:
    """The versioned Graph root; faults and the request log start empty for each test."""
    server.meta.faults.clear()
    server.reset_requests()
    yield f"{server.base_url}/v21.0"
    server.meta.faults.clear()


def get(url: str) -> tuple[int, dict, dict]:
    return http("GET", url)


def follow(url: str) -> tuple[list[dict], list[dict]]:
    """Every item behind `url`, following `paging.next`; also each page's body."""
    items, pages = [], []
    while url:
        status, _, body = get(url)
        assert status == 200, body
        items += body["data"]
        pages.append(body)
        url = body.get("paging", {}).get("next")
    return items, pages


def parquet(data_dir: Path, query: str) -> list[tuple]:
    path = data_dir / "meta" / "insights.parquet"
    return duckdb.sql(query.replace("insights", f"read_parquet('{path}')")).fetchall()


def test_paging_next_returns_every_object_once(api: str, data_dir: Path) -> None:
    statuses = quote(json.dumps(["ACTIVE", "PAUSED", "ARCHIVED", "CAMPAIGN_PAUSED"]))
    for edge, expected in (("campaigns", 3), ("adsets", 6), ("ads", 12)):
        items, pages = follow(
            f"{api}/act_{ACCOUNT}/{edge}?fields=name,effective_status&limit=5"
            f"&effective_status={statuses}&{TOKEN}"
        )
        on_file = json.loads((data_dir / "meta" / f"{edge}.json").read_text())
        wanted = [o["id"] for o in on_file if o["account_id"] == ACCOUNT]
        assert [o["id"] for o in items] == wanted and len(wanted) == expected
        assert len(pages) == -(-expected // 5)
        assert "next" not in pages[-1].get("paging", {})
        for page in pages:
            cursors = page["paging"]["cursors"]
            assert cursors["before"] and cursors["after"]
        assert all(set(o) == {"id", "name", "effective_status"} for o in items)


def test_archived_objects_are_hidden_by_default(api: str) -> None:
    items, _ = follow(f"{api}/act_{ACCOUNT}/ads?fields=effective_status&{TOKEN}")
    assert len(items) == 11  # 12 ads, one archived
    assert "ARCHIVED" not in {o["effective_status"] for o in items}


def test_objects_filtering_and_fields(api: str) -> None:
    since = 1740902400  # 2025-03-02T08:00:00Z
    filtering = quote(
        json.dumps([{"field": "updated_time", "operator": "GREATER_THAN", "value": since}])
    )
    items, _ = follow(
        f"{api}/act_{ACCOUNT}/campaigns?fields=updated_time&filtering={filtering}&{TOKEN}"
    )
    assert [o["updated_time"][:10] for o in items] == ["2025-03-03"]
    _, _, body = get(f"{api}/act_{ACCOUNT}/campaigns?{TOKEN}")
    assert all(set(o) == {"id"} for o in body["data"])  # no fields: just the id
    status, _, body = get(f"{api}/act_{ACCOUNT}/campaigns?fields=name,colour&{TOKEN}")
    assert status == 400 and body["error"]["code"] == 100
    assert "(colour)" in body["error"]["message"]


def test_previous_page_by_before_cursor(api: str) -> None:
    url = f"{api}/act_{ACCOUNT}/ads?limit=4&{TOKEN}"
    _, pages = follow(url)
    assert "previous" not in pages[0]["paging"]
    status, _, back = get(pages[1]["paging"]["previous"])
    assert status == 200 and back["data"] == pages[0]["data"]


def test_insights_are_strings_and_add_up_to_the_parquet(api: str, data_dir: Path) -> None:
    fields = (
        "campaign_id,adset_id,ad_id,ad_name,impressions,reach,clicks,spend,actions,action_values"
    )
    rows, pages = follow(
        f"{api}/act_{ACCOUNT}/insights?level=ad&fields={fields}&breakdowns=publisher_platform"
        f"&time_increment=1&time_range={ALL_DAYS}&limit=50&{TOKEN}"
    )
    assert len(pages) > 3
    keys = [(r["date_start"], r["ad_id"], r["publisher_platform"]) for r in rows]
    assert len(set(keys)) == len(keys)
    for row in rows:
        assert row["date_start"] == row["date_stop"]
        assert row["publisher_platform"] in ("facebook", "instagram")
        for name in ("impressions", "reach", "clicks", "spend"):
            assert isinstance(row[name], str)
        for action in row.get("actions", []) + row.get("action_values", []):
            assert isinstance(action["value"], str)
            assert action["action_type"] in PURCHASE_ACTION_TYPES

    def purchases(row: dict, key: str) -> float:
        return sum(
            float(a["value"])
            for a in row.get(key, [])
            if a["action_type"] == "offsite_conversion.fb_pixel_purchase"
        )

    [(n_rows, impressions, reach, clicks, spend, bought, value)] = parquet(
        data_dir,
        "SELECT count(*) FILTER (WHERE impressions > 0 OR spend > 0 OR purchases > 0), "
        "sum(impressions), sum(reach), sum(clicks), sum(spend), sum(purchases), "
        f"sum(purchase_value) FROM insights WHERE account_id = '{ACCOUNT}'",
    )
    assert len(rows) == n_rows  # rows without delivery are left out, as Meta leaves them out
    assert sum(int(r["impressions"]) for r in rows) == impressions
    assert sum(int(r["reach"]) for r in rows) == reach
    assert sum(int(r["clicks"]) for r in rows) == clicks
    assert sum(float(r["spend"]) for r in rows) == pytest.approx(spend, abs=0.01)
    assert sum(purchases(r, "actions") for r in rows) == bought > 0
    assert sum(purchases(r, "action_values") for r in rows) == pytest.approx(value, abs=0.01)
    assert not any("actions" in r for r in rows if purchases(r, "actions") == 0)


def test_insights_roll_up_by_level_and_period(api: str, data_dir: Path) -> None:
    rows, _ = follow(
        f"{api}/act_{ACCOUNT}/insights?level=campaign&fields=campaign_id,campaign_name,impressions,spend"
        f"&time_range={ALL_DAYS}&{TOKEN}"
    )
    expected = parquet(
        data_dir,
        "SELECT campaign_id, sum(impressions), sum(spend) FROM insights "
        f"WHERE account_id = '{ACCOUNT}' GROUP BY 1 ORDER BY 1",
    )
    assert [(r["campaign_id"], int(r["impressions"])) for r in rows] == [e[:2] for e in expected]
    assert {(r["date_start"], r["date_stop"]) for r in rows} == {("2025-03-01", "2025-03-10")}
    assert "ad_id" not in rows[0] and "publisher_platform" not in rows[0]

    weekly, _ = follow(
        f"{api}/act_{ACCOUNT}/insights?level=account&time_increment=7&time_range={ALL_DAYS}&{TOKEN}"
    )
    assert [(r["date_start"], r["date_stop"]) for r in weekly] == [
        ("2025-03-01", "2025-03-07"),
        ("2025-03-08", "2025-03-10"),
    ]
    assert sum(int(r["impressions"]) for r in weekly) == sum(e[1] for e in expected)


def test_a_platform_breakdown_gives_one_row_per_campaign_day_and_platform(
    api: str, data_dir: Path
) -> None:
    """As Meta answers breakdowns=publisher_platform at campaign level: the campaign's ads summed,
    each platform a row of its own, both platforms of a day apart."""
    rows, _ = follow(
        f"{api}/act_{ACCOUNT}/insights?level=campaign&fields=campaign_id,campaign_name,"
        f"impressions,clicks,spend&breakdowns=publisher_platform&time_increment=1"
        f"&time_range={ALL_DAYS}&limit=100&{TOKEN}"
    )
    expected = parquet(
        data_dir,
        "SELECT campaign_id, date_start, publisher_platform, sum(impressions), sum(clicks), "
        f"round(sum(spend), 2) FROM insights WHERE account_id = '{ACCOUNT}' GROUP BY ALL "
        "HAVING sum(impressions) > 0 OR sum(spend) > 0 OR sum(purchases) > 0 ORDER BY ALL",
    )
    got = sorted(
        (
            r["campaign_id"],
            r["date_start"],
            r["publisher_platform"],
            int(r["impressions"]),
            int(r["clicks"]),
            float(r["spend"]),
        )
        for r in rows
    )
    assert [g[:5] for g in got] == [e[:5] for e in expected]
    assert [g[5] for g in got] == pytest.approx([e[5] for e in expected], abs=0.01)
    assert {g[2] for g in got} == {"facebook", "instagram"}
    assert all("ad_id" not in r and r["date_start"] == r["date_stop"] for r in rows)


def test_date_preset_counts_back_from_today(api: str, data_dir: Path) -> None:
    rows, _ = follow(f"{api}/act_{ACCOUNT}/insights?date_preset=last_7d&time_increment=1&{TOKEN}")
    days = sorted({r["date_start"] for r in rows})
    assert days == [f"2025-03-0{d}" for d in range(3, 10)]  # the 7 days before 2025-03-10


def test_other_account_and_unknown_account(api: str, data_dir: Path) -> None:
    items, _ = follow(f"{api}/act_{OTHER_ACCOUNT}/campaigns?fields=account_id&{TOKEN}")
    assert [o["account_id"] for o in items] == [OTHER_ACCOUNT]
    status, _, body = get(f"{api}/act_42/campaigns?{TOKEN}")
    assert status == 400
    assert (body["error"]["code"], body["error"]["error_subcode"]) == (100, 33)
    assert body["error"]["type"] == "GraphMethodException"


def test_bearer_header_works_too(server: FakeServer, api: str) -> None:
    status, _, body = http(
        "GET",
        f"{api}/act_{ACCOUNT}/campaigns",
        headers={"Authorization": f"Bearer {DEFAULT_TOKEN}"},
    )
    assert status == 200 and body["data"]


def test_bad_missing_and_expired_tokens(api: str, server: FakeServer) -> None:
    status, _, body = get(f"{api}/act_{ACCOUNT}/insights?access_token=nope")
    assert status == 400
    assert body["error"]["code"] == 190 and body["error"]["type"] == "OAuthException"
    assert body["error"]["fbtrace_id"]
    status, _, body = get(f"{api}/act_{ACCOUNT}/insights")
    assert status == 400 and body["error"]["code"] == 104
    server.meta.faults.add("expired_token")
    status, _, body = get(f"{api}/act_{ACCOUNT}/insights?{TOKEN}")
    assert status == 400
    assert (body["error"]["code"], body["error"]["error_subcode"]) == (190, 463)
    assert body["error"]["message"].startswith("Error validating access token: Session has expired")
    assert get(f"{api}/act_{ACCOUNT}/insights?{TOKEN}")[0] == 200


def test_rate_limits_on_demand(api: str, server: FakeServer) -> None:
    http(
        "POST",
        f"{server.base_url}/_fake/faults",
        {"rate_limit": 1, "account_rate_limit": {"count": 1, "path_contains": "/insights"}},
    )
    status, _, body = get(f"{api}/act_{ACCOUNT}/campaigns?{TOKEN}")
    assert status == 400
    assert (body["error"]["code"], body["error"]["error_subcode"]) == (17, 2446079)
    assert body["error"]["message"] == "(#17) User request limit reached"
    assert get(f"{api}/act_{ACCOUNT}/campaigns?{TOKEN}")[0] == 200  # not /insights: passes

    status, headers, body = get(f"{api}/act_{ACCOUNT}/insights?{TOKEN}")
    assert status == 400 and body["error"]["code"] == 80000 and body["error"]["is_transient"]
    usage = json.loads(headers["x-business-use-case-usage"])[ACCOUNT][0]
    assert usage["type"] == "ads_insights" and usage["call_count"] == 100
    assert usage["estimated_time_to_regain_access"] > 0

    status, headers, _ = get(f"{api}/act_{ACCOUNT}/insights?{TOKEN}")
    assert status == 200
    assert json.loads(headers["x-business-use-case-usage"])[ACCOUNT][0]["call_count"] < 100
    assert server.request_counts()[f"/v21.0/act_{ACCOUNT}/insights"] == 2


def test_next_link_keeps_the_query(api: str) -> None:
    _, _, body = get(
        f"{api}/act_{ACCOUNT}/insights?level=ad&fields=ad_id,spend&time_increment=1"
        f"&time_range={ALL_DAYS}&limit=3&{TOKEN}"
    )
    query = parse_qs(urlsplit(body["paging"]["next"]).query)
    assert query["level"] == ["ad"] and query["limit"] == ["3"]
    assert json.loads(query["time_range"][0]) == {"since": "2025-03-01", "until": "2025-03-10"}
    assert query["access_token"] == [DEFAULT_TOKEN]
    assert query["after"] == [body["paging"]["cursors"]["after"]]
