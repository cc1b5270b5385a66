"""The collector's limits, defaults and configuration (dlt config and secrets, never the repo).

Everything but the write keys is a dlt config value under `collector.` (`.dlt/config.toml`
`[collector]`, or an environment variable such as `COLLECTOR__PORT=8088`); the write keys are a
dlt secret, a table of source name to key (`.dlt/secrets.toml` `[collector.write_keys]`, or
`COLLECTOR__WRITE_KEYS='{"web": "..."}'`). With no keys configured the collector makes dev-only
keys for the four demo sources and keeps them in the state dir (git-ignored), loopback only.
"""

from __future__ import annotations

import ipaddress
import json
import os
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from regulars.settings import Settings

# The Segment HTTP Tracking API's limits: 32 KB per event (and per single-event request),
# 500 KB per batch request. They are the spec's, so not configurable: SDKs size batches by them.
EVENT_MAX_BYTES = 32 * 1024
BATCH_MAX_BYTES = 500 * 1024

STREAM = "events"  # the landing stream the events pipeline reads
FAILED_STREAM = "_failed"  # events the collector could not accept, with the reason
DEMO_SOURCES = ("app-ios", "app-android", "web", "server")

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8088
# Size and age at which a spool file is closed and published; the Dagster sensor looks every
# 60 s, so a minute's delay is within what the events job sees anyway.
DEFAULT_ROTATE_BYTES = 64 * 1024 * 1024
DEFAULT_ROTATE_SECONDS = 60.0
# Requests per second per write key, with a burst allowance: protects the other sources from one
# misbehaving client (an app release that loops), far above what an SDK's batching sends.
DEFAULT_RATE_LIMIT_PER_SECOND = 2000.0
DEFAULT_RATE_LIMIT_BURST = 4000
# The simulator's level: landing files are written once and read a few times.
GZIP_LEVEL = 1


@dataclass(frozen=True)
class CollectorSettings:
    landing_url: str
    spool_dir: Path
    write_keys: Mapping[str, str]  # source name -> write key
    host: str = DEFAULT_HOST
    port: int = DEFAULT_PORT
    rotate_bytes: int = DEFAULT_ROTATE_BYTES
    rotate_seconds: float = DEFAULT_ROTATE_SECONDS
    rate_limit_per_second: float = DEFAULT_RATE_LIMIT_PER_SECOND
    rate_limit_burst: int = DEFAULT_RATE_LIMIT_BURST
    cors_origins: tuple[str, ...] = ("*",)
    dev_keys_file: Path | None = None  # set when the keys are the generated dev-only ones
    sources_by_key: Mapping[str, str] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        if not self.write_keys:
            raise ValueError("collector.write_keys is empty: give each source a write key.")
        by_key: dict[str, str] = {}
        for source, key in self.write_keys.items():
            if not key or key in by_key:
                raise ValueError(
                    f"collector.write_keys: source {source!r} needs its own non-empty key."
                )
            by_key[key] = source
        object.__setattr__(self, "sources_by_key", by_key)


def load_collector_settings(settings: Settings, **overrides) -> CollectorSettings:
    """Read `collector.*` from dlt's config providers; `overrides` (the CLI's options) win."""
    import dlt

    def config(name: str, kind: type, default):
        value = overrides.get(name)
        if value is None:
            value = dlt.config.get(f"collector.{name}", kind)
        return default if value is None else kind(value)

    host = config("host", str, DEFAULT_HOST)
    spool_dir = Path(config("spool_dir", str, str(settings.state_dir / "collector" / "spool")))
    keys = dlt.secrets.get("collector.write_keys", dict)
    dev_keys_file = None
    if not keys:
        if not _is_loopback(host):
            raise ValueError(
                f"The collector binds {host}, not loopback, and has no write keys: set "
                "[collector.write_keys] in .dlt/secrets.toml or COLLECTOR__WRITE_KEYS "
                '(JSON, e.g. {"web": "<key>"}).'
            )
        dev_keys_file = settings.state_dir / "collector" / "dev_write_keys.json"
        keys = dev_write_keys(dev_keys_file)
    origins = config("cors_origins", str, "*")
    return CollectorSettings(
        landing_url=settings.landing_url,
        spool_dir=spool_dir,
        write_keys={str(source): str(key) for source, key in keys.items()},
        host=host,
        port=config("port", int, DEFAULT_PORT),
        rotate_bytes=config("rotate_bytes", int, DEFAULT_ROTATE_BYTES),
        rotate_seconds=config("rotate_seconds", float, DEFAULT_ROTATE_SECONDS),
        rate_limit_per_second=config("rate_limit_per_second", float, DEFAULT_RATE_LIMIT_PER_SECOND),
        rate_limit_burst=config("rate_limit_burst", int, DEFAULT_RATE_LIMIT_BURST),
        cors_origins=tuple(origin.strip() for origin in origins.split(",") if origin.strip()),
        dev_keys_file=dev_keys_file,
    )


def dev_write_keys(path: Path) -> dict[str, str]:
    """Random keys for the demo sources, made once and kept (owner-only) in the state dir.

    Dev only: they exist so `make collector` works on a fresh checkout; production sets
    `collector.write_keys` as a secret.
    """
    if path.exists():
        return json.loads(path.read_text())
    path.parent.mkdir(parents=True, exist_ok=True)
    keys = {source: f"dev-{source}-{secrets.token_urlsafe(18)}" for source in DEMO_SOURCES}
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w") as handle:
        json.dump(keys, handle, indent=2)
    return keys


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
