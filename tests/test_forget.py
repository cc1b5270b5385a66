"""Right to be forgotten: a guest erased from every table and landing file, and kept out after.

The tiny world is restored from its materialised copy for this test alone: forget writes.
"""

from __future__ import annotations

import gzip
import re
import sqlite3
import subprocess
import sys
from pathlib import Path

import dagster as dg
import duckdb
import pytest
from typer.testing import CliRunner

from regulars.privacy.forget import (
    AmbiguousGuest,
    GuestNotFound,
    WarehouseBusy,
    forget,
    identifier_kind,
    resolve,
)
from regulars.privacy.hashing import hashed_email, normalise_phone
from regulars.privacy.suppression import register_functions
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
        "literals": [email.lower(), normalise_phone(phone), national, name, *anonymous_ids],
        "order_ids": order_ids,
    }


def keyed_id_pattern(guest: dict) -> re.Pattern:
    """The customer id where a JSON key names it: a bare number could be a price or a rating."""
    keys = "customer_id|customerId|user_id|userId"
    return re.compile(rf'"(?:{keys})"\s*:\s*"?{guest["customer_id"]}"?\s*[,}}]')


def traces_in_warehouse(settings: Settings, guest: dict) -> list[str]:
    """Every table of every schema: text columns for the literals, id columns for the ids."""
    found = []
    with duckdb.connect(str(settings.warehouse_path), read_only=True) as connection:
        columns = connection.execute(
            """
            select c.table_schema, c.table_name, c.column_name, c.data_type
            from information_schema.columns as c
            join information_schema.tables as t using (table_catalog, table_schema, table_name)
            where t.table_type = 'BASE TABLE'
            """
        ).fetchall()
        customer_id = str(guest["customer_id"])
        order_ids = [str(value) for value in guest["order_ids"]]
        keyed = keyed_id_pattern(guest).pattern.replace("'", "''")
        for schema, table, column, data_type in columns:
            relation, value = f'"{schema}"."{table}"', f'cast("{column}" as varchar)'
            checks = []
            if data_type in ("VARCHAR", "JSON"):
                # Whole words: the guest "Tri Tan" is not a trace inside "Fitri Tanjung".
                checks += [
                    f"regexp_matches(lower({value}), '{pattern}')"
                    for pattern in (
                        rf"\b{re.escape(literal.lower())}\b".replace("'", "''")
                        for literal in guest["literals"]
                    )
                ]
                checks.append(f"regexp_matches({value}, '{keyed}')")
            if column.lower() in ("customer_id", "user_id"):
                checks.append(f"{value} = '{customer_id}'")
            if column.lower() == "order_id" and schema != "raw_order_history":
                checks.append(f"{value} in ({', '.join(repr(v) for v in order_ids)})")
            for check in checks:
                (hits,) = connection.execute(
                    f"select count(*) from {relation} where {check}"
                ).fetchone()
                if hits:
                    found.append(f"{schema}.{table}.{column}: {hits} rows ({check[:60]})")
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

    assert traces_in_warehouse(settings, guest) == []
    for root in data_roots:
        assert traces_in_files(root, guest) == []
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

    advance_world(settings.data_dir, days=5)
    touch_guest_in_source(settings, guest["customer_id"])
    # Landing, gate and every dbt model with its tests; the fits keep the rows forget left them.
    assert materialize(settings, analytics=False).success

    assert traces_in_warehouse(settings, guest) == []
    assert traces_in_files(data_roots[2], guest) == [], "exported again after the erasure"
    with duckdb.connect(str(settings.warehouse_path), read_only=True) as connection:
        dropped = dict(
            connection.execute(
                "select table_name, sum(rows_dropped) from privacy.suppressed_rows group by 1"
            ).fetchall()
        )
    assert dropped.get("ordering.customers", 0) >= 1
