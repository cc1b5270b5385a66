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
from ingestion.ga4.settings import DEFAULT_BASE_URL as GA4_BASE_URL
from ingestion.messaging import messaging_source
from ingestion.meta_ads import meta_ads_source
from ingestion.order_history import order_history_source
from ingestion.ordering import ordering_source
from ingestion.ordering.helpers import missing_database
from ingestion.telemetry import telemetry_source
from regulars.apis.meta_graph import DEFAULT_BASE_URL as META_BASE_URL
from regulars.privacy.extract import without_suppressed
from regulars.settings import Settings


@dataclass(frozen=True)
class Source:
    name: str
    description: str
    kinds: frozenset[str]
    build: Callable[[Settings], DltSource]
    # What this chain has not set up for the source, in a line that says what to set; None when
    # it is configured. A chain has the channels it has: an unconfigured source stays in the
    # graph and is skipped at run time with this line, never an error.
    missing: Callable[[Settings], str | None]
    # The settings that say where the source is, and who Regulars is to it, as a person sets
    # them: what a load that cannot reach the source, or is refused by it, says to check.
    address: str | None = None
    credentials: str | None = None

    def __post_init__(self) -> None:
        # Every source however it is built (the CLI, Dagster, a runner) drops suppressed guests
        # as it is extracted, so a forgotten guest is never written to disk again.
        build = self.build

        def build_without_suppressed(settings: Settings) -> DltSource:
            return without_suppressed(build(settings), settings)

        object.__setattr__(self, "build", build_without_suppressed)

    def __str__(self) -> str:
        return self.name

    def require(self, settings: Settings) -> None:
        """Stop with the missing line, for commands that load this one source."""
        missing = self.missing(settings)
        if missing:
            raise SourceNotConfigured(f"{self.name} is not configured here. {missing}")


class SourceNotConfigured(RuntimeError):
    pass


ORDERING_URL_SETTING = (
    "sources.ordering.credentials (.dlt/secrets.toml or SOURCES__ORDERING__CREDENTIALS), the "
    "database URL"
)


def _folder_present(url: str) -> bool:
    return "://" in url or Path(url).is_dir()


def _missing_order_history(settings: Settings) -> str | None:
    url = settings.order_history_url
    if _folder_present(url):
        return None
    return (
        f"No order-history folder at {url}: set sources.order_history.bucket_url "
        "(.dlt/config.toml) or SOURCES__ORDER_HISTORY__BUCKET_URL to where the files are, or "
        "build the demo world with `regulars simulate build`."
    )


def _resolvable(key: str) -> bool:
    """Whether a dlt config or secret value is set (environment, config.toml or secrets.toml)."""
    env_name = key.upper().replace(".", "__")
    return bool(os.environ.get(env_name) or dlt.config.get(key) or dlt.secrets.get(key))


def token_configured(source_name: str) -> bool:
    """Whether an access token for an API source is resolvable (environment or secrets.toml)."""
    return _resolvable(f"sources.{source_name}.access_token")


def _landing_stream(
    name: str, description: str, kind: str, source: Callable[..., DltSource]
) -> Source:
    """A stream of the landing zone: present when its folder is (or the zone is a bucket)."""

    def missing(settings: Settings) -> str | None:
        folder = f"{settings.landing_url}/{name}"
        if _folder_present(folder):
            return None
        return (
            f"No {name} stream at {folder}: set REGULARS_LANDING_URL to the landing zone the "
            "chain's systems (and the collector) write to, or build the demo world with "
            "`regulars simulate build`."
        )

    return Source(
        name=name,
        description=description,
        kinds=frozenset({kind}),
        build=lambda settings: source(bucket_url=settings.landing_url),
        missing=missing,
        address="REGULARS_LANDING_URL (the landing zone)",
    )


def _http_api(
    name: str,
    description: str,
    kind: str,
    source: Callable[..., DltSource],
    account_key: str,
    base_url: str,
) -> Source:
    """An HTTP API source, configured entirely through dlt config and secrets."""
    required = (account_key, "access_token", "start_date")

    def missing(settings: Settings) -> str | None:
        unset = [key for key in required if not _resolvable(f"sources.{name}.{key}")]
        if not unset:
            return None
        return (
            "Set "
            + ", ".join(f"sources.{name}.{key}" for key in unset)
            + " (.dlt/config.toml, the token in .dlt/secrets.toml, or "
            + ", ".join(f"SOURCES__{name.upper()}__{key.upper()}" for key in unset)
            + f"); ingestion/{name}/README.md lists the rest."
        )

    def build(settings: Settings) -> DltSource:
        if missing(settings):
            # The graph needs the source's resources, whose names and hints do not depend on
            # the account; these stand-ins never reach a request (the run skips the source).
            stand_ins = dict.fromkeys((account_key, "access_token"), "not-configured")
            return source(**stand_ins, start_date="2000-01-01")
        return source()

    upper = name.upper()
    return Source(
        name=name,
        description=description,
        kinds=frozenset({kind}),
        build=build,
        missing=missing,
        address=f"sources.{name}.base_url (SOURCES__{upper}__BASE_URL; unset, {base_url})",
        credentials=(
            f"sources.{name}.access_token (.dlt/secrets.toml or SOURCES__{upper}__ACCESS_TOKEN) "
            f"and sources.{name}.{account_key} (SOURCES__{upper}__{account_key.upper()})"
        ),
    )


SOURCES: dict[str, Source] = {
    source.name: source
    for source in (
        Source(
            name="ordering",
            description="The chain's ordering-platform database (SQLite demo or PostgreSQL).",
            kinds=frozenset({"sql"}),
            build=lambda settings: ordering_source(credentials=settings.ordering_db_url),
            missing=lambda settings: missing_database(settings.ordering_db_url),
            address=ORDERING_URL_SETTING,
            credentials=ORDERING_URL_SETTING,
        ),
        Source(
            name="order_history",
            description="Order-history files from an earlier system (the old POS export).",
            kinds=frozenset({"csv"}),
            build=lambda settings: order_history_source(bucket_url=settings.order_history_url),
            missing=_missing_order_history,
            address="sources.order_history.bucket_url (SOURCES__ORDER_HISTORY__BUCKET_URL)",
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
            account_key="property_id",  # pragma: allowlist secret
            base_url=GA4_BASE_URL,
        ),
        _http_api(
            "meta_ads",
            "Instagram Ads through the Meta Marketing API: objects and insights.",
            "meta",
            meta_ads_source,
            account_key="ad_account_id",  # pragma: allowlist secret
            base_url=META_BASE_URL,
        ),
    )
}


if tuple(SOURCES) != SOURCE_NAMES:
    raise ImportError(
        f"ingestion.SOURCE_NAMES {SOURCE_NAMES} and the registry's sources {tuple(SOURCES)} "
        "differ: list a new source in both."
    )


def configured_sources(settings: Settings) -> list[Source]:
    return [source for source in SOURCES.values() if not source.missing(settings)]


def get_source(name: str) -> Source:
    try:
        return SOURCES[name]
    except KeyError:
        raise KeyError(f"Unknown source {name!r}; known: {', '.join(SOURCES)}") from None
