"""Who is in an audience, and who of them may be sent to a channel (with their contact details).

Audiences filter marts.dim_customers; the members of a run are kept in
`activation.audience_members` so every channel's export of that run draws from the same list.
Channel consent is applied here, in SQL; contacts come from staging, since marts hold no raw PII.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import duckdb

from regulars.activation.config import ActivationConfig, Audience, Channel

SCHEMA = "activation"
AUDIENCE_MEMBERS = f"{SCHEMA}.audience_members"
DIM_CUSTOMERS = "marts.dim_customers"
CONTACTS = "staging.stg_ordering__customers"

AUDIENCE_MEMBERS_DDL = f"""
create schema if not exists {SCHEMA};
create table if not exists {AUDIENCE_MEMBERS} (
    audience varchar not null,
    customer_id bigint not null,
    selected_at timestamp not null
);
"""


@dataclass(frozen=True)
class Member:
    """A guest cleared for one channel, with what the exporters need."""

    customer_id: int
    email: str | None
    phone: str | None
    full_name: str | None
    consent: Mapping[str, Any]  # the channel's consent columns, for the exporter's own check


def dim_customers_columns(conn: duckdb.DuckDBPyConnection) -> dict[str, str]:
    """dim_customers' columns and DuckDB types, what filters are checked against."""
    schema, table = DIM_CUSTOMERS.split(".")
    rows = conn.execute(
        "select column_name, data_type from information_schema.columns "
        "where table_schema = ? and table_name = ? order by ordinal_position",
        [schema, table],
    ).fetchall()
    if not rows:
        raise LookupError(f"{DIM_CUSTOMERS} is not in the warehouse yet: build the marts first.")
    return dict(rows)


def checked(
    config: ActivationConfig, conn: duckdb.DuckDBPyConnection, audience: str | None = None
) -> ActivationConfig:
    """The config, once its filters (one audience's, or all) fit dim_customers as built."""
    config.check_columns(dim_customers_columns(conn), audience)
    return config


def select_audience(conn: duckdb.DuckDBPyConnection, audience: Audience) -> list[int]:
    """The customer ids the audience's filter matches today."""
    where, params = audience.filter.sql()
    rows = conn.execute(
        f"select customer_id from {DIM_CUSTOMERS} where {where} order by customer_id", params
    ).fetchall()
    return [row[0] for row in rows]


def store_audience(
    conn: duckdb.DuckDBPyConnection, audience: Audience, selected_at: datetime
) -> int:
    """Replace the audience's stored members with today's selection; returns how many."""
    conn.execute(AUDIENCE_MEMBERS_DDL)
    where, params = audience.filter.sql()
    conn.execute("begin")
    try:
        conn.execute(f"delete from {AUDIENCE_MEMBERS} where audience = ?", [audience.name])
        conn.execute(
            f"insert into {AUDIENCE_MEMBERS} "
            f"select ?, customer_id, ? from {DIM_CUSTOMERS} where {where}",
            [audience.name, selected_at, *params],
        )
        conn.execute("commit")
    except Exception:
        conn.execute("rollback")
        raise
    return conn.execute(
        f"select count(*) from {AUDIENCE_MEMBERS} where audience = ?", [audience.name]
    ).fetchone()[0]


def channel_members(
    conn: duckdb.DuckDBPyConnection, audience: Audience, channel: Channel
) -> list[Member]:
    """The audience's stored members who satisfy the channel's consent rule, with contacts."""
    conn.execute(AUDIENCE_MEMBERS_DDL)
    consent_sql, params = channel.consent.sql()
    consent_columns = sorted({c.column for c in channel.consent.conditions()})
    consent_select = ", ".join(f'customers."{c}"' for c in consent_columns)
    rows = conn.execute(
        f"""
        select customers.customer_id, contacts.email, contacts.phone, contacts.full_name,
            {consent_select}
        from {AUDIENCE_MEMBERS} as members
        inner join (select * from {DIM_CUSTOMERS} where {consent_sql}) as customers
            on members.customer_id = customers.customer_id
        left join {CONTACTS} as contacts
            on members.customer_id = contacts.customer_id
        where members.audience = ?
        order by customers.customer_id
        """,
        [*params, audience.name],
    ).fetchall()
    return [
        Member(
            customer_id=row[0],
            email=row[1],
            phone=row[2],
            full_name=row[3],
            consent=dict(zip(consent_columns, row[4:], strict=True)),
        )
        for row in rows
    ]
