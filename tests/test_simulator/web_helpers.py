"""Helpers for the web-channel tests: emit a world's web outputs, read them back, sessionise."""

from __future__ import annotations

import gzip
import json
import re
from collections import defaultdict
from datetime import UTC, date, datetime
from pathlib import Path

from simulator import WorldConfig
from simulator.model.clock import end_of_day_us
from simulator.model.timeline import simulate
from simulator.world import emit_web as emit

WEB_TINY = WorldConfig(seed=11, customers=150, days=60, acquisition_days=60)
ISO = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$")
SESSION_GAP_S = 30 * 60


def emit_world(
    config: WorldConfig, out: Path, as_of: date | None = None, since: date | None = None
):
    """Emit the web outputs of `config` as of `as_of` (default: its first as-of date)."""
    as_of = as_of or config.first_as_of
    tl = simulate(config, as_of)
    since_us = None if since is None else end_of_day_us(since)
    return tl, emit(tl, out, since_us, end_of_day_us(as_of))


def event_files(out: Path) -> list[Path]:
    return sorted((out / "landing" / "events").rglob("*.ndjson.gz"))


def read_events(out: Path) -> list[dict]:
    lines = []
    for path in event_files(out):
        with gzip.open(path, "rt", encoding="utf-8") as f:
            lines += [json.loads(line) for line in f]
    return lines


def dedup(events: list[dict]) -> list[dict]:
    seen, out = set(), []
    for e in events:
        if e["messageId"] not in seen:
            seen.add(e["messageId"])
            out.append(e)
    return out


def parse_ts(text: str) -> float:
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC).timestamp()


def sessionise(events: list[dict]) -> dict[str, list[list[dict]]]:
    """Sessions per anonymousId: events sorted by timestamp, a new session after 30 minutes."""
    by_anon = defaultdict(list)
    for e in events:
        by_anon[e["anonymousId"]].append(e)
    sessions = {}
    for anon, evs in by_anon.items():
        evs.sort(key=lambda e: (e["timestamp"], e["messageId"]))
        out, last = [], None
        for e in evs:
            t = parse_ts(e["timestamp"])
            if last is None or t - last > SESSION_GAP_S:
                out.append([])
            out[-1].append(e)
            last = t
        sessions[anon] = out
    return sessions
