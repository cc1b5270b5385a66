"""One `regulars materialize` at a time: a file lock in the state folder that names its holder.

Dagster's `max_concurrent_runs` is a queue for runs the daemon launches; runs executed in this
process (`execute_in_process`) never queue, so two commands started at once would both write the
warehouse. The lock is `flock` on `var/materialize.lock`: the kernel releases it when its holder
dies, even by SIGKILL, so a crash never leaves it taken. The file also says who holds it (pid,
since when, the command line), for the message the next command prints.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

# How often a waiting command tries the lock again.
POLL_SECONDS = 0.5


@dataclass(frozen=True)
class Holder:
    """Who holds the lock, as the holder wrote it."""

    pid: int | None
    since: str | None
    command: str | None

    def describe(self) -> str:
        if self.pid is None:
            return "a process that has not said who it is yet"
        return f"pid {self.pid}, since {self.since}: {self.command}"


class LockHeld(RuntimeError):
    """Another process holds the lock; the message names it and says what to do."""

    def __init__(self, path: Path, holder: Holder, waited: float) -> None:
        self.path = path
        self.holder = holder
        waited_text = f" after waiting {waited:.0f}s" if waited else ""
        super().__init__(
            f"Another `regulars materialize` is running ({holder.describe()}){waited_text}. "
            "Let it finish, or wait for it: regulars materialize --wait SECONDS."
        )


def read_holder(path: Path) -> Holder:
    try:
        written = json.loads(path.read_text() or "{}")
    except (FileNotFoundError, json.JSONDecodeError):
        written = {}
    return Holder(written.get("pid"), written.get("since"), written.get("command"))


@contextlib.contextmanager
def exclusive(
    path: Path, wait_seconds: float = 0.0, on_wait: Callable[[Holder], None] | None = None
) -> Iterator[Holder]:
    """Hold the lock at `path` for the block, waiting up to `wait_seconds` for it.

    `on_wait` is told who holds it when the wait begins. Raises `LockHeld` when another process
    still has it after the wait. Yields what was written as this holder.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        deadline = time.monotonic() + wait_seconds
        told = on_wait is None
        while True:
            try:
                fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise LockHeld(path, read_holder(path), wait_seconds) from None
                if not told:
                    on_wait(read_holder(path))
                    told = True
                time.sleep(min(POLL_SECONDS, left))
        holder = Holder(
            pid=os.getpid(),
            since=datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S UTC"),
            command=" ".join([Path(sys.argv[0]).name, *sys.argv[1:]]),
        )
        # The file is never deleted: a waiter may already have it open, and a new file at the
        # same path would be a second lock.
        os.ftruncate(descriptor, 0)
        os.pwrite(descriptor, json.dumps(holder.__dict__).encode(), 0)
        yield holder
    finally:
        os.close(descriptor)  # releases the flock, as the kernel does if this process dies
