"""Every source Regulars loads, in one table: how to build it and what to check first.

The CLI, the Dagster assets and the validation gate all iterate over this, so adding a source is
one entry here plus its folder, its suite and its dbt staging models.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from dlt.sources import DltSource

from ingestion.order_history import order_history_source
from ingestion.ordering import ordering_source
from ingestion.ordering.helpers import require_database
from regulars.settings import Settings


@dataclass(frozen=True)
class Source:
    name: str
    description: str
    kinds: frozenset[str]
    build: Callable[[Settings], DltSource]
    preflight: Callable[[Settings], None]

    def __str__(self) -> str:
        return self.name


def _require_local_folder(url: str) -> None:
    if "://" in url:
        return  # remote buckets are checked by fsspec when listed
    if not Path(url).is_dir():
        raise FileNotFoundError(
            f"No order-history folder at {url}. Build the demo world with `regulars simulate "
            "build`, or set sources.order_history.bucket_url (.dlt/config.toml) or "
            "SOURCES__ORDER_HISTORY__BUCKET_URL to where the files are."
        )


SOURCES: dict[str, Source] = {
    source.name: source
    for source in (
        Source(
            name="ordering",
            description="The chain's ordering-platform database (SQLite demo or PostgreSQL).",
            kinds=frozenset({"sql"}),
            build=lambda settings: ordering_source(credentials=settings.ordering_db_url),
            preflight=lambda settings: require_database(settings.ordering_db_url),
        ),
        Source(
            name="order_history",
            description="Order-history files from an earlier system (the old POS export).",
            kinds=frozenset({"csv"}),
            build=lambda settings: order_history_source(bucket_url=settings.order_history_url),
            preflight=lambda settings: _require_local_folder(settings.order_history_url),
        ),
    )
}


def get_source(name: str) -> Source:
    try:
        return SOURCES[name]
    except KeyError:
        raise KeyError(f"Unknown source {name!r}; known: {', '.join(SOURCES)}") from None
