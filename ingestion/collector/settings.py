"""The collector's limits, defaults and configuration (dlt config and secrets, never the repo).

Everything but the write keys is a dlt config value under `collector.` (`.dlt/config.toml`
`[collector]`, or an environment variable such as `COLLECTOR__PORT=8088`); the write keys are a
dlt secret, a table of source name to the key's hash, `sha256:<hex>` (`.dlt/secrets.toml`
`[collector.write_keys]`, or `COLLECTOR__WRITE_KEYS='{"web": "sha256:..."}'`): the collector
never needs the keys themselves, so its config and settings hold only their hashes. With no
keys configured it makes dev-only keys for the four demo sources and keeps them in the state dir
(git-ignored), loopback only.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import json
import os
import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from regulars.privacy import suppression
from regulars.settings import Settings

# The Segment HTTP Tracking API's limits: 32 KB per event (and per single-event request),
# 500 KB per batch request. They are the spec's, so not configurable: SDKs size batches by them.
EVENT_MAX_BYTES = 32 * 1024
BATCH_MAX_BYTES = 500 * 1024

STREAM = "events"  # the landing stream the events pipeline reads
FAILED_STREAM = "_failed"  # events the collector could not accept, with the reason
DEMO_SOURCES = ("app-ios", "app-android", "web", "server")
KEY_HASH_PREFIX = "sha256:"
KEY_HASH = re.compile(r"sha256:[0-9a-f]{64}")

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
    write_keys: Mapping[str, str]  # source name -> `sha256:<hex>` of its write key
    host: str = DEFAULT_HOST
    port: int = DEFAULT_PORT
    rotate_bytes: int = DEFAULT_ROTATE_BYTES
    rotate_seconds: float = DEFAULT_ROTATE_SECONDS
    rate_limit_per_second: float = DEFAULT_RATE_LIMIT_PER_SECOND
    rate_limit_burst: int = DEFAULT_RATE_LIMIT_BURST
    cors_origins: tuple[str, ...] = ("*",)
    dev_keys_file: Path | None = None  # set when the keys are the generated dev-only ones
    # `regulars forget`'s hash list: events of suppressed guests are not stored (None: none are).
    suppression_file: Path | None = None
    key_digests: tuple[tuple[str, bytes], ...] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        if not self.write_keys:
            raise ValueError("collector.write_keys is empty: give each source a write key.")
        digests: dict[bytes, str] = {}
        for source, stored in self.write_keys.items():
            # The value is never quoted back: if it is a key after all, it stays out of logs.
            stored = stored.strip().lower() if isinstance(stored, str) else ""
            if not KEY_HASH.fullmatch(stored):
                raise ValueError(
                    f"collector.write_keys: the value for source {source!r} is not a key hash. "
                    f"Store {KEY_HASH_PREFIX!r} followed by the SHA-256 hex of the key, e.g. "
                    f'`printf %s "$KEY" | sha256sum`; never the key itself.'
                )
            digest = bytes.fromhex(stored.removeprefix(KEY_HASH_PREFIX))
            if digest in digests:
                raise ValueError(
                    f"collector.write_keys: sources {digests[digest]!r} and {source!r} share a "
                    "key; give each source its own."
                )
            digests[digest] = source
        object.__setattr__(self, "key_digests", tuple((s, d) for d, s in digests.items()))

    def source_for(self, key: str) -> str | None:
        """The source whose write key this is, or None.

        Compares the key's SHA-256 with every source's in constant time and without stopping at
        a match, so the answer's timing says nothing about how close a guess came.
        """
        digest = hashlib.sha256(key.encode("utf-8", "surrogatepass")).digest()
        found = None
        for source, expected in self.key_digests:
            if hmac.compare_digest(digest, expected):
                found = source
        return found


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
                '(JSON, e.g. {"web": "sha256:<SHA-256 hex of the key>"}).'
            )
        dev_keys_file = settings.state_dir / "collector" / "dev_write_keys.json"
        # Dev only: the keys are in that file for the developer to use; the app keeps the hashes.
        dev_keys = dev_write_keys(dev_keys_file)
        keys = {source: hash_write_key(key) for source, key in dev_keys.items()}
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
        suppression_file=suppression.hash_list_path(settings),
    )


def hash_write_key(key: str) -> str:
    """What `collector.write_keys` stores for a key: `sha256:` and the key's SHA-256 hex."""
    return KEY_HASH_PREFIX + hashlib.sha256(key.encode("utf-8")).hexdigest()


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
