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

from ingestion import SOURCE_NAMES
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


def _require_order_history_folder(url: str) -> None:
    if not _folder_present(url):
        raise FileNotFoundError(
            f"No order-history folder at {url}. Build the demo world with `regulars simulate "
            "build`, or set sources.order_history.bucket_url (.dlt/config.toml) or "
            "SOURCES__ORDER_HISTORY__BUCKET_URL to where the files are."
        )


def _folder_present(url: str) -> bool:
    return "://" in url or Path(url).is_dir()


def token_configured(source_name: str) -> bool:
    """Whether an access token for an API source is resolvable (environment or secrets.toml)."""
    key = f"sources.{source_name}.access_token"
    return bool(os.environ.get(key.upper().replace(".", "__")) or dlt.secrets.get(key))


def _landing_stream(
    name: str, description: str, kind: str, source: Callable[..., DltSource]
) -> Source:
    """A stream of the landing zone: present when its folder is (or the zone is a bucket)."""

    def folder(settings: Settings) -> str:
        return f"{settings.landing_url}/{name}"

    def preflight(settings: Settings) -> None:
        if not _folder_present(folder(settings)):
            raise FileNotFoundError(
                f"No {name} stream at {folder(settings)}. Build the demo world with `regulars "
                "simulate build`, or set REGULARS_LANDING_URL to the landing zone the chain's "
                "systems (and the collector) write to."
            )

    return Source(
        name=name,
        description=description,
        kinds=frozenset({kind}),
        build=lambda settings: source(bucket_url=settings.landing_url),
        preflight=preflight,
        enabled=lambda settings: _folder_present(folder(settings)),
    )


def _http_api(name: str, description: str, kind: str, source: Callable[..., DltSource]) -> Source:
    """An HTTP API source, configured entirely through dlt config and secrets."""
    return Source(
        name=name,
        description=description,
        kinds=frozenset({kind}),
        build=lambda settings: source(),
        preflight=lambda settings: None,
        enabled=lambda settings: token_configured(name),
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
            preflight=lambda settings: _require_order_history_folder(settings.order_history_url),
        ),
        _landing_stream(
            "events",
            "App and web events: Segment batches in the landing zone.",
            "segment",
            events_source,
        ),
        _landing_stream(
            "messaging",
            "Email and SMS delivery events: the provider's webhooks, landed.",
            "customerio",
            messaging_source,
        ),
        _landing_stream(
            "telemetry",
            "App API-call records from the gateway, landed hourly.",
            "json",
            telemetry_source,
        ),
        _http_api(
            "ga4",
            "Google Analytics 4: the property's daily traffic report (Data API).",
            "googleanalytics",
            ga4_source,
        ),
        _http_api(
            "meta_ads",
            "Instagram Ads through the Meta Marketing API: objects and insights.",
            "meta",
            meta_ads_source,
        ),
    )
}


if tuple(SOURCES) != SOURCE_NAMES:
    raise ImportError(
        f"ingestion.SOURCE_NAMES {SOURCE_NAMES} and the registry's sources {tuple(SOURCES)} "
        "differ: list a new source in both."
    )


def active_sources(settings: Settings) -> list[Source]:
    return [source for source in SOURCES.values() if source.enabled(settings)]


def get_source(name: str) -> Source:
    try:
        return SOURCES[name]
    except KeyError:
        raise KeyError(f"Unknown source {name!r}; known: {', '.join(SOURCES)}") from None
