"""The durable append-only spool, and its publication into the landing zone.

A request is acknowledged only once its lines are on disk: written to a spool file opened with
O_DSYNC (each write returns once its data is durable, as write + fdatasync would). One writer
thread does every write: while it waits for the disk, new requests queue up, and the next round
writes them all in one synced write (group commit), so the cost of a sync is shared by every
request that arrived during the previous one without weakening the guarantee.

Spool files live in the spool dir (outside every stream's glob), one per (stream, arrival hour),
named after the landing file they will become. A spool is closed when it reaches the size or age
limit (or at shutdown) and published: gzip-compressed to `.<name>.part` next to its target,
synced, then renamed to `<stream>/date=YYYY-MM-DD/hour=HH/<stream>-YYYYMMDDTHH-NNNN.ndjson.gz`,
so a reader never sees a partial file. Only then is the spool deleted; a spool whose target
already exists was published before a crash and is just deleted.

At start-up, spools left by a crash are recovered: their complete lines are published; a torn
last line (the write in progress when the process died, never acknowledged) goes to the
`_failed` stream with its reason.
"""

from __future__ import annotations

import asyncio
import fcntl
import gzip
import logging
import os
import queue
import re
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import fsspec

from ingestion.collector.messages import failed_record, iso_ms, now_ms
from ingestion.collector.metrics import CollectorMetrics
from ingestion.collector.settings import FAILED_STREAM, GZIP_LEVEL

log = logging.getLogger("regulars.collector")

HOUR_MS = 3_600_000
SPOOL_NAME = re.compile(r"^(?P<stream>.+)-(?P<stamp>\d{8}T\d{2})-(?P<seq>\d{4,})\.ndjson$")
COPY_CHUNK = 1 << 20
TICK_SECONDS = 0.25  # how often an idle writer looks for spools old enough to rotate
_STOP = object()

# (stream, arrival hour as hours since the epoch, NDJSON lines, number of lines)
Chunk = tuple[str, int, bytes, int]


class WriterClosed(RuntimeError):
    """The writer is shutting down or broken: the request was not stored."""


def landing_name(stream: str, hour: int, seq: int) -> str:
    """`<stream>/date=YYYY-MM-DD/hour=HH/<stream>-YYYYMMDDTHH-NNNN.ndjson.gz`, as the simulator."""
    stamp = datetime.fromtimestamp(hour * 3600, UTC)
    return (
        f"{stream}/date={stamp:%Y-%m-%d}/hour={stamp:%H}/"
        f"{stream}-{stamp:%Y%m%dT%H}-{seq:04d}.ndjson.gz"
    )


def spool_name(stream: str, hour: int, seq: int) -> str:
    stamp = datetime.fromtimestamp(hour * 3600, UTC)
    return f"{stream}-{stamp:%Y%m%dT%H}-{seq:04d}.ndjson"


def parse_spool_name(name: str) -> tuple[str, int, int] | None:
    """(stream, hour, seq) of a spool file's name, or None for anything else."""
    match = SPOOL_NAME.match(name)
    if not match:
        return None
    stamp = datetime.strptime(match["stamp"], "%Y%m%dT%H").replace(tzinfo=UTC)
    return match["stream"], int(stamp.timestamp()) // 3600, int(match["seq"])


@dataclass(eq=False)
class _Spool:
    stream: str
    hour: int
    seq: int
    path: Path
    fd: int
    opened: float = field(default_factory=time.monotonic)
    size: int = 0  # bytes written and synced


@dataclass(eq=False)
class _Pending:
    chunks: Sequence[Chunk]
    future: asyncio.Future | None
    loop: asyncio.AbstractEventLoop | None


class Landing:
    """The landing zone: a local folder (atomic rename) or any fsspec URL (whole-object put)."""

    def __init__(self, url: str):
        self.url = url.rstrip("/")
        self.fs, self.root = fsspec.core.url_to_fs(self.url)
        self.local = "file" in (
            self.fs.protocol if isinstance(self.fs.protocol, tuple) else (self.fs.protocol,)
        )

    def highest_seq(self, stream: str, hour: int) -> int:
        """The highest NNNN already used in the hour's folder, -1 if none."""
        folder = f"{self.root}/{landing_name(stream, hour, 0).rsplit('/', 1)[0]}"
        prefix = landing_name(stream, hour, 0).rsplit("/", 1)[1][: -len("0000.ndjson.gz")]
        try:
            names = [p.rsplit("/", 1)[-1] for p in self.fs.ls(folder, detail=False)]
        except FileNotFoundError:
            return -1
        seqs = [
            int(name[len(prefix) : -len(".ndjson.gz")])
            for name in names
            if name.startswith(prefix)
            and name.endswith(".ndjson.gz")
            and name[len(prefix) : -len(".ndjson.gz")].isdigit()
        ]
        return max(seqs, default=-1)

    def publish(self, relative: str, spool: Path) -> int | None:
        """Compress the spool into place; the number of lines, None if it was already there."""
        target = f"{self.root}/{relative}"
        if self.fs.exists(target):
            return None
        if not self.local:
            data = spool.read_bytes()
            self.fs.pipe_file(target, gzip.compress(data, GZIP_LEVEL, mtime=0))
            return data.count(b"\n")
        final = Path(target)
        final.parent.mkdir(parents=True, exist_ok=True)
        part = final.with_name(f".{final.name}.part")  # outside `*.ndjson.gz` globs
        lines = 0
        with open(spool, "rb") as source, open(part, "wb") as raw:
            with gzip.GzipFile(filename="", mode="wb", compresslevel=GZIP_LEVEL, fileobj=raw,
                               mtime=0) as packed:  # fmt: skip
                while chunk := source.read(COPY_CHUNK):
                    lines += chunk.count(b"\n")
                    packed.write(chunk)
            raw.flush()
            os.fsync(raw.fileno())
        os.rename(part, final)
        # The hour's and the day's folders may be new: their names must survive a power cut too.
        for folder in (final.parent, final.parent.parent, final.parent.parent.parent):
            _fsync_dir(folder)
        return lines


class LandingWriter:
    """Appends requests' lines durably (group commit) and publishes rotated spools."""

    def __init__(
        self,
        landing_url: str,
        spool_dir: Path,
        *,
        rotate_bytes: int,
        rotate_seconds: float,
        metrics: CollectorMetrics | None = None,
    ):
        self.landing = Landing(landing_url)
        self.spool_dir = Path(spool_dir)
        self.rotate_bytes, self.rotate_seconds = rotate_bytes, rotate_seconds
        self.metrics = metrics or CollectorMetrics()
        self.error: BaseException | None = None
        self._queue: queue.SimpleQueue = queue.SimpleQueue()
        self._to_publish: queue.SimpleQueue = queue.SimpleQueue()
        self._open: dict[tuple[str, int], _Spool] = {}
        self._next_seq: dict[tuple[str, int], int] = {}
        self._closing = False
        self._lock_fd: int | None = None
        self._writer: threading.Thread | None = None
        self._publisher: threading.Thread | None = None

    # -- lifecycle -------------------------------------------------------------------------

    def open(self) -> dict[str, int]:
        """Lock the spool dir, recover what a crash left, start the threads."""
        self.spool_dir.mkdir(parents=True, exist_ok=True)
        self._lock_fd = os.open(self.spool_dir / ".lock", os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(self._lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(self._lock_fd)
            raise RuntimeError(
                f"Another collector is using the spool dir {self.spool_dir}: one collector per "
                "spool dir (and per landing zone), or set collector.spool_dir."
            ) from None
        recovered = self._recover()
        self._writer = threading.Thread(target=self._write_loop, name="collector-writer")
        self._publisher = threading.Thread(target=self._publish_loop, name="collector-publisher")
        self._writer.start()
        self._publisher.start()
        return recovered

    def close(self) -> None:
        """Stop taking requests, publish every open spool, stop the threads."""
        if self._writer is None:
            return
        self._closing = True
        self._queue.put(_STOP)
        self._writer.join()
        self._to_publish.put(None)
        self._publisher.join()
        self._writer = self._publisher = None
        if self._lock_fd is not None:
            os.close(self._lock_fd)  # releases the flock
            self._lock_fd = None

    @property
    def healthy(self) -> bool:
        return self.error is None and self._writer is not None and self._writer.is_alive()

    # -- the request path ------------------------------------------------------------------

    async def append(self, chunks: Sequence[Chunk]) -> None:
        """Return once every chunk is written and synced; raise WriterClosed if it cannot be."""
        if self._closing or self.error is not None:
            raise WriterClosed("the collector is shutting down or its disk failed")
        loop = asyncio.get_running_loop()
        future = loop.create_future()
        self._queue.put(_Pending(chunks, future, loop))
        await future

    # -- the writer thread -----------------------------------------------------------------

    def _write_loop(self) -> None:
        stopping = False
        while not stopping:
            try:
                group = [self._queue.get(timeout=TICK_SECONDS)]
            except queue.Empty:
                group = []
            while True:
                try:
                    group.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            if _STOP in group:
                stopping = True
                group = [item for item in group if item is not _STOP]
            if group:
                self._commit(group)
            self._rotate(force=stopping)
        # Anything that slipped in after the stop was never written: say so.
        while True:
            try:
                late = self._queue.get_nowait()
            except queue.Empty:
                break
            if late is not _STOP:
                _settle(late, WriterClosed("the collector shut down before writing this"))

    def _commit(self, group: list[_Pending]) -> None:
        started = time.perf_counter()
        touched: dict[_Spool, list[bytes]] = {}
        sizes: dict[_Spool, int] = {}
        try:
            for pending in group:
                for stream, hour, data, _ in pending.chunks:
                    touched.setdefault(self._spool(stream, hour), []).append(data)
            for spool, parts in touched.items():
                # O_DSYNC: the write returns once the data is on disk, one system call per
                # spool, where write + fdatasync would be two (each a wait for the GIL after).
                data = b"".join(parts)
                _write_all(spool.fd, data)
                sizes[spool] = spool.size + len(data)
        except Exception as error:  # OSError (disk full, I/O); anything else must not hang
            log.error("Writing the spool failed (%s); %d requests refused.", error, len(group))
            for spool in touched:
                try:  # take back a partial write, so the spool holds only acknowledged lines
                    os.ftruncate(spool.fd, spool.size)
                except OSError as truncate_error:
                    self.error = truncate_error
            for pending in group:
                _settle(pending, WriterClosed(f"the disk write failed: {error}"))
            return
        for spool, size in sizes.items():
            spool.size = size
        for pending in group:
            _settle(pending, None)
        self.metrics.commit_seconds.observe(time.perf_counter() - started)
        self.metrics.commit_requests.observe(len(group))

    def _spool(self, stream: str, hour: int) -> _Spool:
        spool = self._open.get((stream, hour))
        if spool is None:
            seq = self._allocate_seq(stream, hour)
            path = self.spool_dir / spool_name(stream, hour, seq)
            flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_APPEND | os.O_DSYNC
            fd = os.open(path, flags, 0o644)
            _fsync_dir(self.spool_dir)  # the new file's name survives a power cut, too
            spool = self._open[(stream, hour)] = _Spool(stream, hour, seq, path, fd)
            self.metrics.spool_files.inc()
        return spool

    def _allocate_seq(self, stream: str, hour: int) -> int:
        key = (stream, hour)
        if key not in self._next_seq:
            spooled = [
                parsed[2]
                for name in os.listdir(self.spool_dir)
                if (parsed := parse_spool_name(name)) and parsed[:2] == key
            ]
            highest = max([self.landing.highest_seq(stream, hour), *spooled])
            self._next_seq[key] = highest + 1
        seq = self._next_seq[key]
        self._next_seq[key] = seq + 1
        return seq

    def _rotate(self, force: bool) -> None:
        now = time.monotonic()
        for key, spool in list(self._open.items()):
            if (
                force
                or spool.size >= self.rotate_bytes
                or now - spool.opened >= self.rotate_seconds
            ):
                os.close(spool.fd)
                del self._open[key]
                self._to_publish.put(spool.path)

    # -- the publisher thread --------------------------------------------------------------

    def _publish_loop(self) -> None:
        backoff = 1.0
        while True:
            path = self._to_publish.get()
            if path is None:
                return
            while True:
                try:
                    self._publish(path)
                    backoff = 1.0
                    break
                except Exception as error:  # a bucket's client raises its own kinds
                    if self._closing:
                        log.error("Could not publish %s (%s); it stays in the spool.", path, error)
                        break
                    log.error("Could not publish %s (%s); retrying in %.0fs.", path, error, backoff)
                    time.sleep(backoff)
                    backoff = min(backoff * 2, 60.0)

    def _publish(self, path: Path) -> None:
        stream, hour, seq = parse_spool_name(path.name) or (None, 0, 0)
        if stream is None:
            return
        if path.stat().st_size:
            lines = self.landing.publish(landing_name(stream, hour, seq), path)
            if lines is not None:
                self.metrics.files_published.labels(stream).inc()
                self.metrics.lines_published.labels(stream).inc(lines)
        path.unlink()
        _fsync_dir(self.spool_dir)
        self.metrics.spool_files.dec()

    # -- recovery --------------------------------------------------------------------------

    def _recover(self) -> dict[str, int]:
        """Queue the spools a crash left for publication; torn last lines go to _failed."""
        found = sorted(
            path for path in self.spool_dir.iterdir() if parse_spool_name(path.name) is not None
        )
        recovered = {"files": 0, "lines": 0, "torn": 0}
        received_ms = now_ms()
        for path in found:
            self.metrics.spool_files.inc()
            data = path.read_bytes()
            complete = data.rfind(b"\n") + 1
            torn = data[complete:]
            if torn:
                line = failed_record(
                    "torn_line",
                    "the collector stopped while writing this line, before it acknowledged the "
                    "request the line came in, so the client was never told it was stored",
                    iso_ms(received_ms),
                    spool=path.name,
                    line=torn.decode("utf-8", "replace"),
                )
                self._commit(
                    [_Pending([(FAILED_STREAM, received_ms // HOUR_MS, line, 1)], None, None)]
                )
                with open(path, "r+b") as handle:
                    handle.truncate(complete)
                    os.fsync(handle.fileno())
                recovered["torn"] += 1
                self.metrics.lines_torn.inc()
            lines = data.count(b"\n")
            recovered["files"] += 1
            recovered["lines"] += lines
            self.metrics.lines_recovered.inc(lines)
            # The publisher thread retries while the landing zone is unreachable.
            self._to_publish.put(path)
        self._rotate(force=True)
        return recovered


def _settle(pending: _Pending, error: BaseException | None) -> None:
    if pending.future is None or pending.loop is None:
        if error is not None:
            raise error
        return
    pending.loop.call_soon_threadsafe(_set_future, pending.future, error)


def _set_future(future: asyncio.Future, error: BaseException | None) -> None:
    if future.done():
        return
    if error is None:
        future.set_result(None)
    else:
        future.set_exception(error)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
