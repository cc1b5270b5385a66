"""Every source's landed batch with planted bad rows of every kind, through the gate.

Each source of a tiny simulated world is landed by its real pipeline; then rows of the landed
batch are broken in place (one kind of bad data per row) before the gate runs. A bad row must end
in quarantine with the reason that names what is wrong, no bad row may reach the lake, every good
row must, and the audit must add up to the landed rows exactly.
"""

from __future__ import annotations

import gzip
import json
import os
import re
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import dagster as dg
import duckdb
import pytest

from expectations.gate import AUDIT_TABLE
from expectations.promote import promote, suites_for
from ingestion.pipelines import landing_pipeline, load_options
from ingestion.registry import SOURCES
from regulars.settings import Settings
from tests.conftest import point_at

FUTURE = "timestamptz '2099-01-01 00:00:00+00'"
# An epoch: before any chain's opening ([chain] opened_on unset keeps rows after 1990-01-01).
BEFORE_OPENING = "timestamptz '1970-01-01 00:00:00+00'"


@dataclass(frozen=True)
class Plant:
    """One bad row: what is wrong, how to break a landed row that way, and the reason expected."""

    kind: str
    change: str  # an UPDATE's SET clause; DUPLICATE copies the row, NULL_KEY nulls its key
    reason: str  # must appear in the row's failed_expectations


DUPLICATE = "duplicate"
NULL_KEY = "null key"


def null_key(primary_key: str) -> Plant:
    return Plant(NULL_KEY, NULL_KEY, f"expect_column_values_to_not_be_null(column={primary_key})")


def duplicate(primary_key: str) -> Plant:
    return Plant(DUPLICATE, DUPLICATE, f"expect_column_values_to_be_unique(column={primary_key})")


def in_set(column: str) -> str:
    return f"expect_column_values_to_be_in_set(column={column},"


def between(column: str) -> str:
    return f"expect_column_values_to_be_between(column={column},"


def not_null(column: str) -> str:
    return f"expect_column_values_to_not_be_null(column={column})"


# source -> table -> plants. Keys: the table's primary key (tables without plants: clean).
PLANTS: dict[str, dict[str, list[Plant]]] = {
    "ordering": {
        "orders": [
            null_key("order_id"),
            duplicate("order_id"),
            Plant("null foreign key", "customer_id = null", not_null("customer_id")),
            Plant("null timestamp", "placed_at = null", not_null("placed_at")),
            Plant("timestamp in the future", f"placed_at = {FUTURE}", between("placed_at")),
            Plant("before the chain opened", f"placed_at = {BEFORE_OPENING}", between("placed_at")),
            Plant(
                "negative amount",
                "discount_idr = -5000, total_idr = total_idr + 5000",
                between("discount_idr"),
            ),
            Plant(
                "absurd amount",
                "delivery_fee_idr = 90000000, total_idr = total_idr + 90000000",
                between("delivery_fee_idr"),
            ),
            Plant("unknown order status", "status = 'teleported'", in_set("status")),
            Plant("unknown platform", "platform = 'fax'", in_set("platform")),
            Plant("currency mismatch", "currency = 'USD'", in_set("currency")),
            Plant(
                "items do not sum to the subtotal",
                "subtotal_idr = subtotal_idr + 1000, total_idr = total_idr + 1000",
                in_set("_items_minus_subtotal"),
            ),
            Plant(
                "total does not add up",
                "total_idr = total_idr + 1",
                in_set("_total_mismatch"),
            ),
        ],
        "order_items": [
            null_key("order_item_id"),
            duplicate("order_item_id"),
            # Both signs flipped: the line (and its order's items) still add up.
            Plant(
                "negative quantity",
                "quantity = -quantity, unit_price_idr = -unit_price_idr",
                between("quantity"),
            ),
        ],
        "customers": [
            Plant("unknown platform", "preferred_platform = 'fax'", in_set("preferred_platform")),
            Plant("malformed email", "email = 'guest-at-example'", "column=email"),
            Plant("signed up in the future", f"signed_up_at = {FUTURE}", between("signed_up_at")),
        ],
    },
    "order_history": {
        "orders": [
            null_key("import_row_id"),
            duplicate("import_row_id"),
            Plant("null customer", "customer_id = null", not_null("customer_id")),
            Plant("negative amount", "amount = -8500", between("amount")),
            Plant("absurd amount", "amount = 900000000", between("amount")),
            Plant("absurd quantity", "quantity = 5000", between("quantity")),
            Plant("ordered in the future", f"ordered_at = {FUTURE}", between("ordered_at")),
            Plant(
                "before the chain opened", f"ordered_at = {BEFORE_OPENING}", between("ordered_at")
            ),
        ],
    },
    "events": {
        "messages": [
            null_key("message_id"),
            duplicate("message_id"),
            Plant(
                "malformed timestamp",
                "timestamp = null, _malformed_fields = 'timestamp=yesterday-ish'",
                "expect_column_values_to_be_null(column=_malformed_fields)",
            ),
            Plant(
                "neither userId nor anonymousId",
                "user_id = null, anonymous_id = null",
                in_set("_has_user_or_anonymous_id"),
            ),
            Plant("unknown event type", "type = 'teleport'", in_set("type")),
            Plant(
                "track without an event", "type = 'track', event = null", in_set("_track_has_event")
            ),
            Plant("timestamp in the future", f"timestamp = {FUTURE}", between("timestamp")),
            Plant(
                "before the chain opened", f"received_at = {BEFORE_OPENING}", between("received_at")
            ),
        ],
    },
    "messaging": {
        "delivery_events": [
            null_key("event_id"),
            duplicate("event_id"),
            Plant("unknown channel", "object_type = 'pigeon'", in_set("object_type")),
            Plant("unknown metric", "metric = 'teleported'", in_set("metric")),
            Plant("null timestamp", "occurred_at = null", not_null("occurred_at")),
            Plant("timestamp in the future", f"occurred_at = {FUTURE}", between("occurred_at")),
            Plant("null delivery", "delivery_id = null", not_null("delivery_id")),
        ],
    },
    "telemetry": {
        "api_calls": [
            null_key("request_id"),
            duplicate("request_id"),
            Plant("unknown platform", "platform = 'fax'", in_set("platform")),
            Plant("negative latency", "latency_ms = -5", between("latency_ms")),
            Plant("absurd latency", "latency_ms = 99000000", between("latency_ms")),
            Plant("impossible status", "status_code = 42", between("status_code")),
            Plant("malformed timestamp", "occurred_at = null", not_null("occurred_at")),
            Plant(
                "before the chain opened", f"occurred_at = {BEFORE_OPENING}", between("occurred_at")
            ),
        ],
    },
    "ga4": {
        "traffic_daily": [
            null_key("report_row_id"),
            duplicate("report_row_id"),
            Plant("negative count", "sessions = -3", between("sessions")),
            Plant("negative revenue", "purchase_revenue = -5", between("_purchase_revenue")),
            Plant("unknown platform", "device_category = 'fridge'", in_set("device_category")),
            Plant("day in the future", "date = date '2099-01-01'", between("_date_at")),
            Plant("day before the chain opened", "date = date '1970-01-01'", between("_date_at")),
        ],
    },
    "meta_ads": {
        "insights": [
            null_key("insight_id"),
            duplicate("insight_id"),
            Plant(
                "spend but no campaign",
                "campaign_id = null, spend = 15000",
                in_set("_spend_without_campaign"),
            ),
            Plant(
                "unknown platform", "publisher_platform = 'myspace'", in_set("publisher_platform")
            ),
            Plant("currency mismatch", "account_currency = 'USD'", in_set("account_currency")),
            Plant("negative spend", "spend = -1", between("_spend")),
            Plant("absurd spend", "spend = 5000000000", between("_spend")),
            Plant(
                "more clicks than impressions",
                "clicks = impressions + 1",
                between("_clicks_minus_impressions"),
            ),
            Plant("day in the future", "date_start = date '2099-01-01'", between("_date_at")),
        ],
        "campaigns": [
            Plant("unknown status", "effective_status = 'EXPLODED'", in_set("effective_status")),
            Plant("negative budget", "daily_budget = -1", between("daily_budget")),
        ],
    },
}


@pytest.fixture(scope="module")
def landed_world(
    tmp_path_factory: pytest.TempPathFactory, tiny_world_files: Path
) -> Iterator[Settings]:
    """A tiny world with every source landed once, nothing promoted yet."""
    yield from land_every_source(tmp_path_factory.mktemp("planted"), tiny_world_files)


@pytest.fixture(scope="module")
def landed_world_for_parts(
    tmp_path_factory: pytest.TempPathFactory, tiny_world_files: Path
) -> Iterator[Settings]:
    """The same, for the gate to validate in parts."""
    yield from land_every_source(tmp_path_factory.mktemp("planted_parts"), tiny_world_files)


def land_every_source(root: Path, tiny_world_files: Path) -> Iterator[Settings]:
    from regulars.cli.demo import SIMULATED_CHAIN, demo_apis

    shutil.copytree(tiny_world_files, root / "data")
    with pytest.MonkeyPatch.context() as monkeypatch:
        settings = point_at(monkeypatch, root)
        # The simulated chain's currency: the gate holds money in any other.
        monkeypatch.setenv("CHAIN__CURRENCY", SIMULATED_CHAIN["currency"])
        with demo_apis(settings):
            for source_name in PLANTS:
                source = SOURCES[source_name]
                pipeline = landing_pipeline(source_name, settings)
                pipeline.run(source.build(settings), **load_options(settings))
        yield settings


def quoted(value) -> str:
    return "'" + str(value).replace("'", "''") + "'"


def plant_rows(settings: Settings, source_name: str) -> dict[str, list[tuple[Plant, object]]]:
    """Break one landed row per plant; returns table -> [(plant, the victim's original key)]."""
    planted: dict[str, list[tuple[Plant, object]]] = {}
    suites = suites_for(source_name)
    with duckdb.connect(str(settings.warehouse_path)) as connection:
        for table_name, plants in PLANTS[source_name].items():
            table = f"landing_{source_name}.{table_name}"
            key = suites[table_name].primary_key
            victims = [
                value
                for (value,) in connection.execute(
                    f"select {key} from {table} order by {key} limit {len(plants)}"
                ).fetchall()
            ]
            assert len(victims) == len(plants), f"{table} has too few rows to plant into"
            # The landing copies the source's NOT NULLs; a looser source would send these nulls.
            nulled = {key, *(c for p in plants for c in re.findall(r"(\w+) = null", p.change))}
            for column in nulled:
                connection.execute(f"alter table {table} alter column {column} drop not null")
            for plant, victim in zip(plants, victims, strict=True):
                where = f"where {key} = {quoted(victim)}"
                if plant.change == DUPLICATE:
                    connection.execute(f"insert into {table} select * from {table} {where}")
                elif plant.change == NULL_KEY:
                    connection.execute(f"update {table} set {key} = null {where}")
                else:
                    connection.execute(f"update {table} set {plant.change} {where}")
            planted[table_name] = list(zip(plants, victims, strict=True))
    return planted


def query(settings: Settings, sql: str):
    with duckdb.connect(str(settings.warehouse_path), read_only=True) as connection:
        return connection.execute(sql).fetchall()


@pytest.mark.parametrize("source_name", list(PLANTS))
def test_each_bad_row_is_held_with_its_reason_and_the_rest_reach_the_lake(
    landed_world: Settings, source_name: str
):
    gate_planted_batch(landed_world, source_name)


def test_a_batch_with_many_held_rows_is_promoted_through_python_all_the_same(
    tiny_world: Settings, monkeypatch: pytest.MonkeyPatch
):
    # On DuckDB passing rows are copied in the database, the held ones named in SQL; past the
    # limit of names (mass failures) they go through Python: the outcome must be the same.
    from expectations import gate
    from ingestion.events import events_source

    landing_pipeline("events", tiny_world).run(events_source(bucket_url=tiny_world.landing_url))
    monkeypatch.setattr(gate, "LOOKUP_IN_LIST_LIMIT", 1)
    gate_planted_batch(tiny_world, "events")


@pytest.mark.parametrize("source_name", list(PLANTS))
def test_a_batch_validated_in_parts_ends_as_the_whole_batch_would(
    landed_world_for_parts: Settings, source_name: str, monkeypatch: pytest.MonkeyPatch
):
    # Past GATE_PART_ROWS a batch is validated in parts, split by key: a duplicated key's two
    # rows must still meet (both are held), and every other fate must be the whole batch's.
    from expectations import gate

    # About four parts for the source's largest table (its smallest may stay whole).
    largest = max(
        query(landed_world_for_parts, f"select count(*) from landing_{source_name}.{table}")[0][0]
        for table in suites_for(source_name)
    )
    monkeypatch.setattr(gate, "GATE_PART_ROWS", max(largest // 4, 10))
    parts: list[int] = []
    whole_count = gate.part_count
    monkeypatch.setattr(
        gate, "part_count", lambda rows: parts.append(whole_count(rows)) or parts[-1]
    )
    budgets: list[str] = []
    budget = gate.sort_memory_budget
    monkeypatch.setattr(
        gate,
        "sort_memory_budget",
        lambda client, limit: budgets.append(limit) or budget(client, limit),
    )
    gate_planted_batch(landed_world_for_parts, source_name)
    assert max(parts) > 1
    # Each sorted read of a batch in parts ran under the gate's budget, then the warehouse's.
    configured = landed_world_for_parts.duckdb_steps_memory_limit
    assert budgets == [configured] * sum(count > 1 for count in parts)


def test_the_sorted_read_of_parts_runs_under_its_own_memory_limit_then_the_warehouses(
    landed_world_for_parts: Settings,
):
    # DuckDB's limit is the database's: set for the sorted read, and back to the configured one
    # after it, or every later query of the run would be bound by the gate's budget.
    from expectations.gate import GATE_SORT_MEMORY_LIMIT, sort_memory_budget
    from regulars import warehouse

    settings = landed_world_for_parts
    landing = landing_pipeline("events", settings).dataset()
    with duckdb.connect(config={"memory_limit": GATE_SORT_MEMORY_LIMIT}) as reference:
        (budget_shown,) = reference.sql("select current_setting('memory_limit')").fetchone()
    with warehouse.kept_open(settings), landing.sql_client as client:

        def limit() -> str:
            return client.execute_sql("select current_setting('memory_limit')")[0][0]

        configured = limit()
        with sort_memory_budget(client, settings.duckdb_steps_memory_limit):
            during = limit()
        after = limit()
    assert during == budget_shown != configured
    assert after == configured


def test_a_batch_validated_in_parts_is_rejected_whole_when_a_column_is_empty(
    tiny_world: Settings, monkeypatch: pytest.MonkeyPatch
):
    # The batch-level rules judge the whole batch before any part: `type` emptied upstream is a
    # broken schema, so nothing is promoted and no row is held, as for a batch validated whole.
    from expectations import gate
    from ingestion.events import events_source

    landing_pipeline("events", tiny_world).run(events_source(bucket_url=tiny_world.landing_url))
    with duckdb.connect(str(tiny_world.warehouse_path)) as connection:
        connection.execute("alter table landing_events.messages alter column type drop not null")
        connection.execute("update landing_events.messages set type = null")
    landed = query(tiny_world, "select count(*) from landing_events.messages")[0][0]
    monkeypatch.setattr(gate, "GATE_PART_ROWS", landed // 3)

    report = promote("events", tiny_world).report.tables["messages"]

    assert report.batch_failure is not None
    assert "expect_column_proportion_of_non_null_values_to_be_between(column=type" in (
        report.batch_failure
    )
    assert (report.promoted_rows, report.quarantined_rows) == (0, 0)
    assert query(tiny_world, "select status, source_rows from raw_events.gate_audit") == [
        ("batch_rejected", landed)
    ]
    lake_tables = {
        name
        for (name,) in query(
            tiny_world,
            "select table_name from information_schema.tables where table_schema = 'raw_events'",
        )
    }
    assert (
        "messages" not in lake_tables
        or not query(tiny_world, "select count(*) from raw_events.messages")[0][0]
    )
    assert "quarantine_messages" not in lake_tables


@pytest.mark.parametrize("source_name", ["events", "ordering"])
def test_a_batch_in_parts_on_the_filesystem_lake_reaches_it_whole(
    tmp_path: Path,
    tiny_world_files: Path,
    source_name: str,
    monkeypatch: pytest.MonkeyPatch,
):
    # On Parquet the parts go through Arrow: appended one by one (events), or, for merged
    # tables (ordering), each the newest version of its keys; every landed row reaches the lake.
    from expectations import gate

    shutil.copytree(tiny_world_files, tmp_path / "data")
    settings = point_at(monkeypatch, tmp_path, "filesystem")
    source = SOURCES[source_name]
    landing = landing_pipeline(source_name, settings)
    landing.run(source.build(settings), **load_options(settings))
    suites = suites_for(source_name)
    landed = {
        table: {
            str(key)
            for (key,) in landing.dataset()(
                f"select {suites[table].primary_key} from {table}"
            ).fetchall()
        }
        for table in suites
    }
    largest = max(len(keys) for keys in landed.values())
    monkeypatch.setattr(gate, "GATE_PART_ROWS", max(largest // 4, 10))

    report = promote(source_name, settings).report

    for table, keys in landed.items():
        assert report.tables[table].batch_failure is None
        lake = {
            str(key)
            for (key,) in query(
                settings, f"select {suites[table].primary_key} from raw_{source_name}.{table}"
            )
        }
        assert lake == keys, table
        assert report.tables[table].promoted_rows == len(keys), table


def gate_planted_batch(settings: Settings, source_name: str) -> None:
    """Plant the source's bad rows in its landed batch, run the gate, check every row's fate."""
    planted = plant_rows(settings, source_name)
    suites = suites_for(source_name)
    landed = {
        table: query(settings, f"select count(*) from landing_{source_name}.{table}")[0][0]
        for table in suites
    }
    landed_keys = {
        table: {
            str(key)
            for (key,) in query(
                settings,
                f"select {suites[table].primary_key} from landing_{source_name}.{table}",
            )
            if key is not None
        }
        for table in suites
    }

    landed_columns = {
        table: {
            name
            for (name,) in query(
                settings,
                "select column_name from information_schema.columns where table_schema = "
                f"'landing_{source_name}' and table_name = '{table}'",
            )
            if not name.startswith("_dlt")
        }
        for table in suites
    }

    result = promote(source_name, settings)

    lake = f"raw_{source_name}"
    for table_name, suite in suites.items():
        report = result.report.tables[table_name]
        assert report.batch_failure is None, report.batch_failure
        victims = planted.get(table_name, [])
        held_keys = {str(victim) for _, victim in victims}
        lake_keys = {
            str(key)
            for (key,) in query(settings, f"select {suite.primary_key} from {lake}.{table_name}")
        }
        # Every good row is in the lake, no bad one is.
        assert lake_keys == landed_keys[table_name] - held_keys, table_name
        bad_rows = len(victims) + sum(1 for plant, _ in victims if plant.change == DUPLICATE)
        assert report.quarantined_rows == bad_rows, table_name
        ((source_rows, promoted_rows, held_rows),) = query(
            settings,
            f"select sum(source_rows), sum(promoted_rows), sum(quarantined_rows) "
            f"from {lake}.{AUDIT_TABLE} where table_name = '{table_name}'",
        )
        assert (source_rows, held_rows) == (landed[table_name], bad_rows)
        assert promoted_rows == len(lake_keys) == landed[table_name] - bad_rows
        if not victims:
            continue
        quarantined = query(
            settings,
            f"select primary_key_value, failed_expectations, record "
            f"from {lake}.quarantine_{table_name}",
        )
        assert len(quarantined) == bad_rows, table_name
        reasons: dict[str | None, list[str]] = {}
        for key, failed, _ in quarantined:
            reasons.setdefault(key, []).append(failed)
        for plant, victim in victims:
            if plant.change == NULL_KEY:
                # The key is gone from the row: it is found by its other fields.
                (row,) = [r for r in quarantined if r[0] is None]
                assert plant.reason in row[1], plant.kind
                continue
            found = reasons[str(victim)]
            expected_copies = 2 if plant.change == DUPLICATE else 1
            assert len(found) == expected_copies, plant.kind
            assert all(plant.reason in failed for failed in found), (plant.kind, found)
        # The whole original record is kept, as JSON: every landed column, payloads included.
        records = [json.loads(record) for _, _, record in quarantined]
        assert all(set(record) == landed_columns[table_name] for record in records)
        for column in landed_columns[table_name]:
            if column in ("context", "data"):  # payloads every event and webhook has
                assert any(record[column] is not None for record in records), column


def materialize(settings: Settings) -> dg.ExecuteInProcessResult:
    from orchestration.assembly import EVERYTHING_JOB, build_definitions
    from regulars.cli.demo import demo_apis

    with demo_apis(settings), dg.DagsterInstance.ephemeral() as instance:
        job = build_definitions(settings).resolve_job_def(EVERYTHING_JOB)
        return job.execute_in_process(instance=instance, raise_on_error=False)


def land_renamed_field(settings: Settings, messages: int = 80) -> None:
    """A new hour of events in which the apps renamed `type` to `kind` (a release gone wrong)."""
    existing = sorted(Path(settings.landing_url, "events").rglob("*.ndjson.gz"))
    lines: list[dict] = []
    for path in existing:
        with gzip.open(path, "rt") as handle:
            lines.extend(json.loads(line) for line in handle)
        if len(lines) >= messages:
            break
    lines = lines[:messages]
    renamed = [
        {("kind" if key == "type" else key): value for key, value in message.items()}
        | {"messageId": f"renamed-{number}"}
        for number, message in enumerate(lines)
    ]
    folder = Path(settings.landing_url, "events", "date=2031-01-01", "hour=00")
    folder.mkdir(parents=True)
    path = folder / "events-20310101T00-0001.ndjson.gz"
    with gzip.open(path, "wt") as handle:
        handle.writelines(json.dumps(message) + "\n" for message in renamed)
    newest = max(p.stat().st_mtime for p in existing)
    os.utime(path, (newest + 60, newest + 60))


def test_a_batch_with_a_broken_schema_fails_its_check_and_the_marts_keep_their_state(
    materialized_world: Settings,
):
    tiny_world = materialized_world
    marts_before = mart_counts(tiny_world)
    lake_before = query(tiny_world, "select count(*) from raw_events.messages")

    land_renamed_field(tiny_world)
    second = materialize(tiny_world)

    assert not second.success
    messages = dg.AssetKey(["raw_events", "messages"])
    (check,) = [
        evaluation
        for evaluation in second.get_asset_check_evaluations()
        if evaluation.asset_key == messages and evaluation.check_name == "gx_suite_passed"
    ]
    assert not check.passed
    assert "non_null_values_to_be_between(column=type" in check.description
    materialized = {event.asset_key for event in second.get_asset_materialization_events()}
    assert not any(key.path[0] == "marts" for key in materialized), "marts were rebuilt"
    assert dg.AssetKey(["raw_ordering", "orders"]) in materialized  # the other gates went on
    assert mart_counts(tiny_world) == marts_before
    assert query(tiny_world, "select count(*) from raw_events.messages") == lake_before
    ((status, rows),) = query(
        tiny_world,
        "select status, source_rows from raw_events.gate_audit order by validated_at desc limit 1",
    )
    assert (status, rows) == ("batch_rejected", 80)


def mart_counts(settings: Settings) -> dict[str, int]:
    tables = query(
        settings,
        "select table_name from information_schema.tables where table_schema = 'marts'",
    )
    assert tables, "the first run built no marts"
    return {name: query(settings, f"select count(*) from marts.{name}")[0][0] for (name,) in tables}
