"""Every source Regulars loads, in one table: how to build it and what to check first.

The CLI, the Dagster assets and the validation gate all iterate over this, so adding a source is
one entry here plus its folder, its suite and its dbt staging models.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import dlt
from dlt.sources import DltSource

from ingestion.events import events_source
from ingestion.ga4 import ga4_source
from ingestion.messaging import messaging_source
from ingestion.meta_ads import meta_ads_source
from ingestion.order_history import order_history_source
from ingestion.ordering import ordering_source
from ingestion.ordering.helpers import require_database
from ingestion.telemetry import telemetry_source
from regulars.settings import Settings


def _always(settings: Settings) -> bool:
    return True


@dataclass(frozen=True)
class Source:
    name: str
    description: str
    kinds: frozenset[str]
    build: Callable[[Settings], DltSource]
    preflight: Callable[[Settings], None]
    # Sources an operator has not set up (no token, no landing folder) stay out of the graph
    # rather than failing every run; `regulars ingest <name>` says what to configure.
    enabled: Callable[[Settings], bool] = _always

    def __str__(self) -> str:
        return self.name


def _require_local_folder(url: str, source_name: str) -> None:
    if "://" in url:
        return  # remote buckets are checked by fsspec when listed
    if not Path(url).is_dir():
        raise FileNotFoundError(
            f"No {source_name} folder at {url}. Build the demo world with `regulars simulate "
            f"build`, or set sources.{source_name}.bucket_url (.dlt/config.toml) or "
            f"SOURCES__{source_name.upper()}__BUCKET_URL to where the files are."
        )


def _folder_present(url: str) -> bool:
    return "://" in url or Path(url).is_dir()


def token_configured(source_name: str) -> bool:
    """Whether an access token for an API source is resolvable (environment or secrets.toml)."""
    key = f"sources.{source_name}.access_token"
    return bool(os.environ.get(key.upper().replace(".", "__")) or dlt.secrets.get(key))


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
            preflight=lambda settings: _require_local_folder(
                settings.order_history_url, "order_history"
            ),
        ),
        Source(
            name="events",
            description="App and web events: Segment batches in the landing zone.",
            kinds=frozenset({"segment"}),
            build=lambda settings: events_source(bucket_url=settings.landing_url),
            preflight=lambda settings: _require_local_folder(
                f"{settings.landing_url}/events", "events"
            ),
            enabled=lambda settings: _folder_present(f"{settings.landing_url}/events"),
        ),
        Source(
            name="messaging",
            description="Email and SMS delivery events: the provider's webhooks, landed.",
            kinds=frozenset({"customerio"}),
            build=lambda settings: messaging_source(bucket_url=settings.landing_url),
            preflight=lambda settings: _require_local_folder(
                f"{settings.landing_url}/messaging", "messaging"
            ),
            enabled=lambda settings: _folder_present(f"{settings.landing_url}/messaging"),
        ),
        Source(
            name="telemetry",
            description="App API-call records from the gateway, landed hourly.",
            kinds=frozenset({"json"}),
            build=lambda settings: telemetry_source(bucket_url=settings.landing_url),
            preflight=lambda settings: _require_local_folder(
                f"{settings.landing_url}/telemetry", "telemetry"
            ),
            enabled=lambda settings: _folder_present(f"{settings.landing_url}/telemetry"),
        ),
        Source(
            name="ga4",
            description="Google Analytics 4: the property's daily traffic report (Data API).",
            kinds=frozenset({"googleanalytics"}),
            build=lambda settings: ga4_source(),
            preflight=lambda settings: None,
            enabled=lambda settings: token_configured("ga4"),
        ),
        Source(
            name="meta_ads",
            description="Instagram Ads through the Meta Marketing API: objects and insights.",
            kinds=frozenset({"meta"}),
            build=lambda settings: meta_ads_source(),
            preflight=lambda settings: None,
            enabled=lambda settings: token_configured("meta_ads"),
        ),
    )
}


def active_sources(settings: Settings) -> list[Source]:
    return [source for source in SOURCES.values() if source.enabled(settings)]


def get_source(name: str) -> Source:
    try:
        return SOURCES[name]
    except KeyError:
        raise KeyError(f"Unknown source {name!r}; known: {', '.join(SOURCES)}") from None
