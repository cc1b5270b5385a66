"""One entry point for the CRM-operations channels: email/SMS webhooks (`messaging` stream),
app service telemetry (`telemetry` stream), and the truth of those and of in-app feedback.

`order_feedback_table` (re-exported) gives the ordering DB's `order_feedback` rows for snapshots.
"""

from __future__ import annotations

import gzip
import shutil
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from simulator.model.clock import DAY_US, HOUR_US, day_start_us
from simulator.model.feedback import feedback_truth, order_feedback_table
from simulator.model.messaging import (
    delivery_counts,
    guest_pieces,
    messaging_truth,
    simulate_campaigns,
    webhook_deliveries,
    webhook_lines,
)
from simulator.model.telemetry import calls_lines, day_calls, telemetry_truth

if TYPE_CHECKING:
    from simulator.model.timeline import Timeline

__all__ = ["emit", "order_feedback_table"]

STREAMS = ("messaging", "telemetry")
CHUNK_DAYS = 7  # telemetry is generated and written a week at a time
GZIP_LEVEL = 1  # fast; files are rewritten byte for byte the same anyway


def hour_file(out_dir: Path, stream: str, hour: int) -> Path:
    """landing/<stream>/date=YYYY-MM-DD/hour=HH/<stream>-YYYYMMDDTHH-0000.ndjson.gz"""
    stamp = np.datetime64(hour * HOUR_US, "us").astype("datetime64[h]").item()
    return (
        out_dir
        / "landing"
        / stream
        / f"date={stamp:%Y-%m-%d}"
        / f"hour={stamp:%H}"
        / f"{stream}-{stamp:%Y%m%dT%H}-0000.ndjson.gz"
    )


class _Files:
    """Compresses and writes hour files on worker threads (zlib releases the GIL) while the
    caller builds the next ones; at most `backlog` files wait in memory."""

    def __init__(self, out_dir: Path, backlog: int = 64):
        self.out_dir, self.backlog = out_dir, backlog
        self.pool = ThreadPoolExecutor(max_workers=2)
        self.pending: deque[Future] = deque()

    def write(self, stream: str, hour: int, body: bytes) -> None:
        while len(self.pending) >= self.backlog:
            self.pending.popleft().result()
        path = hour_file(self.out_dir, stream, hour)
        self.pending.append(self.pool.submit(_gzip_file, path, body))

    def close(self) -> None:
        try:
            while self.pending:
                self.pending.popleft().result()
        finally:
            self.pool.shutdown()


def _gzip_file(path: Path, body: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(gzip.compress(body, compresslevel=GZIP_LEVEL, mtime=0))
    tmp.replace(path)


def _write_hours(files: _Files, stream: str, arrival: np.ndarray, lines: pa.Array) -> int:
    """One gzip NDJSON file per arrival hour; `lines` are in arrival order."""
    if not arrival.size:
        return 0
    hour = arrival // HOUR_US
    starts = np.flatnonzero(np.diff(hour, prepend=hour[0] - 1))
    offsets = pa.array(np.append(starts, hour.size).astype(np.int32))
    bodies = pc.binary_join(pa.ListArray.from_arrays(offsets, lines), "\n")
    for i, first in enumerate(starts):
        files.write(stream, int(hour[first]), bodies[i].as_buffer().to_pybytes() + b"\n")
    return int(hour.size)


def _write_messaging(tl: Timeline, run, files: _Files, since_us: int | None, until_us: int) -> int:
    rows = webhook_deliveries(tl, run, since_us, until_us)
    if rows is None:
        return 0
    guests = guest_pieces(tl)
    arrival = rows["arrival_us"]
    written = 0
    # A week of arrivals at a time keeps a year of JSON text out of memory.
    week = CHUNK_DAYS * DAY_US
    for lo in range(int(arrival[0] // week), int(arrival[-1] // week) + 1):
        a, b = np.searchsorted(arrival, [lo * week, (lo + 1) * week])
        if b > a:
            part = {name: values[a:b] for name, values in rows.items()}
            lines = webhook_lines(tl, run, part, guests)
            written += _write_hours(files, "messaging", arrival[a:b], lines)
    return written


def _write_telemetry(tl: Timeline, files: _Files, since_us: int | None, until_us: int) -> int:
    first_day = day_start_us(tl.config.start_date, 0)
    last = int((until_us - first_day) // DAY_US)
    # A day's calls arrive within hours of it, so starting a day early covers every arrival.
    start = 0 if since_us is None else max(int((since_us - first_day) // DAY_US) - 1, 0)
    written = 0
    for chunk in range(start, last + 1, CHUNK_DAYS):
        end = min(chunk + CHUNK_DAYS, last + 1)
        lo_us = day_start_us(tl.config.start_date, chunk)
        hi_us = day_start_us(tl.config.start_date, end)
        parts = []
        for day in range(max(chunk - 1, 0), end):
            calls = day_calls(tl, day)
            arrival = calls["arrival_us"]
            keep = (arrival >= lo_us) & (arrival < hi_us) & (arrival <= until_us)
            if since_us is not None:
                keep &= arrival > since_us
            parts.append({name: values[keep] for name, values in calls.items()})
        calls = {name: np.concatenate([p[name] for p in parts]) for name in parts[0]}
        if calls["arrival_us"].size:
            order = np.argsort(calls["arrival_us"], kind="stable")
            calls = {name: values[order] for name, values in calls.items()}
            lines = calls_lines(tl, calls)
            written += _write_hours(files, "telemetry", calls["arrival_us"], lines)
    return written


def emit(timeline: Timeline, out_dir: Path | str, since_us: int | None, until_us: int) -> dict:
    """Write the `messaging` and `telemetry` streams for everything arriving in
    (since_us, until_us] (since_us None: a fresh build, after clearing both streams), and return
    the truth of campaigns, telemetry and feedback as of until_us (JSON-able)."""
    for bound in (since_us, until_us):
        if bound is not None and (bound + 1) % HOUR_US:
            raise ValueError(f"{bound} is not the last microsecond of an hour")
    out_dir = Path(out_dir)
    if since_us is None:
        for stream in STREAMS:
            shutil.rmtree(out_dir / "landing" / stream, ignore_errors=True)
    tl = timeline
    run = simulate_campaigns(tl.config, tl.population, tl.purchases, tl.accounts)
    files = _Files(out_dir)
    try:
        _write_messaging(tl, run, files, since_us, until_us)
        _write_telemetry(tl, files, since_us, until_us)
    finally:
        files.close()
    messaging: dict[str, Any] = messaging_truth(tl, run, until_us)
    messaging["webhooks"] = delivery_counts(tl, run, until_us)
    return {
        "messaging": messaging,
        "telemetry": telemetry_truth(tl, until_us),
        "feedback": feedback_truth(tl, until_us),
    }
