"""What Regulars needs to know of a source besides its dlt code: how to build it for a chain,
what the chain has not set up for it, and where a person fixes it when it cannot be reached.

Each source's folder declares its own `SOURCE` with these; `ingestion.registry` finds them by
the names in `ingestion.SOURCE_NAMES`.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import dlt
from dlt.sources import DltSource

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


class SourceConfigError(ValueError):
    """A source's settings cannot work as written; the message names the key and what to write.
    Raised while the source is built, before anything is read: commands print it as it is."""


def folder_present(url: str) -> bool:
    return "://" in url or Path(url).is_dir()


def resolvable(key: str) -> bool:
    """Whether a dlt config or secret value is set (environment, config.toml or secrets.toml)."""
    env_name = key.upper().replace(".", "__")
    return bool(os.environ.get(env_name) or dlt.config.get(key) or dlt.secrets.get(key))


def token_configured(source_name: str) -> bool:
    """Whether an access token for an API source is resolvable (environment or secrets.toml)."""
    return resolvable(f"sources.{source_name}.access_token")


def landing_stream(
    name: str, description: str, kind: str, source: Callable[..., DltSource]
) -> Source:
    """A stream of the landing zone: present when its folder is (or the zone is a bucket)."""

    def missing(settings: Settings) -> str | None:
        folder = f"{settings.landing_url}/{name}"
        if folder_present(folder):
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


def http_api(
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
        unset = [key for key in required if not resolvable(f"sources.{name}.{key}")]
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
