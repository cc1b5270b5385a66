"""The ordering platform's database: stores, menu, customers, orders and their items.

Reads any SQLAlchemy URL (SQLite by default, PostgreSQL in production) with dlt's `sql_database`
source, incrementally on `updated_at`, merging on each table's primary key so that a changed row
replaces its previous version. Soft deletes arrive as rows with `deleted_at` set and stay visible
downstream, where staging turns them into `is_deleted`.
"""

from __future__ import annotations

from datetime import datetime

import dlt
import sqlalchemy as sa
from dlt.sources import DltSource
from dlt.sources.sql_database import sql_database

from ingestion.ordering.helpers import missing_database
from ingestion.ordering.settings import (
    CURSOR_COLUMN,
    DEFAULT_CHUNK_SIZE,
    INITIAL_CURSOR,
    SCHEMA_CONTRACT,
    TABLE_PRIMARY_KEYS,
)
from ingestion.source_spec import Source, SourceConfigError

SOURCE_NAME = "ordering"


def zoned_timestamps(sql_type: sa.types.TypeEngine) -> sa.types.TypeEngine:
    """The backend stores UTC without a zone; say so, so the lake holds instants, not wall time."""
    if isinstance(sql_type, sa.DateTime) and not sql_type.timezone:
        return sa.DateTime(timezone=True)
    return sql_type


@dlt.source(name=SOURCE_NAME)
def ordering_source(
    credentials: str = dlt.secrets.value, chunk_size: int = DEFAULT_CHUNK_SIZE
) -> DltSource:
    """Every table of the ordering DB, changed rows only, newest state wins."""
    if not credentials:
        raise SourceConfigError(
            "The ordering DB URL is not set: set sources.ordering.credentials in "
            ".dlt/secrets.toml or the SOURCES__ORDERING__CREDENTIALS environment variable "
            "(for example postgresql://user:password@host:5432/ordering)."
        )
    # pyarrow backend: rows travel as Arrow batches, not one dict per row.
    # defer_table_reflect: defining the Dagster assets must not need the database to be up.
    database = sql_database(
        credentials=credentials,
        table_names=list(TABLE_PRIMARY_KEYS),
        backend="pyarrow",
        backend_kwargs={"tz": "UTC"},
        type_adapter_callback=zoned_timestamps,
        reflection_level="full",
        defer_table_reflect=True,
        chunk_size=chunk_size,
    )
    initial = datetime.fromisoformat(INITIAL_CURSOR)
    for table_name, primary_key in TABLE_PRIMARY_KEYS.items():
        resource = database.resources[table_name]
        resource.apply_hints(
            primary_key=primary_key,
            write_disposition="merge",
            incremental=dlt.sources.incremental(CURSOR_COLUMN, initial_value=initial),
            schema_contract=SCHEMA_CONTRACT,
        )
        yield resource


# Where a person sets the database, for errors that cannot reach it.
ORDERING_URL_SETTING = (
    "sources.ordering.credentials (.dlt/secrets.toml or SOURCES__ORDERING__CREDENTIALS), the "
    "database URL"
)

SOURCE = Source(
    name=SOURCE_NAME,
    description="The chain's ordering-platform database (SQLite demo or PostgreSQL).",
    kinds=frozenset({"sql"}),
    build=lambda settings: ordering_source(credentials=settings.ordering_db_url),
    missing=lambda settings: missing_database(settings.ordering_db_url),
    address=ORDERING_URL_SETTING,
    credentials=ORDERING_URL_SETTING,
)
