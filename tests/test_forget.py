"""Right to be forgotten: a guest erased from every table and landing file, and kept out after.

The tiny world is restored from its materialised copy for this test alone: forget writes.
"""

from __future__ import annotations

import gzip
import json
import re
import sqlite3
import subprocess
import sys
from pathlib import Path

import dagster as dg
import duckdb
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from orchestration.privacy import FORGET_REQUEST_TAG
from regulars.activation import retention
from regulars.privacy import suppression
from regulars.privacy.forget import (
    AmbiguousGuest,
    ForgetError,
    GuestNotFound,
    WarehouseBusy,
    forget,
    identifier_kind,
    resolve,
)
from regulars.privacy.hashing import hashed_email, normalise_phone
from regulars.privacy.suppression import register_functions
from regulars.serving import serving_path
from regulars.settings import Settings
from tests import processes
from tests.conftest import materialize


def test_identifier_kinds():
    assert identifier_kind("Citra@Example.com") == "email"
    assert identifier_kind("0812-3456-7890") == "phone"
    assert identifier_kind("+62 812 3456 7890") == "phone"
    assert identifier_kind("347") == "customer_id"
    assert identifier_kind("6281234567", kind="customer_id") == "customer_id"


def _small_warehouse(path: Path) -> None:
    with duckdb.connect(str(path)) as connection:
        connection.execute("create schema landing_ordering")
        connection.execute(
            "create table landing_ordering.customers as select * from (values "
            "(1, 'shared@example.com', '081234567890'), (2, ' Shared@Example.com', null)) "
            "as t(customer_id, email, phone)"
        )


def test_an_email_two_customers_share_is_ambiguous_and_changes_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    # The lake holds the national 08... form: found by +62... only in an Indonesian chain.
    monkeypatch.setenv("CHAIN__COUNTRY", "ID")
    path = tmp_path / "w.duckdb"
    _small_warehouse(path)
    with duckdb.connect(str(path)) as connection:
        register_functions(connection)
        with pytest.raises(AmbiguousGuest, match="2 customers"):
            resolve(connection, "shared@example.com", "email")
        guest = resolve(connection, "+62 812-3456-7890", "phone")
    assert guest.customer_ids == {"1"} and guest.emails == {"shared@example.com"}


def test_a_warehouse_held_by_another_process_is_a_clear_error(regulars_env: Settings):
    regulars_env.warehouse_path.parent.mkdir(parents=True)
    _small_warehouse(regulars_env.warehouse_path)
    with processes.running(
        [
            sys.executable,
            "-c",
            "import duckdb, sys, time; c = duckdb.connect(sys.argv[1]); print('held', flush=True);"
            " time.sleep(60)",
            str(regulars_env.warehouse_path),
        ],
        stdout=subprocess.PIPE,
        text=True,
    ) as holder:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(WarehouseBusy, match="in use by another process"):
            forget("1", regulars_env)
        # A load under way: forget waits for the warehouse before it looks at dlt's packages,
        # so a load cannot finish between the look and the erasure.
        (regulars_env.dlt_pipelines_dir / "ordering_landing" / "load" / "new" / "1").mkdir(
            parents=True
        )
        with pytest.raises(WarehouseBusy, match="in use by another process"):
            forget("1", regulars_env)
    with pytest.raises(ForgetError, match="unfinished loads in ordering_landing"):
        forget("1", regulars_env)


def test_forget_rewrites_the_warehouse_file_so_no_free_block_keeps_the_guest(
    regulars_env: Settings,
):
    regulars_env.warehouse_path.parent.mkdir(parents=True)
    with duckdb.connect(str(regulars_env.warehouse_path)) as connection:
        connection.execute("create schema raw_ordering")
        # Few rows: a long column of alike emails would be compressed, out of a byte search.
        connection.execute(
            "create table raw_ordering.customers as select * from (values "
            "(1, 'citra.lestari@example.com', null), (2, 'bayu.pratama@example.org', null), "
            "(3, 'dewi.anggraini@example.net', null)) as t(customer_id, email, phone)"
        )
        connection.execute("create sequence raw_ordering.numbers")
        connection.execute("select nextval('raw_ordering.numbers') from range(7)").fetchall()
        connection.execute(
            "create view raw_ordering.emails as select email from raw_ordering.customers"
        )
    target = b"citra.lestari@example.com"
    assert target in regulars_env.warehouse_path.read_bytes()

    forget("1", regulars_env)

    assert target not in regulars_env.warehouse_path.read_bytes()
    assert b"bayu.pratama@example.org" in regulars_env.warehouse_path.read_bytes()
    assert sorted(path.name for path in regulars_env.warehouse_path.parent.iterdir()) == [
        "regulars.duckdb"
    ]
    with duckdb.connect(str(regulars_env.warehouse_path)) as connection:
        assert connection.execute("select count(*) from raw_ordering.emails").fetchone() == (2,)
        # Sequences go on from where they were (the export log's ids, for one): 7 were taken.
        assert connection.execute("select nextval('raw_ordering.numbers')").fetchone() == (8,)
        (deleted,) = connection.execute(
            "select sum(rows_removed) from privacy.deletion_log"
        ).fetchone()
    assert deleted == 1
    assert suppression.read_hash_list(regulars_env)["customer_id"] == {
        suppression.hash_identifier("customer_id", "1")
    }


def test_a_suppressed_guest_is_dropped_at_extract_and_out_of_its_landing_file(
    regulars_env: Settings, monkeypatch: pytest.MonkeyPatch
):
    """New events of a forgotten guest: dlt never gets their rows, the landing file loses their
    lines, and the drop is counted (no identifier)."""
    import dlt
    import pyarrow as pa

    from regulars.privacy.extract import without_suppressed

    monkeypatch.setenv("CHAIN__COUNTRY", "ID")
    hashes = {
        "customer_id": [suppression.hash_identifier("customer_id", "347")],
        "phone": [suppression.hash_identifier("phone", "+62 812-3456-7890")],
    }
    suppression.hash_list_path(regulars_env).parent.mkdir(parents=True)
    suppression.hash_list_path(regulars_env).write_text(json.dumps(hashes))
    lines = [
        {"userId": "347", "anonymousId": "a-1", "traits": {"email": "x@example.com"}},
        {"userId": "34", "anonymousId": "a-2", "traits": {}},
        {"userId": None, "anonymousId": "a-3", "traits": {"phone": "0812 3456 7890"}},
    ]
    landing = Path(regulars_env.landing_url) / "events" / "date=2025-05-01" / "hour=10"
    landing.mkdir(parents=True)
    file = landing / "events-20250501T10-0000.ndjson.gz"
    file.write_bytes(gzip.compress("".join(json.dumps(line) + "\n" for line in lines).encode()))
    mtime = file.stat().st_mtime_ns

    @dlt.resource(name="messages", columns={"traits": {"data_type": "json"}})
    def messages():
        yield pa.table(
            {
                "user_id": [line["userId"] for line in lines],
                "anonymous_id": [line["anonymousId"] for line in lines],
                "traits": [json.dumps(line["traits"]) for line in lines],
                "_landing_file": [file.name] * len(lines),
            }
        )

    @dlt.source(name="events")
    def events():
        yield messages

    source = without_suppressed(events(), regulars_env)
    (table,) = list(source.resources["messages"])
    assert table.column("anonymous_id").to_pylist() == ["a-2"]
    kept = gzip.decompress(file.read_bytes()).decode().splitlines()
    assert [json.loads(line)["anonymousId"] for line in kept] == ["a-2"]
    assert file.stat().st_mtime_ns == mtime  # the file readers' cursors do not read it again
    (drop,) = [
        json.loads(line)
        for line in suppression.extract_drops_path(regulars_env).read_text().splitlines()
    ]
    assert (drop["table_name"], drop["rows"]) == ("events.messages", 2)


def test_the_dagster_job_refuses_an_unknown_guest_and_changes_nothing(regulars_env: Settings):
    """The `forget_guest` job runs the same erasure: its failure carries forget's message."""

    from orchestration.privacy import forget_job

    regulars_env.warehouse_path.parent.mkdir(parents=True)
    _small_warehouse(regulars_env.warehouse_path)
    result = forget_job(regulars_env).execute_in_process(
        run_config={"ops": {"forget_guest_everywhere": {"config": {"identifier": "9"}}}},
        instance=dg.DagsterInstance.ephemeral(),
        raise_on_error=False,
    )
    assert not result.success
    failure = next(e for e in result.all_events if e.event_type_value == "STEP_FAILURE")
    assert "No guest with that customer id" in failure.event_specific_data.error.message
    with duckdb.connect(str(regulars_env.warehouse_path), read_only=True) as connection:
        (privacy,) = connection.execute(
            "select count(*) from information_schema.schemata where schema_name = 'privacy'"
        ).fetchone()
    assert privacy == 0


def test_a_forget_run_is_followed_by_one_run_of_what_reads_the_erased_rows(
    regulars_env: Settings,
):
    """The `forget_guest` job tags its run with the lake sources it erased rows from, and the
    `marts_after_forget` sensor asks once for everything downstream of them: marts and the
    serving copy, not the day-partitioned facts nor the audience exports."""
    from orchestration.assembly import build_definitions
    from orchestration.privacy import AFFECTED_SOURCES_TAG, forget_job, marts_after_forget

    # Importing the code location built its dlt pipelines, which made the warehouse's folder.
    regulars_env.warehouse_path.parent.mkdir(parents=True, exist_ok=True)
    with duckdb.connect(str(regulars_env.warehouse_path)) as connection:
        connection.execute("create schema raw_ordering")
        connection.execute(
            "create table raw_ordering.customers as select * from (values "
            "(1, 'citra.lestari@example.com'), (2, 'bayu.pratama@example.org')) "
            "as t(customer_id, email)"
        )
    with dg.instance_for_test() as instance:
        forgot = forget_job(regulars_env).execute_in_process(
            run_config={"ops": {"forget_guest_everywhere": {"config": {"identifier": "1"}}}},
            instance=instance,
        )
        assert instance.get_run_by_id(forgot.run_id).tags[AFFECTED_SOURCES_TAG] == "ordering"
        repository = build_definitions(regulars_env).get_repository_def()
        context = dg.build_sensor_context(instance=instance, repository_def=repository)
        (request,) = marts_after_forget(context)
        assert request.run_key == forgot.run_id
        keys = {key.to_user_string() for key in request.asset_selection}
        graph = repository.asset_graph
        assert {"marts/dim_customers", "marts/kpi_scorecard", "serving/published"} <= keys
        assert not {key for key in keys if key.startswith(("raw_", "landing_", "activation/"))}
        assert not [key for key in request.asset_selection if graph.get(key).partitions_def]
        # Read only from the events stream: not the ordering platform's to rebuild.
        assert "staging/stg_events__messages" not in keys
        answered = dg.build_sensor_context(
            instance=instance, repository_def=repository, cursor=context.cursor
        )
        assert list(marts_after_forget(answered)) == []


def pick_guest(settings: Settings) -> dict:
    """A guest with orders, feedback, events and messages, a phone, and a name nobody shares."""
    with duckdb.connect(str(settings.warehouse_path), read_only=True) as connection:
        row = connection.execute(
            """
            with named as (
                select full_name from raw_ordering.customers group by 1 having count(*) = 1
            )
            select c.customer_id, c.email, c.phone, c.full_name
            from raw_ordering.customers as c
            join named using (full_name)
            where c.phone is not null
              and exists (select 1 from raw_ordering.order_feedback as f
                          where f.customer_id = c.customer_id)
              and exists (select 1 from raw_messaging.delivery_events as d
                          where d.customer_id = cast(c.customer_id as varchar))
              and exists (select 1 from raw_events.messages as m
                          where m.user_id = cast(c.customer_id as varchar))
            order by (select count(*) from raw_ordering.orders as o
                      where o.customer_id = c.customer_id) desc, c.customer_id
            limit 1
            """
        ).fetchone()
        assert row is not None, "the world should have a guest active in every channel"
        customer_id, email, phone, name = row
        anonymous_ids = {
            value
            for (value,) in connection.execute(
                "select distinct anonymous_id from raw_events.messages "
                "where user_id = ? and anonymous_id is not null",
                [str(customer_id)],
            ).fetchall()
        }
        order_ids = {
            value
            for (value,) in connection.execute(
                "select order_id from raw_ordering.orders where customer_id = ?", [customer_id]
            ).fetchall()
        }
    assert anonymous_ids and order_ids
    national = "0" + normalise_phone(phone)[2:]
    return {
        "customer_id": customer_id,
        "email": email,
        "name": name,
        "phone": phone,
        "literals": [email.lower(), normalise_phone(phone), national, name, *anonymous_ids],
        "order_ids": order_ids,
    }


def keyed_id_pattern(guest: dict) -> re.Pattern:
    """The customer id where a JSON key names it: a bare number could be a price or a rating."""
    keys = "customer_id|customerId|user_id|userId"
    return re.compile(rf'"(?:{keys})"\s*:\s*"?{guest["customer_id"]}"?\s*[,}}]')


def traces_in_warehouse(settings: Settings, guest: dict) -> list[str]:
    """Every table of every schema: text columns for the literals, id columns for the ids.

    One scan a table, every check of its columns counted together: a query per check was
    about 8 s a call on the tiny world.
    """
    found = []
    with duckdb.connect(str(settings.warehouse_path), read_only=True) as connection:
        columns = connection.execute(
            """
            select c.table_schema, c.table_name, c.column_name, c.data_type
            from information_schema.columns as c
            join information_schema.tables as t using (table_catalog, table_schema, table_name)
            where t.table_type = 'BASE TABLE'
            order by c.table_schema, c.table_name, c.ordinal_position
            """
        ).fetchall()
        customer_id = str(guest["customer_id"])
        order_ids = [str(value) for value in guest["order_ids"]]
        keyed = keyed_id_pattern(guest).pattern.replace("'", "''")
        checks_by_table: dict[tuple[str, str], list[tuple[str, str]]] = {}
        for schema, table, column, data_type in columns:
            value = f'cast("{column}" as varchar)'
            checks = checks_by_table.setdefault((schema, table), [])
            if data_type in ("VARCHAR", "JSON"):
                # Whole words: the guest "Tri Tan" is not a trace inside "Fitri Tanjung".
                checks += [
                    (column, f"regexp_matches(lower({value}), '{pattern}')")
                    for pattern in (
                        rf"\b{re.escape(literal.lower())}\b".replace("'", "''")
                        for literal in guest["literals"]
                    )
                ]
                checks.append((column, f"regexp_matches({value}, '{keyed}')"))
            if column.lower() in ("customer_id", "user_id"):
                checks.append((column, f"{value} = '{customer_id}'"))
            if column.lower() == "order_id" and schema != "raw_order_history":
                checks.append((column, f"{value} in ({', '.join(repr(v) for v in order_ids)})"))
        for (schema, table), checks in checks_by_table.items():
            if not checks:
                continue
            counts = ", ".join(f"count(*) filter (where {check})" for _, check in checks)
            hits = connection.execute(f'select {counts} from "{schema}"."{table}"').fetchone()
            for (column, check), count in zip(checks, hits, strict=True):
                if count:
                    found.append(f"{schema}.{table}.{column}: {count} rows ({check[:60]})")
    return found


def traces_in_files(root: Path, guest: dict) -> list[str]:
    found = []
    keyed = keyed_id_pattern(guest)
    for path in root.rglob("*"):
        if not path.is_file() or path.suffix not in (".gz", ".csv", ".ndjson", ".json"):
            continue
        raw = path.read_bytes()
        text = (gzip.decompress(raw) if path.suffix == ".gz" else raw).decode().lower()
        words = (rf"\b{re.escape(literal.lower())}\b" for literal in guest["literals"])
        if any(re.search(word, text) for word in words) or keyed.search(text):
            found.append(str(path.relative_to(root)))
    return found


SEPARATORS = rb"[ ().\-/]?"


def byte_patterns(guest: dict) -> dict[str, re.Pattern]:
    """What `grep -a` would look for, per kind: email, phone (E.164 and national, with or
    without the separators people type), full name, and the customer id where a key names it
    (a bare number is in every binary file)."""
    digits = normalise_phone(guest["phone"])
    national = "0" + digits[2:]

    def spaced(number: str) -> bytes:
        return SEPARATORS.join(re.escape(digit.encode()) for digit in number)

    keys = rb"customer_?id|customerId|user_?id|userId"
    return {
        "email": re.compile(re.escape(guest["email"].encode()), re.IGNORECASE),
        "phone": re.compile(
            rb"(?<![0-9])(?:\+?" + spaced(digits) + rb"|" + spaced(national) + rb")(?![0-9])"
        ),
        "name": re.compile(rb"\b" + re.escape(guest["name"].encode()) + rb"\b", re.IGNORECASE),
        "customer_id": re.compile(
            rb'"(?:' + keys + rb')"\s*:\s*"?' + str(guest["customer_id"]).encode() + rb'"?\s*[,}]'
        ),
    }


def parquet_text(path: Path) -> bytes:
    """A Parquet file's values as text: its pages are compressed, so bytes alone hide them."""
    table = pq.read_table(path)
    return table.to_pandas().to_csv(index=False).encode()


def byte_traces(
    roots: list[Path], guest: dict, upstream: set[Path]
) -> tuple[int, dict[str, list[str]]]:
    """Every file under `roots` but the upstream system's own, as raw bytes (and, for gzip files,
    Parquet files, their content too: grep -a would miss a contact inside a compressed landing
    file or dlt job): (files scanned, {kind: files holding it})."""
    patterns = byte_patterns(guest)
    scanned, found = 0, {kind: [] for kind in patterns}
    for root in roots:
        for path in sorted(root.rglob("*")):
            if not path.is_file() or path in upstream:
                continue
            scanned += 1
            raw = path.read_bytes()
            layers = [raw]
            if raw[:2] == b"\x1f\x8b":
                layers.append(gzip.decompress(raw))
            elif raw[:4] == b"PAR1":
                layers.append(parquet_text(path))
            for kind, pattern in patterns.items():
                if kind == "customer_id" and path.name == "manifest.json":
                    continue  # dbt's: the unit tests' hand-typed rows (`"customer_id": 3`)
                if any(pattern.search(layer) for layer in layers):
                    found[kind].append(str(path.relative_to(root.parent)))
    return scanned, found


def touch_guest_in_source(settings: Settings, customer_id: int) -> None:
    """The chain's DB changes the guest's profile after the erasure: a later load brings it."""
    with sqlite3.connect(settings.ordering_db_path) as connection:
        (newest,) = connection.execute("select max(updated_at) from customers").fetchone()
        connection.execute(
            "update customers set accepts_sms_marketing = 1 - accepts_sms_marketing, "
            "updated_at = ? where customer_id = ?",
            (newest, customer_id),
        )


def test_a_forgotten_guest_leaves_no_trace_and_stays_out(materialized_world: Settings):
    from regulars.cli import app
    from simulator import advance_world

    settings = materialized_world
    guest = pick_guest(settings)
    # Audience exports hold contacts too (email/SMS CSVs raw, the Meta CSV hashed).
    data_roots = [
        settings.data_dir / "landing",
        settings.data_dir / "pos_export",
        settings.state_dir / "exports",
    ]
    assert traces_in_warehouse(settings, guest) and traces_in_files(data_roots[0], guest)
    disk = [settings.data_dir, settings.state_dir, settings.warehouse_path.parent]
    # The chain's own ordering DB is its upstream system: not Regulars' to rewrite.
    upstream = {settings.ordering_db_path}
    scanned, found = byte_traces(disk, guest, upstream)
    assert scanned > 500 and all(found.values()), found

    with pytest.raises(GuestNotFound):
        forget("nobody.here@example.com", settings)
    with duckdb.connect(str(settings.warehouse_path), read_only=True) as connection:
        (privacy,) = connection.execute(
            "select count(*) from information_schema.schemata where schema_name = 'privacy'"
        ).fetchone()
    assert privacy == 0, "an unknown guest must change nothing"

    done = CliRunner().invoke(app, ["forget", guest["email"].upper()])
    assert done.exit_code == 0, done.output
    assert "their future data is suppressed" in done.output
    # What read the erased rows was rebuilt as a Dagster run: on record, with its checks.
    with dg.DagsterInstance.get() as instance:
        (rebuild,) = [run for run in instance.get_runs() if FORGET_REQUEST_TAG in run.tags]
        rebuilt = {
            key.to_user_string()
            for key in instance.get_asset_keys()
            if (event := instance.get_latest_materialization_event(key)) is not None
            and event.run_id == rebuild.run_id
        }
    assert rebuild.status == dg.DagsterRunStatus.SUCCESS
    assert f"in run {rebuild.run_id}" in done.output
    assert {"marts/dim_customers", "marts/kpi_scorecard", "serving/published"} <= rebuilt

    assert traces_in_warehouse(settings, guest) == []
    for root in data_roots:
        assert traces_in_files(root, guest) == []
    # The serving copy BI reads was published again from the rebuilt marts, not left for the
    # next run.
    with duckdb.connect(str(serving_path(settings.warehouse_path)), read_only=True) as serving:
        (run_id,) = serving.execute("select run_id from published").fetchone()
        (rows,) = serving.execute(
            "select count(*) from marts.dim_customers where customer_id = ?",
            [guest["customer_id"]],
        ).fetchone()
    assert run_id == rebuild.run_id and rows == 0
    scanned, found = byte_traces(disk, guest, upstream)
    assert scanned > 500 and found == {kind: [] for kind in found}
    assert not [
        path
        for path in data_roots[2].rglob("*.csv")
        if hashed_email(guest["email"]) in path.read_text()
    ]
    with duckdb.connect(str(settings.warehouse_path), read_only=True) as connection:
        kinds = dict(
            connection.execute(
                "select hash_kind, count(*) from privacy.suppressed_guests group by 1"
            ).fetchall()
        )
        assert {"customer_id", "email", "phone", "anonymous_id"} <= set(kinds)
        (email_hashed,) = connection.execute(
            "select count(*) from privacy.suppressed_guests where guest_hash = ?",
            [hashed_email(guest["email"])],
        ).fetchone()
        assert email_hashed == 1
        logged = connection.execute(
            "select identifier_kind, location, rows_removed from privacy.deletion_log"
        ).fetchall()
        assert {kind for kind, _, _ in logged} == {"email"}
        removed = {location: rows for _, location, rows in logged}
        for table in (
            "raw_ordering.customers",
            "raw_ordering.orders",
            "raw_events.messages",
            "raw_messaging.delivery_events",
            "landing_ordering.customers",
            "marts.dim_customers",
        ):
            assert removed.get(table, 0) > 0, table

    advance_world(settings.data_dir, days=3)
    touch_guest_in_source(settings, guest["customer_id"])
    # As `regulars materialize` runs next, on the world's instance, but dbt: the landing and the
    # gate, where the suppression works, then the audiences, their exports and the serving copy.
    # dbt reads only the lake, so a lake without the guest (traces_in_warehouse reads every
    # table) is the proof that nothing dbt builds from it can hold them.
    assert materialize(settings, keep_history=True, exclude=dg.AssetSelection.kind("dbt")).success

    assert traces_in_warehouse(settings, guest) == []
    # New landing files and load packages (the guest's new events and profile change) included.
    scanned_after, found = byte_traces(disk, guest, upstream)
    assert scanned_after > scanned and found == {kind: [] for kind in found}
    exports = retention.exports_dir(settings)
    assert {oct(path.stat().st_mode & 0o777) for path in exports.rglob("*")} == {"0o600", "0o700"}
    assert traces_in_files(data_roots[2], guest) == [], "exported again after the erasure"
    with duckdb.connect(str(settings.warehouse_path), read_only=True) as connection:
        dropped = dict(
            connection.execute(
                "select table_name, sum(rows_dropped) from privacy.suppressed_rows group by 1"
            ).fetchall()
        )
    assert dropped.get("ordering.customers", 0) >= 1
