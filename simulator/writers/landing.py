"""Landing-zone files of the streams written as gzip NDJSON by arrival hour.

landing/<stream>/date=YYYY-MM-DD/hour=HH/<stream>-YYYYMMDDTHH-0000.ndjson.gz, each written once,
complete, so a build and N advances leave the same bytes as one longer build.
"""

from __future__ import annotations

import gzip
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from simulator.model.clock import HOUR_US

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


class HourFiles:
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


def write_hours(files: HourFiles, stream: str, arrival: np.ndarray, lines: pa.Array) -> int:
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
