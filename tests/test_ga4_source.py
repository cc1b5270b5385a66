"""The GA4 source against the local Data API fake over real HTTP, into a temporary DuckDB."""

from __future__ import annotations

import json
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path

import duckdb
import numpy as np
import pytest
from dlt.pipeline.exceptions import PipelineStepFailed

from expectations.gate import suite_expectations
from expectations.promote import promote
from expectations.replay import replay
from expectations.suite_runner import ROW_NUMBER, SuiteRunner
from expectations.suites.ga4 import table_suites
from ingestion.ga4 import SOURCE_NAME, ga4_source
from ingestion.ga4.helpers import (
    GA4CredentialsError,
    GA4Error,
    GA4QuotaError,
    run_report_body,
    typed_rows,
)
from ingestion.ga4.settings import REPORTS
from ingestion.pipelines import lake_pipeline, landing_pipeline
from regulars.settings import Settings, load_settings
from simulator.fakes import FakeServer
from simulator.fakes.ga4 import DEFAULT_PROPERTY_ID, DEFAULT_TOKEN
from tests.test_simulator.fakes_helpers import (
    FIRST_DAY,
    TODAY,
    recorded,
    served_world,
    write_sessions,
)

RUN_REPORT = f"/v1beta/properties/{DEFAULT_PROPERTY_ID}:runReport"
PAGE_SIZE = 40
TRAFFIC = "landing_ga4.traffic_daily"
# The report's grain over the fixture's sessions, as the fake (and GA4) group it.
EXPECTED_SQL = """
    select strptime(date, '%Y%m%d')::date as date,
        coalesce(nullif(session_source, ''), '(not set)') as session_source,
        coalesce(nullif(session_medium, ''), '(not set)') as session_medium,
        coalesce(nullif(session_campaign_name, ''), '(not set)') as session_campaign_name,
        coalesce(nullif(device_category, ''), '(not set)') as device_category,
        coalesce(nullif(region, ''), '(not set)') as region,
        count(*) as sessions,
        count(distinct user_pseudo_id) as total_users,
        count(distinct user_pseudo_id) filter (where is_new_user) as new_users,
        count(*) filter (where is_engaged) as engaged_sessions,
        sum(key_events) as key_events,
        round(sum(purchase_revenue), 2)::decimal(18, 2) as purchase_revenue
    from read_parquet('{path}') group by all order by all
"""
LANDED_SQL = f"""
    select date, session_source, session_medium, session_campaign_name, device_category, region,
        sessions, total_users, new_users, engaged_sessions, key_events, purchase_revenue
    from {TRAFFIC} order by all
"""


class Fake:
    """The GA4 fake with the JSON body of every runReport it was sent."""

    def __init__(self, server: FakeServer):
        self.server = server
        self.bodies: list[dict] = []
        handle = server.ga4.handle

        def recording(request):
            if request.body:
                self.bodies.append(json.loads(request.body))
            return handle(request)

        server.ga4.handle = recording

    def reset(self) -> None:
        self.server.ga4.faults.clear()
        self.server.reset_requests()
        self.bodies.clear()

    def calls(self) -> int:
        return self.server.request_counts()[RUN_REPORT]

    def statuses(self) -> list[int]:
        return [entry["status"] for entry in self.server.requests]


data_dir, server = served_world("ga4", write_sessions)


fake = recorded(Fake)


def load(settings: Settings, fake: Fake, **overrides):
    arguments = {
        "property_id": DEFAULT_PROPERTY_ID,
        "access_token": DEFAULT_TOKEN,
        "start_date": FIRST_DAY.isoformat(),
        "base_url": fake.server.base_url,
        "page_size": PAGE_SIZE,
        "today": TODAY.isoformat(),
        "request_max_attempts": 3,
        "request_backoff_factor": 0.01,  # waits of 10 ms, 20 ms: tests stay fast
        "request_max_retry_delay": 0.05,
    }
    source = ga4_source(**(arguments | overrides))
    return landing_pipeline(SOURCE_NAME, settings).run(source)


def query(settings: Settings, sql: str) -> list[tuple]:
    with duckdb.connect(str(settings.warehouse_path), read_only=True) as connection:
        return connection.execute(sql).fetchall()


def expected(data_dir: Path) -> list[tuple]:
    path = data_dir / "ga4" / "sessions.parquet"
    return duckdb.sql(EXPECTED_SQL.format(path=path)).fetchall()


def cause(error: BaseException, kind: type[BaseException]) -> BaseException:
    """The `kind` error somewhere in the chain dlt wraps around a resource's exception."""
    seen = error
    while seen is not None:
        if isinstance(seen, kind):
            return seen
        seen = seen.__cause__ or seen.__context__
    raise AssertionError(f"no {kind.__name__} behind {error!r}")


# --- pure functions -----------------------------------------------------------------------------


def test_rows_are_typed_by_header_name_and_revenue_loses_float_noise():
    report = REPORTS[0]
    metrics = list(reversed(report.metrics))  # headers, not positions, decide
    response = {
        "dimensionHeaders": [{"name": name} for name in report.dimensions],
        "metricHeaders": [{"name": name} for name in metrics],
        "rows": [
            {
                "dimensionValues": [{"value": v} for v in ("20250301", "google", "organic")]
                + [{"value": "(not set)"}, {"value": "mobile"}, {"value": "Bali"}],
                "metricValues": [
                    {
                        "value": {"purchaseRevenue": "145591.30000000002", "keyEvents": "2.5"}.get(
                            name, "7"
                        )
                    }
                    for name in metrics
                ],
            }
        ],
    }
    (row,) = typed_rows(report, response)
    assert row["date"] == FIRST_DAY
    assert row["sessions"] == 7 and isinstance(row["sessions"], int)
    assert row["purchase_revenue"] == Decimal("145591.30")
    assert row["key_events"] == 2.5  # GA4 declares keyEvents TYPE_FLOAT: not truncated to 2
    assert json.loads(row["report_row_id"])[:2] == ["2025-03-01", "google"]
    assert typed_rows(report, {"rowCount": 0}) == []  # proto3 JSON leaves empty lists out
    body = run_report_body(report, FIRST_DAY, TODAY)
    assert body["dateRanges"] == [{"startDate": "2025-03-01", "endDate": "2025-03-10"}]
    assert [o["dimension"]["dimensionName"] for o in body["orderBys"]] == list(report.dimensions)


# --- against the fake ---------------------------------------------------------------------------


def test_pages_land_every_row_once_and_add_up_to_the_sessions(
    regulars_env: Settings, fake: Fake, data_dir: Path
):
    load(regulars_env, fake)

    want = expected(data_dir)
    assert len(want) > 4 * PAGE_SIZE  # several pages
    assert fake.calls() == -(-len(want) // PAGE_SIZE)
    assert [(b["offset"], b["limit"]) for b in fake.bodies] == [
        (offset, PAGE_SIZE) for offset in range(0, len(want), PAGE_SIZE)
    ]
    assert query(regulars_env, LANDED_SQL) == want
    ((rows, keys, sessions, revenue),) = query(
        regulars_env,
        f"select count(*), count(distinct report_row_id), sum(sessions), sum(purchase_revenue) "
        f"from {TRAFFIC}",
    )
    ((all_sessions, all_revenue),) = duckdb.sql(
        "select count(*), round(sum(purchase_revenue), 2) from "
        f"read_parquet('{data_dir / 'ga4' / 'sessions.parquet'}')"
    ).fetchall()
    assert rows == keys == len(want)
    assert (sessions, float(revenue)) == (all_sessions, pytest.approx(all_revenue, abs=0.05))

    report = promote(SOURCE_NAME, regulars_env).report.tables["traffic_daily"]
    assert (report.promoted_rows, report.quarantined_rows, report.batch_failure) == (
        len(want),
        0,
        None,
    )


def test_a_429_is_retried_and_the_load_completes(regulars_env: Settings, fake: Fake, data_dir):
    fake.server.ga4.faults.add("quota", count=1, after=2)  # the third page is refused once
    load(regulars_env, fake)

    pages = -(-len(expected(data_dir)) // PAGE_SIZE)
    assert fake.calls() == pages + 1
    assert fake.statuses().count(429) == 1
    assert fake.bodies[2]["offset"] == fake.bodies[3]["offset"] == 2 * PAGE_SIZE  # same page again
    assert query(regulars_env, LANDED_SQL) == expected(data_dir)


def test_a_quota_that_stays_spent_stops_with_an_error_that_says_wait(
    regulars_env: Settings, fake: Fake
):
    fake.server.ga4.faults.add("quota", count=10)
    with pytest.raises(PipelineStepFailed) as failed:
        load(regulars_env, fake)
    error = cause(failed.value, GA4QuotaError)
    assert str(error).startswith(f"GA4 property {DEFAULT_PROPERTY_ID}: quota exhausted")
    assert "after 3 attempt(s)" in str(error) and "Wait for the quota to refill" in str(error)
    assert fake.calls() == 3  # request_max_attempts

    fake.reset()
    fake.server.ga4.faults.add("quota_daily", count=10)
    with pytest.raises(PipelineStepFailed) as failed:
        load(regulars_env, fake)
    assert "after midnight Pacific time" in str(cause(failed.value, GA4QuotaError))
    assert fake.calls() == 1  # a spent daily quota is not worth retrying


def test_a_refused_token_names_the_property_and_the_setting(regulars_env: Settings, fake: Fake):
    with pytest.raises(PipelineStepFailed) as failed:
        load(regulars_env, fake, access_token="expired-token")
    error = cause(failed.value, GA4CredentialsError)
    assert str(error).startswith(f"GA4 property {DEFAULT_PROPERTY_ID}: the access token was")
    assert "sources.ga4.access_token" in str(error) and ".dlt/secrets.toml" in str(error)
    assert fake.calls() == 1  # a 401 is not retried

    fake.reset()
    with pytest.raises(PipelineStepFailed) as failed:
        load(regulars_env, fake, property_id="999")
    assert "GA4 property 999: permission denied" in str(cause(failed.value, GA4CredentialsError))


def test_revenue_is_asked_for_in_the_chains_currency(
    regulars_env: Settings, fake: Fake, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setenv("CHAIN__CURRENCY", "idr")
    load(regulars_env, fake)
    assert fake.bodies and {body["currencyCode"] for body in fake.bodies} == {"IDR"}

    # The fake reports in rupiah only, as a property asked for a currency it refuses would: a
    # dollar chain's request says USD, and the load stops rather than land rupiah as dollars.
    fake.reset()
    monkeypatch.setenv("CHAIN__CURRENCY", "USD")
    with pytest.raises(PipelineStepFailed) as failed:
        load(regulars_env, fake)
    assert [body["currencyCode"] for body in fake.bodies] == ["USD"]
    assert "reports in IDR only" in str(cause(failed.value, GA4Error))

    # Unset, the request leaves the currency to the property; `currency_code` overrides.
    assert "currencyCode" not in run_report_body(REPORTS[0], FIRST_DAY, TODAY)
    fake.reset()
    load(regulars_env, fake, currency_code="IDR")
    assert {body["currencyCode"] for body in fake.bodies} == {"IDR"}


def test_a_second_run_re_pulls_only_the_lookback_window(
    regulars_env: Settings, fake: Fake, data_dir: Path
):
    load(regulars_env, fake)
    first = query(regulars_env, f"select count(*), sum(sessions) from {TRAFFIC}")
    fake.reset()

    load(regulars_env, fake)

    window_start = TODAY - timedelta(days=3)  # newest loaded day minus lookback_days
    assert {b["dateRanges"][0]["startDate"] for b in fake.bodies} == {window_start.isoformat()}
    assert query(regulars_env, f"select count(*), sum(sessions) from {TRAFFIC}") == first
    loads = query(
        regulars_env,
        f"select date >= '{window_start}', count(distinct _dlt_load_id) from {TRAFFIC} "
        "group by 1 order by 1",
    )
    assert loads == [(False, 1), (True, 1)]  # the window came again; older days stayed
    ((old, new),) = query(
        regulars_env,
        f"select min(_dlt_load_id) filter (where date < '{window_start}'), "
        f"min(_dlt_load_id) filter (where date >= '{window_start}') from {TRAFFIC}",
    )
    assert old < new


def test_a_lake_that_landed_key_events_as_integers_starts_over_as_floats(
    regulars_env: Settings, fake: Fake, data_dir: Path, monkeypatch: pytest.MonkeyPatch
):
    """A lake built before keyEvents was a float: the next run drops the GA4 landing and lake
    tables and re-pulls from start_date, instead of failing on the frozen type for ever."""
    from ingestion.ga4 import settings as ga4_settings
    from ingestion.starting_over import restart_changed_tables, restart_message

    with monkeypatch.context() as old_release:
        old_release.setitem(ga4_settings.METRIC_KINDS, "keyEvents", "integer")
        load(regulars_env, fake)
        promote(SOURCE_NAME, regulars_env)
    assert query(regulars_env, f"select typeof(key_events) from {TRAFFIC} limit 1") == [("BIGINT",)]
    fake.reset()

    source = ga4_source(
        property_id=DEFAULT_PROPERTY_ID,
        access_token=DEFAULT_TOKEN,
        start_date=FIRST_DAY.isoformat(),
        base_url=fake.server.base_url,
        page_size=PAGE_SIZE,
        today=TODAY.isoformat(),
    )
    changed = restart_changed_tables(SOURCE_NAME, source, regulars_env)
    assert [str(c) for c in changed] == [
        "traffic_daily.key_events is bigint in the lake, double now (this release declares a "
        "new type)"
    ]
    assert "start over" in restart_message(SOURCE_NAME, changed)
    landing_pipeline(SOURCE_NAME, regulars_env).run(source)
    promote(SOURCE_NAME, regulars_env)

    # The whole history again, from start_date, not the lookback window.
    assert {b["dateRanges"][0]["startDate"] for b in fake.bodies} == {FIRST_DAY.isoformat()}
    for table in (TRAFFIC, "raw_ga4.traffic_daily"):
        assert query(regulars_env, f"select distinct typeof(key_events) from {table}") == [
            ("DOUBLE",)
        ]
    lake = query(
        regulars_env,
        "select date, session_source, session_medium, session_campaign_name, device_category, "
        "region, sessions, total_users, new_users, engaged_sessions, key_events, purchase_revenue "
        "from raw_ga4.traffic_daily order by all",
    )
    assert lake == sorted(expected(data_dir))
    assert restart_changed_tables(SOURCE_NAME, source, regulars_env) == []  # once only


def test_revised_days_replace_the_old_rows_whole(regulars_env: Settings, tmp_path: Path):
    """GA4 revises recent days: the window's rows are replaced (dropped groups go too)."""
    data_dir = tmp_path / "revised_world"
    write_sessions(data_dir, seed=3)
    with FakeServer(data_dir, ["ga4"], today=TODAY) as server:
        fake = Fake(server)
        load(regulars_env, fake)
        before = expected(data_dir)
        write_sessions(data_dir, seed=4)  # "GA4 reprocessed": every day's figures differ now
        load(regulars_env, fake)
        after = expected(data_dir)

    window_start = TODAY - timedelta(days=3)
    want = [r for r in before if r[0] < window_start] + [r for r in after if r[0] >= window_start]
    assert query(regulars_env, LANDED_SQL) == sorted(want)


def test_the_suite_holds_back_impossible_rows(data_dir: Path):
    # Arrow to pandas, as the gate reads a landed batch: dates and Decimals stay objects.
    sql = EXPECTED_SQL.format(path=data_dir / "ga4" / "sessions.parquet")
    frame = duckdb.sql(sql).to_arrow_table().to_pandas()
    frame = frame.head(6).assign(report_row_id=[f"row-{i}" for i in range(6)])
    frame.loc[1, "purchase_revenue"] = Decimal("-5.00")
    frame.loc[2, "date"] = date(2099, 1, 1)
    frame.loc[3, "session_source"] = None
    frame.loc[4, "sessions"] = -1
    # GA4's distinct counts are estimates, each on its own: a row can report more new users than
    # users, or more engaged sessions than sessions. That is GA4's figure, not bad data.
    frame.loc[0, "new_users"] = frame.loc[0, "total_users"] + 1
    frame.loc[5, "engaged_sessions"] = frame.loc[5, "sessions"] + 1

    suite = table_suites()["traffic_daily"]
    frame = suite.derive(frame)
    frame[ROW_NUMBER] = np.arange(len(frame))
    verdict = SuiteRunner(suite.suite_name, suite_expectations(suite)).validate(frame)

    assert verdict.batch_passed, verdict.batch_failures
    reasons = {row: " ".join(found) for row, found in verdict.row_failures.items()}
    assert set(reasons) == {1, 2, 3, 4}
    assert "_purchase_revenue" in reasons[1]
    assert "_date_at" in reasons[2]
    assert "column=session_source" in reasons[3]
    assert "column=sessions" in reasons[4]


def test_a_property_without_traffic_lands_nothing_and_the_gate_passes(
    regulars_env: Settings, tmp_path: Path
):
    """GA4 leaves `rows` and `rowCount` out of a report with no rows: a new property's first
    load is empty, and the gate must pass it (it crashed on a landing table without columns)."""
    data_dir = tmp_path / "quiet_world"
    write_sessions(data_dir, n_sessions=0)
    with FakeServer(data_dir, ["ga4"], today=TODAY) as server:
        load(regulars_env, Fake(server))
        assert server.request_counts()[RUN_REPORT] >= 1

    report = promote(SOURCE_NAME, regulars_env).report
    traffic = report.tables["traffic_daily"]
    assert (traffic.source_rows, traffic.promoted_rows, traffic.quarantined_rows) == (0, 0, 0)
    assert traffic.batch_failure is None


def plant_device(data_dir: Path, device: str, where: str) -> int:
    """Sessions matching `where` now come from an unknown device category, in the fake's data
    (GA4 serves it on every pull); returns how many report rows carry it."""
    path = data_dir / "ga4" / "sessions.parquet"
    with duckdb.connect() as connection:
        connection.register("sessions", connection.read_parquet(str(path)).to_arrow_table())
        connection.execute(
            f"copy (select * replace (case when {where} then '{device}' else device_category "
            f"end as device_category) from sessions) to '{path}' (format parquet)"
        )
    rows = [row for row in expected(data_dir) if row[4] == device]
    return len(rows)


@pytest.mark.parametrize("destination", ["duckdb", "filesystem"])
def test_a_re_pulled_bad_row_is_held_once_and_a_new_one_is_still_held(
    regulars_env: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, destination: str
):
    """GA4 re-pulls its last days on every run: a bad row of those days lands again each time.
    The quarantine holds it once, from the batch it was first seen in."""
    monkeypatch.setenv("REGULARS_DESTINATION", destination)
    settings = load_settings()
    data_dir = tmp_path / "smartwatch_world"
    write_sessions(data_dir)
    window_start = TODAY - timedelta(days=3)  # what every later run re-pulls
    planted = plant_device(
        data_dir, "smartwatch", f"region = 'Bali' and date >= '{window_start:%Y%m%d}'"
    )
    assert planted >= 3

    def held() -> list[tuple]:
        rows = lake_pipeline(SOURCE_NAME, settings).dataset().table("quarantine_traffic_daily")
        frame = rows.df()
        return sorted(zip(frame["primary_key_value"], frame["_landing_load_id"], strict=True))

    def pull_and_gate():
        load(settings, fake)
        return promote(SOURCE_NAME, settings).report.tables["traffic_daily"]

    with FakeServer(data_dir, ["ga4"], today=TODAY) as server:
        fake = Fake(server)
        first = pull_and_gate()
        assert (first.quarantined_rows, first.already_held_rows) == (planted, 0)
        held_first = held()
        assert len(held_first) == planted

        again = pull_and_gate()  # the same days, the same bad rows, a new landing load
        assert (again.quarantined_rows, again.already_held_rows) == (0, planted)
        assert again.promoted_rows == again.source_rows - planted and again.reconciles
        assert held() == held_first  # not one row more, and first seen where it was

        one_more = plant_device(
            data_dir, "smartwatch", f"region = 'Jakarta' and date = '{TODAY:%Y%m%d}'"
        )
        assert one_more - planted >= 1
        third = pull_and_gate()
        assert (third.quarantined_rows, third.already_held_rows) == (one_more - planted, planted)
        assert len(held()) == one_more
        assert set(held_first) < set(held())

    ((landed, promoted, quarantined, already_held),) = (
        lake_pipeline(SOURCE_NAME, settings)
        .dataset()(
            "select sum(source_rows), sum(promoted_rows), sum(quarantined_rows), "
            "sum(already_held_rows) from gate_audit"
        )
        .fetchall()
    )
    assert landed == promoted + quarantined + already_held
    assert (quarantined, already_held) == (one_more, 2 * planted)
    # Replay meets each held row once: the suite still refuses them, nothing moves.
    traffic = replay(SOURCE_NAME, settings).tables["traffic_daily"]
    assert (traffic.held, traffic.moved, traffic.still_failing) == (one_more, 0, one_more)
