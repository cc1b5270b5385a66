"""One audience to one channel: select, check consent, write the file, sync the difference, log.

State lives in the warehouse, schema `activation`, and holds no PII:
- `exported_members`: per audience x channel, the member keys (hashes) last delivered, and for
  Meta the hashed email / phone rows sent, which a later removal must repeat.
- `export_log`: one row per export: when, how many members, how many added and removed since the
  previous export, the file written, and the API's status and a summary of its answer.

Meta takes additions and removals, so only the difference is sent; the email / SMS provider and
the push service take whole lists, so their files always hold everyone (added / removed in the
log are then for reading only). Stored members change only after the destination accepted.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import pyarrow as pa

from regulars.activation.config import ActivationConfig, Audience
from regulars.activation.exporters import SUFFIX, Record, records, write_file
from regulars.activation.meta_client import MetaCustomAudiences, MetaSyncError
from regulars.activation.retention import expire, exports_dir
from regulars.activation.selection import SCHEMA, channel_members
from regulars.settings import Settings

EXPORTED_MEMBERS = f"{SCHEMA}.exported_members"
EXPORT_LOG = f"{SCHEMA}.export_log"

STATE_DDL = f"""
create schema if not exists {SCHEMA};
create table if not exists {EXPORTED_MEMBERS} (
    audience varchar not null,
    channel varchar not null,
    member_key varchar not null,
    email_sha256 varchar,
    phone_sha256 varchar,
    exported_at timestamp not null
);
create sequence if not exists {SCHEMA}.export_log_seq;
create table if not exists {EXPORT_LOG} (
    export_id bigint primary key default nextval('{SCHEMA}.export_log_seq'),
    audience varchar not null,
    channel varchar not null,
    exported_at timestamp not null,
    members bigint not null,
    added bigint not null,
    removed bigint not null,
    file_path varchar not null,
    http_status integer,
    response_summary varchar
);
"""


@dataclass(frozen=True)
class ExportResult:
    audience: str
    channel: str
    exported_at: datetime
    members: int
    added: int
    removed: int
    file_path: Path
    http_status: int | None
    response_summary: str


def export_path(settings: Settings, audience: str, channel: str, exported_at: datetime) -> Path:
    stamp = exported_at.strftime("%Y%m%dT%H%M%S%fZ")
    return exports_dir(settings) / audience / channel / f"{stamp}.{SUFFIX[channel]}"


def previous_members(
    conn: duckdb.DuckDBPyConnection, audience: str, channel: str
) -> dict[str, Record]:
    conn.execute(STATE_DDL)
    rows = conn.execute(
        f"select member_key, email_sha256, phone_sha256 from {EXPORTED_MEMBERS} "
        "where audience = ? and channel = ?",
        [audience, channel],
    ).fetchall()
    return {
        key: Record(key, (email or "", phone or ""), email, phone) for key, email, phone in rows
    }


def export_channel(
    conn: duckdb.DuckDBPyConnection,
    settings: Settings,
    config: ActivationConfig,
    audience: Audience,
    channel_name: str,
    meta_client: MetaCustomAudiences | None = None,
    now: datetime | None = None,
) -> ExportResult:
    """Export the audience's stored members (see selection.store_audience) to one channel."""
    channel = config.channels[channel_name]
    exported_at = (now or datetime.now(UTC)).replace(tzinfo=None)
    current = {r.key: r for r in records(channel, channel_members(conn, audience, channel))}
    before = previous_members(conn, audience.name, channel_name)
    added = [current[k] for k in sorted(current.keys() - before.keys())]
    removed = [before[k] for k in sorted(before.keys() - current.keys())]
    expire(settings)
    path = write_file(
        export_path(settings, audience.name, channel_name, exported_at),
        channel_name,
        list(current.values()),
        exports_dir(settings),
    )

    status, summary = None, "file only"
    if channel_name == "meta":
        if meta_client is None or audience.meta_custom_audience_id is None:
            summary = (
                "file only: set meta_custom_audience_id on the audience and "
                "ACTIVATION__META__ACCESS_TOKEN to sync through the API"
            )
        else:
            try:
                status, summary = _sync_meta(meta_client, audience, added, removed)
            except MetaSyncError as error:
                failed = ExportResult(
                    audience.name,
                    channel_name,
                    exported_at,
                    len(current),
                    0,
                    0,
                    path,
                    error.status,
                    str(error)[:500],
                )
                _log(conn, failed)
                raise

    conn.execute("begin")
    try:
        conn.execute(
            f"delete from {EXPORTED_MEMBERS} where audience = ? and channel = ?",
            [audience.name, channel_name],
        )
        if current:
            rows = pa.table(
                {
                    "member_key": [r.key for r in current.values()],
                    "email_sha256": pa.array(
                        [r.email_sha256 for r in current.values()], pa.string()
                    ),
                    "phone_sha256": pa.array(
                        [r.phone_sha256 for r in current.values()], pa.string()
                    ),
                }
            )
            conn.register("activation_new_members", rows)
            try:
                conn.execute(
                    f"insert into {EXPORTED_MEMBERS} select ?, ?, member_key, email_sha256, "
                    "phone_sha256, ? from activation_new_members",
                    [audience.name, channel_name, exported_at],
                )
            finally:
                conn.unregister("activation_new_members")
        result = ExportResult(
            audience.name,
            channel_name,
            exported_at,
            len(current),
            len(added),
            len(removed),
            path,
            status,
            summary,
        )
        _log(conn, result)
        conn.execute("commit")
    except Exception:
        conn.execute("rollback")
        raise
    return result


def _sync_meta(
    client: MetaCustomAudiences, audience: Audience, added: list[Record], removed: list[Record]
) -> tuple[int | None, str]:
    audience_id = audience.meta_custom_audience_id
    adds = client.add(audience_id, [r.fields for r in added])
    removes = client.remove(audience_id, [r.fields for r in removed])
    if adds is None and removes is None:
        return None, "no change: nothing sent"
    parts = []
    if adds is not None:
        parts.append(f"POST {adds.summary()}")
    if removes is not None:
        parts.append(f"DELETE {removes.summary()}")
    status = (removes or adds).status
    return status, "; ".join(parts)


def _log(conn: duckdb.DuckDBPyConnection, result: ExportResult) -> None:
    conn.execute(STATE_DDL)
    conn.execute(
        f"insert into {EXPORT_LOG} (audience, channel, exported_at, members, added, removed, "
        "file_path, http_status, response_summary) values (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [
            result.audience,
            result.channel,
            result.exported_at,
            result.members,
            result.added,
            result.removed,
            str(result.file_path),
            result.http_status,
            result.response_summary,
        ],
    )
