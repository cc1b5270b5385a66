"""Audiences back to the channels: config errors, consent, Meta's hashed list and diffs.

Pure tests use small YAML files; the rest export from a copy of the marts world's warehouse (the
session's world stays read-only) into a state dir of their own, with the Meta fake standing in
for the Marketing API.
"""

from __future__ import annotations

import csv
import json
import math
import os
import re
import shutil
from dataclasses import replace
from datetime import datetime
from pathlib import Path
from types import SimpleNamespace

import dagster as dg
import duckdb
import pytest

from regulars.activation import retention
from regulars.activation.config import ConfigError, load_config, parse_config
from regulars.activation.export import EXPORT_LOG, EXPORTED_MEMBERS, export_channel
from regulars.activation.exporters import ConsentViolation, Record, assert_consent, write_file
from regulars.activation.meta_client import MetaCustomAudiences
from regulars.activation.selection import (
    Member,
    checked,
    store_audience,
)
from regulars.privacy.hashing import hashed_email, hashed_phone, normalise_email, normalise_phone
from regulars.settings import Settings
from simulator.fakes import FakeServer
from simulator.fakes import meta as meta_fake

HEX64 = re.compile(r"[0-9a-f]{64}")
AUDIENCE_ID = "120210000000000001"
CHANNELS_YAML = """
channels:
  email: {consent: {has_email_consent: true}}
  sms: {consent: {has_sms_consent: true}}
  meta: {consent: {has_email_consent: true}}
  push: {consent: {has_email_consent: true, preferred_platform: [app]}}
"""
# Which dim_customers columns each channel's consent reads, to check files against.
CONSENT = {
    "email": lambda c: c["has_email_consent"],
    "sms": lambda c: c["has_sms_consent"],
    "meta": lambda c: c["has_email_consent"],
    "push": lambda c: c["has_email_consent"] and c["preferred_platform"] == "app",
}


def write_config(path: Path, stages: list[str], channels=("meta", "email", "sms", "push")) -> Path:
    path.write_text(
        CHANNELS_YAML
        + f"""
audiences:
  lapsed:
    description: Guests the lifecycle rule calls at risk or churned.
    filter:
      lifecycle_stage: {json.dumps(stages)}
    channels: {json.dumps(list(channels))}
    meta_custom_audience_id: "{AUDIENCE_ID}"
"""
    )
    return path


# --- config ---------------------------------------------------------------------------------


def error_of(tmp_path: Path, text: str, columns: dict[str, str] | None = None) -> str:
    path = tmp_path / "audiences.yml"
    path.write_text(text)
    with pytest.raises(ConfigError) as raised:
        config = load_config(path)
        if columns is not None:
            config.check_columns(columns)
    message = str(raised.value)
    assert str(path) in message
    return message


def test_the_default_config_loads_with_a_consent_rule_per_channel() -> None:
    config = load_config()
    assert set(config.channels) == {"meta", "email", "sms", "push"}
    assert "winback_high_risk" in config.audiences
    assert set(config.audiences["winback_high_risk"].channels) == {"meta", "email", "sms", "push"}


def test_config_errors_name_the_audience_and_field(tmp_path: Path) -> None:
    unknown_channel = error_of(
        tmp_path,
        CHANNELS_YAML
        + "audiences:\n  lapsed:\n    description: x\n    filter: {lifecycle_stage: [churned]}\n"
        "    channels: [tiktok]\n",
    )
    assert "audience 'lapsed', field channels" in unknown_channel and "tiktok" in unknown_channel

    no_consent = error_of(
        tmp_path,
        "channels:\n  email: {}\naudiences:\n  lapsed:\n    description: x\n"
        "    filter: {lifecycle_stage: [churned]}\n    channels: [email]\n",
    )
    assert "channel 'email', field consent" in no_consent

    consent_without_opt_in = error_of(
        tmp_path,
        "channels:\n  push: {consent: {preferred_platform: [app]}}\naudiences:\n  lapsed:\n"
        "    description: x\n    filter: {lifecycle_stage: [churned]}\n    channels: [push]\n",
    )
    assert "channel 'push', field consent" in consent_without_opt_in

    channel_without_rule = error_of(
        tmp_path,
        "channels:\n  email: {consent: {has_email_consent: true}}\naudiences:\n  lapsed:\n"
        "    description: x\n    filter: {lifecycle_stage: [churned]}\n    channels: [sms]\n",
    )
    assert "audience 'lapsed', field channels" in channel_without_rule
    assert "no consent rule" in channel_without_rule

    bad_bounds = error_of(
        tmp_path,
        CHANNELS_YAML + "audiences:\n  big:\n    description: x\n"
        "    filter: {completed_orders: {min: many}}\n    channels: [email]\n",
    )
    assert "audience 'big', field filter" in bad_bounds and "completed_orders" in bad_bounds


def test_filters_are_checked_against_dim_customers_columns(tmp_path: Path) -> None:
    columns = {
        "customer_id": "BIGINT",
        "lifecycle_stage": "VARCHAR",
        "completed_orders": "BIGINT",
        "has_email_consent": "BOOLEAN",
        "has_sms_consent": "BOOLEAN",
        "preferred_platform": "VARCHAR",
    }
    head = CHANNELS_YAML + "audiences:\n  lapsed:\n    description: x\n    channels: [email]\n"
    unknown = error_of(tmp_path, head + "    filter: {lifecycle: [churned]}\n", columns)
    assert "audience 'lapsed', field filter" in unknown and "'lifecycle'" in unknown
    wrong_type = error_of(tmp_path, head + "    filter: {completed_orders: ['3']}\n", columns)
    assert "audience 'lapsed', field filter" in wrong_type and "BIGINT" in wrong_type
    bounds_on_text = error_of(tmp_path, head + "    filter: {lifecycle_stage: {min: 1}}\n", columns)
    assert "min / max" in bounds_on_text


def test_the_exporter_refuses_a_guest_without_consent() -> None:
    config = parse_config(
        {
            "channels": {"sms": {"consent": {"has_sms_consent": True}}},
            "audiences": {"a": {"description": "x", "filter": {"x": [1]}, "channels": ["sms"]}},
        },
        Path("inline.yml"),
    )
    member = Member(1, "a@example.com", "+6281234567890", "A B", {"has_sms_consent": False})
    with pytest.raises(ConsentViolation):
        assert_consent(config.channels["sms"], [member])


def test_the_meta_fake_answers_membership_requests_as_meta_does(tmp_path: Path) -> None:
    from urllib.parse import urlencode

    from simulator.fakes.common import Request

    fake = meta_fake.MetaFake(tmp_path)
    auth = {"authorization": f"Bearer {meta_fake.DEFAULT_TOKEN}"}
    good, other = "a" * 64, "b" * 64
    payload = {"schema": ["EMAIL_SHA256"], "data": [[good], [other], ["x@example.com"]]}
    # Meta's own example posts the payload as a form field.
    form = urlencode({"payload": json.dumps(payload)}).encode()
    answer = fake.handle(Request("POST", f"/v21.0/{AUDIENCE_ID}/users", {}, auth, form))
    assert answer.status == 200
    assert set(answer.body) == {
        "audience_id",
        "session_id",
        "num_received",
        "num_invalid_entries",
        "invalid_entry_samples",
    }
    assert (answer.body["num_received"], answer.body["num_invalid_entries"]) == (3, 1)
    assert fake.audience_members(AUDIENCE_ID) == {(good,), (other,)}

    removal = json.dumps({"payload": {"schema": ["EMAIL_SHA256"], "data": [[good]]}}).encode()
    headers = auth | {"content-type": "application/json"}
    fake.handle(Request("DELETE", f"/v21.0/{AUDIENCE_ID}/users", {}, headers, removal))
    assert fake.audience_members(AUDIENCE_ID) == {(other,)}

    too_many = {"payload": {"schema": ["EMAIL"], "data": [[good]] * 10_001}}
    body = json.dumps(too_many).encode()
    refused = fake.handle(Request("POST", f"/v21.0/{AUDIENCE_ID}/users", {}, headers, body))
    assert refused.status == 400 and refused.body["error"]["code"] == 100
    unauthenticated = fake.handle(Request("POST", f"/v21.0/{AUDIENCE_ID}/users", {}, {}, form))
    assert unauthenticated.status == 400 and unauthenticated.body["error"]["code"] == 104


def test_export_files_are_owner_only_and_expire(
    regulars_env: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An email list holds raw addresses: 0600 in 0700 folders, deleted past the retention."""
    root = retention.exports_dir(regulars_env)
    old, new = (root / "winback" / "email" / f"{stamp}.csv" for stamp in ("old", "new"))
    for path in (old, new):
        write_file(path, "email", [Record("k", ("guest@example.com", "Guest"))], root)
    modes = {oct(path.stat().st_mode & 0o777) for path in [root, *root.rglob("*")]}
    assert modes == {"0o600", "0o700"}
    now = new.stat().st_mtime
    os.utime(old, (now - 31 * 86_400, now - 31 * 86_400))
    assert retention.expire(regulars_env, now=now) == 1  # the default: 30 days
    assert sorted(path.name for path in root.rglob("*.csv")) == ["new.csv"]
    monkeypatch.setenv(retention.RETENTION_SETTING, "0")
    assert retention.expire(regulars_env, now=now + 1) == 1
    assert list(root.iterdir()) == []  # emptied folders go too
    monkeypatch.setenv(retention.RETENTION_SETTING, "a month")
    with pytest.raises(retention.RetentionError, match="REGULARS_EXPORT_RETENTION_DAYS='a month'"):
        retention.expire(regulars_env)


# --- exports from the marts world ---------------------------------------------------------


@pytest.fixture(scope="module")
def exports(marts_world: Settings, tmp_path_factory: pytest.TempPathFactory):
    """A writable copy of the marts world's warehouse, a state dir, and the Meta fake."""
    root = tmp_path_factory.mktemp("activation")
    warehouse = root / "regulars.duckdb"
    shutil.copy(marts_world.warehouse_path, warehouse)
    settings = replace(marts_world, warehouse_path=warehouse, state_dir=root / "var")
    conn = duckdb.connect(str(warehouse))
    # The world may have run the default audiences already: start from no exports.
    conn.execute("drop schema if exists activation cascade")
    with FakeServer(marts_world.data_dir, ["meta"]) as server:
        client = MetaCustomAudiences(meta_fake.DEFAULT_TOKEN, base_url=server.base_url)
        yield SimpleNamespace(settings=settings, conn=conn, server=server, client=client, root=root)
    conn.close()


def run_exports(exports, stages: list[str], client=None) -> dict:
    conn = exports.conn
    config = checked(load_config(write_config(exports.root / "audiences.yml", stages)), conn)
    audience = config.audiences["lapsed"]
    store_audience(conn, audience, datetime.now())
    client = client or exports.client
    return {
        channel: export_channel(conn, exports.settings, config, audience, channel, client)
        for channel in audience.channels
    }


def customers(conn: duckdb.DuckDBPyConnection) -> list[dict]:
    cursor = conn.execute(
        "select d.customer_id, d.lifecycle_stage, d.has_email_consent, d.has_sms_consent, "
        "d.preferred_platform, s.email, s.phone "
        "from marts.dim_customers as d "
        "left join staging.stg_ordering__customers as s using (customer_id)"
    )
    names = [c[0] for c in cursor.description]
    return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


def read_csv(path: Path) -> tuple[list[str], list[list[str]]]:
    with path.open(newline="") as handle:
        rows = list(csv.reader(handle))
    return rows[0], rows[1:]


def owners(channel: str, path: Path, guests: list[dict]) -> list[dict]:
    """The guests each exported row stands for (every guest sharing its identifier)."""
    if channel == "push":
        ids = set(json.loads(path.read_text()))
        return [g for g in guests if str(g["customer_id"]) in ids]
    _, rows = read_csv(path)
    if channel == "email":
        wanted = {r[0] for r in rows}
        return [g for g in guests if normalise_email(g["email"]) in wanted]
    if channel == "sms":
        wanted = {r[0].removeprefix("+") for r in rows}
        return [g for g in guests if normalise_phone(g["phone"]) in wanted]
    emails, phones = {r[0] for r in rows if r[0]}, {r[1] for r in rows if r[1]}
    return [
        g
        for g in guests
        if hashed_email(g["email"]) in emails or hashed_phone(g["phone"]) in phones
    ]


def test_no_exported_row_belongs_to_a_guest_without_consent(exports) -> None:
    results = run_exports(exports, ["at_risk", "churned"])
    conn = exports.conn
    guests = customers(conn)
    for channel, result in results.items():
        assert result.members > 0, channel
        matched = owners(channel, result.file_path, guests)
        assert len(matched) >= result.members, channel
        refused = [g["customer_id"] for g in matched if not CONSENT[channel](g)]
        assert refused == [], f"{channel} exported guests without consent: {refused[:5]}"
        assert {g["lifecycle_stage"] for g in matched} <= {"at_risk", "churned"}, channel
    # ...and nobody eligible is left out: the email file holds every consenting lapsed guest.
    eligible = {
        normalise_email(g["email"])
        for g in guests
        if g["lifecycle_stage"] in ("at_risk", "churned")
        and g["has_email_consent"]
        and normalise_email(g["email"])
    }
    assert results["email"].members == len(eligible)


def test_meta_csv_holds_only_the_members_hashed_emails(exports) -> None:
    results = run_exports(exports, ["at_risk", "churned"])
    header, rows = read_csv(results["meta"].file_path)
    assert header == ["email", "phone"]
    values = [v for row in rows for v in row if v]
    assert values and all(HEX64.fullmatch(v) for v in values)
    guests = customers(exports.conn)
    expected = {
        hashed_email(g["email"])
        for g in guests
        if g["lifecycle_stage"] in ("at_risk", "churned")
        and g["has_email_consent"]
        and hashed_email(g["email"])
    }
    assert {row[0] for row in rows if row[0]} == expected
    # What the fake holds is exactly the file.
    fake = exports.server.meta
    assert fake.audience_members(AUDIENCE_ID) == {tuple(row) for row in rows}


def test_meta_gets_only_the_difference(exports) -> None:
    conn, server = exports.conn, exports.server
    first = run_exports(exports, ["at_risk", "churned"])["meta"]
    _, before_rows = read_csv(first.file_path)

    server.reset_requests()
    again = run_exports(exports, ["at_risk", "churned"])["meta"]
    member_requests = [r for r in server.requests if r["path"].endswith("/users")]
    assert member_requests == []
    assert (again.added, again.removed, again.members) == (0, 0, first.members)
    assert again.response_summary == "no change: nothing sent"

    server.reset_requests()
    sent_before = len(server.meta.audience_requests)
    narrowed = run_exports(exports, ["churned"])["meta"]
    _, after_rows = read_csv(narrowed.file_path)
    gone = {tuple(r) for r in before_rows} - {tuple(r) for r in after_rows}
    assert gone and narrowed.removed == len(gone) and narrowed.added == 0
    sent = server.meta.audience_requests[sent_before:]
    assert [r["method"] for r in sent] == ["DELETE"]
    assert sent[0]["rows"] == len(gone) and sent[0]["valid_rows"] == len(gone)
    assert server.meta.audience_members(AUDIENCE_ID) == {tuple(r) for r in after_rows}

    log = conn.execute(
        f"select channel, members, added, removed, http_status from {EXPORT_LOG} "
        "where audience = 'lapsed' and channel = 'meta' order by export_id desc limit 1"
    ).fetchone()
    assert log == ("meta", narrowed.members, 0, len(gone), 200)
    # The state keeps hashes only.
    keys = conn.execute(f"select member_key, email_sha256 from {EXPORTED_MEMBERS}").fetchall()
    assert all(HEX64.fullmatch(k) and (e is None or HEX64.fullmatch(e)) for k, e in keys)

    # Widen again, in batches of 100 rows: POST only, in ceil(n / 100) requests.
    small = MetaCustomAudiences(meta_fake.DEFAULT_TOKEN, base_url=server.base_url, batch_size=100)
    sent_before = len(server.meta.audience_requests)
    widened = run_exports(exports, ["at_risk", "churned"], client=small)["meta"]
    sent = server.meta.audience_requests[sent_before:]
    assert widened.added == len(gone) and widened.removed == 0
    assert [r["method"] for r in sent] == ["POST"] * math.ceil(len(gone) / 100)
    assert all(r["rows"] <= 100 for r in sent)
    assert server.meta.audience_members(AUDIENCE_ID) == {tuple(r) for r in before_rows}


def test_export_log_holds_no_contact_details(exports) -> None:
    run_exports(exports, ["at_risk", "churned"])
    conn = exports.conn
    logged = " ".join(
        str(v) for row in conn.execute(f"select * from {EXPORT_LOG}").fetchall() for v in row
    )
    for guest in customers(conn)[:200]:
        for value in (guest["email"], guest["phone"]):
            assert not value or value not in logged


def test_the_assets_materialise_from_the_config(
    marts_world: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from orchestration.activation import audience_key, definitions, export_key

    shutil.copy(marts_world.warehouse_path, tmp_path / "regulars.duckdb")
    settings = replace(
        marts_world, warehouse_path=tmp_path / "regulars.duckdb", state_dir=tmp_path / "var"
    )
    with duckdb.connect(str(settings.warehouse_path)) as conn:
        conn.execute("drop schema if exists activation cascade")
    monkeypatch.setenv("REGULARS_AUDIENCES", str(write_config(tmp_path / "a.yml", ["new"])))
    monkeypatch.delenv("ACTIVATION__META__ACCESS_TOKEN", raising=False)
    assets = list(definitions(settings).assets)
    keys = {key for a in assets for key in a.keys}
    expected = {audience_key("lapsed")} | {
        export_key("lapsed", c) for c in ("meta", "email", "sms", "push")
    }
    assert keys == expected
    assert all(a.group_names_by_key[k] == "activation" for a in assets for k in a.keys)
    with dg.DagsterInstance.ephemeral() as instance:
        assert dg.materialize(assets, instance=instance).success
    with duckdb.connect(str(settings.warehouse_path), read_only=True) as conn:
        logged = dict(conn.execute(f"select channel, members from {EXPORT_LOG}").fetchall())
        new_guests = conn.execute(
            "select count(*) from marts.dim_customers where lifecycle_stage = 'new' "
            "and has_email_consent and preferred_platform = 'app'"
        ).fetchone()[0]
    assert set(logged) == {"meta", "email", "sms", "push"}
    assert logged["push"] == new_guests
    assert (settings.state_dir / "exports" / "lapsed" / "push").is_dir()
