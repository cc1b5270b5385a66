"""The events source on Segment batches in a landing zone, then through the gate."""

from __future__ import annotations

import gzip
import json
import os
import shutil
from pathlib import Path

import duckdb
import pytest

from expectations.promote import promote
from ingestion.events import events_source
from ingestion.landing_zone import append_where_empty
from ingestion.pipelines import landing_pipeline
from regulars.settings import Settings


def message(message_id: str | None, **fields) -> dict:
    base = {
        "type": "track",
        "event": "Product Viewed",
        "anonymousId": "anon-1",
        "timestamp": "2025-03-01T10:00:00.000Z",
        "receivedAt": "2025-03-01T10:00:02.000Z",
        "properties": {"product_id": "12", "price": 25000},
        "context": {"library": {"name": "analytics-kotlin", "version": "1.15.0"}},
    }
    if message_id is not None:
        base["messageId"] = message_id
    return base | fields


def drop_batch(landing: Path, hour: str, messages: list[dict], part: int = 0) -> None:
    folder = landing / "events" / "date=2025-03-01" / f"hour={hour}"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"events-20250301T{hour}-{part:04d}.ndjson.gz"
    with gzip.open(path, "wt") as handle:
        handle.writelines(json.dumps(m) + "\n" for m in messages)


def run(settings: Settings, landing: Path) -> list[str]:
    """Land and promote as `regulars ingest events` does; returns the tables that appended."""
    pipeline = landing_pipeline("events", settings)
    source = events_source(bucket_url=str(landing))
    appended = append_where_empty(source, pipeline)
    pipeline.run(source)
    promote("events", settings)
    return appended


def query(settings: Settings, sql: str):
    with duckdb.connect(str(settings.warehouse_path), read_only=True) as connection:
        return connection.execute(sql).fetchall()


def test_retries_land_once_and_bad_messages_wait_in_quarantine(
    regulars_env: Settings, tmp_path: Path, caplog: pytest.LogCaptureFixture
):
    landing = tmp_path / "landing"
    drop_batch(
        landing,
        "10",
        [
            message("m-1"),
            message("m-2", type="page", event=None, name="Menu", category="Food"),
            message("m-1"),  # an SDK retry inside the same file
            message("m-3", userId="42", type="identify", traits={"email": "a@b.co"}),
            message("m-4", timestamp="yesterday-ish"),
            message("m-5", anonymousId=None),
            message(None),
        ],
    )
    run(regulars_env, landing)
    drop_batch(landing, "11", [message("m-1"), message("m-6", userId="42")])  # retry, next hour
    run(regulars_env, landing)
    run(regulars_env, landing)  # nothing new
    # The declared JSON columns arrive as Arrow text by design: dlt's warning about it is dropped.
    assert not [r for r in caplog.records if "column hints were different" in r.getMessage()]

    assert query(regulars_env, "select message_id from raw_events.messages order by 1") == [
        ("m-1",),
        ("m-2",),
        ("m-3",),
        ("m-6",),
    ]
    held = dict(
        query(
            regulars_env,
            "select coalesce(primary_key_value, 'none'), failed_expectations "
            "from raw_events.quarantine_messages",
        )
    )
    assert set(held) == {"m-4", "m-5", next(k for k in held if k.startswith("_missing:"))}
    assert "_malformed_fields" in held["m-4"]
    assert "_has_user_or_anonymous_id" in held["m-5"]
    (record,) = query(
        regulars_env,
        "select record from raw_events.quarantine_messages where primary_key_value='m-4'",
    )[0]
    assert "timestamp=yesterday-ish" in record

    ((landed, promoted, quarantined),) = query(
        regulars_env,
        "select sum(source_rows), sum(promoted_rows), sum(quarantined_rows) "
        "from raw_events.gate_audit",
    )
    # Landing already dropped the retries: 6 distinct messages in the first batch, m-6 after.
    assert (landed, promoted, quarantined) == (7, 4, 3)
    ((price, library),) = query(
        regulars_env,
        "select properties->>'price', context->'library'->>'name' from raw_events.messages "
        "where message_id = 'm-1'",
    )
    assert (price, library) == ("25000", "analytics-kotlin")
    # A page call's top-level category (Segment Spec) lands; before, it was not read at all.
    assert query(
        regulars_env,
        "select message_id, category from raw_events.messages where category is not null",
    ) == [("m-2", "Food")]


def test_a_user_id_that_is_not_a_customer_id_is_held_and_staging_cannot_fail(
    regulars_env: Settings, tmp_path: Path
):
    """The Segment spec lets userId be any string. Text or an object is held at the gate with
    the column named; and a text id that reaches the lake anyway (a lake loaded before the rule)
    reads as no customer in staging instead of stopping every mart (`dbt.safe_cast` is DuckDB's
    try_cast here, macros/safe_cast.sql)."""
    import json as json_module

    from regulars.settings import load_chain
    from tests.conftest import run_dbt

    landing = tmp_path / "landing"
    drop_batch(
        landing,
        "10",
        [
            message("m-1", userId="42"),
            message("m-2", userId=" 43 "),
            message("m-3", userId="guest-abc"),
            message("m-4", userId={"nested": 1}),
        ],
    )
    run(regulars_env, landing)

    assert query(regulars_env, "select message_id from raw_events.messages order by 1") == [
        ("m-1",),
        ("m-2",),
    ]
    held = dict(
        query(
            regulars_env,
            "select primary_key_value, failed_expectations from raw_events.quarantine_messages",
        )
    )
    assert set(held) == {"m-3", "m-4"}
    assert all("user_id" in reason for reason in held.values())

    with duckdb.connect(str(regulars_env.warehouse_path)) as connection:
        connection.execute(
            "insert into raw_events.messages select * replace ('m-5' as message_id, "
            "'guest-abc' as user_id) from raw_events.messages where message_id = 'm-1'"
        )
    run_dbt(
        regulars_env.warehouse_path,
        tmp_path / "target",
        "run",
        "--select",
        "stg_events__messages",
        "--vars",
        json_module.dumps(load_chain().dbt_vars()),
    )
    assert query(
        regulars_env,
        "select message_id, customer_id from staging.stg_events__messages order by 1",
    ) == [("m-1", 42), ("m-2", 43), ("m-5", None)]


def drop_lines(landing: Path, hour: str, lines: list[bytes], part: int = 0) -> Path:
    """A landing file of raw lines, so that a test can break one of them."""
    folder = landing / "events" / "date=2025-03-01" / f"hour={hour}"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"events-20250301T{hour}-{part:04d}.ndjson.gz"
    with gzip.open(path, "wb") as handle:
        handle.writelines(line + b"\n" for line in lines)
    return path


def encoded(message_id: str, **fields) -> bytes:
    return json.dumps(message(message_id, **fields)).encode()


@pytest.mark.parametrize(
    ("broken", "reason"),
    [
        (encoded("m-2")[:72], "not valid JSON"),  # a line cut short
        (encoded("m-2", event="Caf\u00e9 Viewed").replace(b"\\u00e9", b"\xe9"), "UTF-8"),
        (b'["not", "an", "object"]', "not an object"),
    ],
    ids=["truncated", "latin-1 bytes", "array"],
)
def test_an_unreadable_line_is_held_with_its_file_and_line_and_the_rest_lands(
    regulars_env: Settings, tmp_path: Path, broken: bytes, reason: str
):
    """Before, DuckDB's reader refused the whole page (quoting the line) and every later run
    failed on the same file, so no later file landed either."""
    landing = tmp_path / "landing"
    drop_lines(landing, "10", [encoded("m-1"), broken, encoded("m-3"), encoded("m-4")])
    drop_lines(landing, "10", [encoded("m-5")], part=1)
    run(regulars_env, landing)
    drop_lines(landing, "11", [encoded("m-6")])
    run(regulars_env, landing)

    assert query(regulars_env, "select message_id from raw_events.messages order by 1") == [
        ("m-1",),
        ("m-3",),
        ("m-4",),
        ("m-5",),
        ("m-6",),
    ]
    ((key, record, failed),) = query(
        regulars_env,
        "select primary_key_value, record, failed_expectations from raw_events.quarantine_messages",
    )
    assert key == "_unreadable:events-20250301T10-0000.ndjson.gz:2"
    malformed = json.loads(record)["_malformed_fields"]
    assert malformed.startswith("events-20250301T10-0000.ndjson.gz, line 2: ")
    assert reason in malformed
    assert "_malformed_fields" in failed
    ((landed, promoted, quarantined),) = query(
        regulars_env,
        "select sum(source_rows), sum(promoted_rows), sum(quarantined_rows) "
        "from raw_events.gate_audit",
    )
    assert (landed, promoted, quarantined) == (6, 5, 1)


def landed_now(settings: Settings, landing: Path) -> int:
    """Run the events load and say how many message rows it read from the landing zone."""
    pipeline = landing_pipeline("events", settings)
    pipeline.run(events_source(bucket_url=str(landing)))
    promote("events", settings)
    return pipeline.last_trace.last_normalize_info.row_counts.get("messages", 0)


def test_a_file_older_than_the_last_read_lands_and_a_copy_of_a_read_file_does_not(
    regulars_env: Settings, tmp_path: Path
):
    """Files are tracked by name and content: before, a cursor on modification time skipped a
    file copied in late with its old time (`cp -p`, a restored backup) and said `0 landed`."""
    landing = tmp_path / "landing"
    drop_batch(landing, "10", [message("m-1"), message("m-2")])
    assert landed_now(regulars_env, landing) == 2

    late = drop_lines(landing, "09", [encoded("m-3"), encoded("m-4")])
    a_day_earlier = late.stat().st_mtime - 86_400
    os.utime(late, (a_day_earlier, a_day_earlier))
    assert landed_now(regulars_env, landing) == 2
    assert query(regulars_env, "select count(*) from landing_events.messages") == [(4,)]

    # The same content under another name, and a read file copied again (a new modification
    # time, the same bytes): neither is read.
    copy = landing / "events" / "date=2025-03-01" / "hour=12" / "events-20250301T12-0000.ndjson.gz"
    copy.parent.mkdir(parents=True)
    shutil.copy(late, copy)
    first = landing / "events" / "date=2025-03-01" / "hour=10" / "events-20250301T10-0000.ndjson.gz"
    content = first.read_bytes()
    first.unlink()
    first.write_bytes(content)
    assert landed_now(regulars_env, landing) == 0

    assert query(regulars_env, "select message_id from raw_events.messages order by 1") == [
        ("m-1",),
        ("m-2",),
        ("m-3",),
        ("m-4",),
    ]


def test_a_telemetry_record_of_the_wrong_type_is_held_and_its_file_lands(
    regulars_env: Settings, tmp_path: Path, caplog: pytest.LogCaptureFixture
):
    """The other landing-zone streams share the reader: a value DuckDB cannot cast to its
    column (before: `Failed to cast value to numerical: "abc"`, for the whole page) holds only
    its line."""
    from ingestion.telemetry import telemetry_source

    call = {
        "occurred_at": "2025-03-01T10:00:00Z",
        "service": "menu",
        "endpoint": "/v1/menu",
        "platform": "ios",
        "app_version": "4.2.0",
        "store_id": 3,
        "status_code": 200,
        "latency_ms": 120,
        "is_timeout": False,
    }
    folder = tmp_path / "landing" / "telemetry" / "date=2025-03-01" / "hour=10"
    folder.mkdir(parents=True)
    with gzip.open(folder / "telemetry-20250301T10-0000.ndjson.gz", "wt") as handle:
        for number, store_id in enumerate([3, "abc", 4]):
            handle.write(json.dumps(call | {"request_id": f"r-{number}", "store_id": store_id}))
            handle.write("\n")
    landing_pipeline("telemetry", regulars_env).run(
        telemetry_source(bucket_url=str(tmp_path / "landing"))
    )
    promote("telemetry", regulars_env)

    # The key's Arrow field says not-null as dlt's schema does: no warning on every page.
    assert not [r for r in caplog.records if "column hints were different" in r.getMessage()]
    assert query(regulars_env, "select request_id from raw_telemetry.api_calls order by 1") == [
        ("r-0",),
        ("r-2",),
    ]
    ((key, record),) = query(
        regulars_env, "select primary_key_value, record from raw_telemetry.quarantine_api_calls"
    )
    assert key == "_unreadable:telemetry-20250301T10-0000.ndjson.gz:2"
    assert json.loads(record)["_malformed_fields"] == (
        "telemetry-20250301T10-0000.ndjson.gz, line 2: wrong type in field(s) store_id "
        "(expected BIGINT)"
    )


def test_a_key_repeated_in_a_later_page_of_the_same_run_lands_once():
    """Pages of one run share no SQL; the run's own record of keys keeps the first row of each."""
    import pyarrow as pa

    from ingestion.landing_zone import FirstSeen

    first_seen = FirstSeen("message_id")
    schema = pa.schema([("message_id", pa.string()), ("amount", pa.int64())])
    pages = [
        pa.table({"message_id": ["a", "b", None], "amount": [1, 2, 3]}, schema=schema),
        pa.table({"message_id": ["b", "c", None], "amount": [20, 30, 40]}, schema=schema),
        pa.table({"message_id": ["a", "c", "d"], "amount": [100, 300, 400]}, schema=schema),
    ]
    kept = [first_seen(page) for page in pages]

    assert [page.schema for page in kept] == [schema] * 3
    # A null key is never a repeat: the gate quarantines such rows, each one.
    assert [sorted(page.to_pylist(), key=str) for page in kept] == [
        sorted(
            [
                {"message_id": "a", "amount": 1},
                {"message_id": "b", "amount": 2},
                {"message_id": None, "amount": 3},
            ],
            key=str,
        ),
        sorted([{"message_id": "c", "amount": 30}, {"message_id": None, "amount": 40}], key=str),
        [{"message_id": "d", "amount": 400}],
    ]


def test_a_first_landing_appends_and_every_later_one_merges_so_a_key_lands_once(
    regulars_env: Settings, tmp_path: Path
):
    """An empty table takes its first load as an append (no staged copy); a table with rows is
    merged into, also when this machine has lost the pipeline's state (a new checkout)."""
    landing = tmp_path / "landing"
    drop_batch(landing, "10", [message("m-1"), message("m-2")])
    assert run(regulars_env, landing) == ["messages"]
    drop_batch(landing, "11", [message("m-1"), message("m-3")])  # a retry of m-1, next hour
    assert run(regulars_env, landing) == []
    shutil.rmtree(regulars_env.dlt_pipelines_dir / "events_landing")
    drop_batch(landing, "12", [message("m-2"), message("m-4")])
    assert run(regulars_env, landing) == []

    for table in ("landing_events.messages", "raw_events.messages"):
        assert query(
            regulars_env, f"select message_id, count(*) from {table} group by 1 order by 1"
        ) == [
            ("m-1", 1),
            ("m-2", 1),
            ("m-3", 1),
            ("m-4", 1),
        ], table
    versions = query(
        regulars_env, "select schema from landing_events._dlt_version order by inserted_at"
    )
    messages = [json.loads(schema)["tables"]["messages"] for (schema,) in versions]
    assert [table["write_disposition"] for table in messages] == ["append", "merge"]
    assert all(table["x-key-lands-once"] for table in messages)
