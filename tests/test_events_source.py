"""The events source on Segment batches in a landing zone, then through the gate."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import duckdb

from expectations.promote import promote
from ingestion.events import events_source
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


def run(settings: Settings, landing: Path) -> None:
    landing_pipeline("events", settings).run(events_source(bucket_url=str(landing)))
    promote("events", settings)


def query(settings: Settings, sql: str):
    with duckdb.connect(str(settings.warehouse_path), read_only=True) as connection:
        return connection.execute(sql).fetchall()


def test_retries_land_once_and_bad_messages_wait_in_quarantine(
    regulars_env: Settings, tmp_path: Path
):
    landing = tmp_path / "landing"
    drop_batch(
        landing,
        "10",
        [
            message("m-1"),
            message("m-2", type="page", event=None, name="Menu"),
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
