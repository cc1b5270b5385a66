"""Helpers for the CRM-operations channel tests (messaging, telemetry, feedback)."""

from __future__ import annotations

import gzip
import json
from datetime import date, timedelta
from pathlib import Path

from simulator import WorldConfig
from simulator.model.clock import end_of_day_us
from simulator.model.timeline import Timeline, simulate
from simulator.world import emit_ops as emit

# About 800 guests over 60 days: enough campaign sends to see every kind of webhook event.
OPS_WORLD = WorldConfig(seed=11, customers=800, days=60, acquisition_days=60)


def as_of(config: WorldConfig, extra_days: int = 0) -> date:
    return config.first_as_of + timedelta(days=extra_days)


def emit_world(config: WorldConfig, out_dir: Path) -> tuple[Timeline, dict]:
    """A fresh build of the ops streams as of the config's first as-of date."""
    tl = simulate(config, config.first_as_of)
    return tl, emit(tl, out_dir, None, end_of_day_us(config.first_as_of))


def stream_files(out_dir: Path, stream: str) -> dict[str, bytes]:
    """Every file of a landing stream, by path relative to out_dir."""
    root = out_dir / "landing" / stream
    return {
        str(p.relative_to(out_dir)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()
    }


def stream_lines(out_dir: Path, stream: str) -> list[tuple[Path, dict, str]]:
    """(file, parsed object, raw line) for every line of a stream, in file then line order."""
    found = []
    for path in sorted((out_dir / "landing" / stream).rglob("*.ndjson.gz")):
        for raw in gzip.decompress(path.read_bytes()).decode().splitlines():
            found.append((path, json.loads(raw), raw))
    return found
