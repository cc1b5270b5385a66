"""Memory a step freed, given back to the system before the next step starts.

Every step of a run executes in one process (`execute_in_process`), and a Python process keeps
what it freed for its own reuse: after the events landing and gate of a 100,000-guest year it
held about a gigabyte more than before them, for the rest of the run, with dbt's own process
beside it. Arrow's allocator (mimalloc) and glibc's each keep freed pages until asked.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import gc
import os
from collections.abc import Iterator
from contextlib import contextmanager
from functools import cache

import pyarrow as pa


@cache
def _malloc_trim():
    """glibc's `malloc_trim`, or None where the C library has none (musl, macOS)."""
    name = ctypes.util.find_library("c")
    if name is None:
        return None
    return getattr(ctypes.CDLL(name), "malloc_trim", None)


def release_freed_memory() -> None:
    gc.collect()  # frames and tables caught in reference cycles are freed only by a collection
    pa.default_memory_pool().release_unused()
    trim = _malloc_trim()
    if trim is not None:
        trim(0)


# A step that grew the process by less leaves too little to be worth a full collection: in a
# process that has imported Dagster and dbt one takes about a quarter of a second, and a run of
# every source has fourteen landing and gate steps (3.8 s of a 59 s run at 300 guests).
WORTH_RELEASING = 256 * 2**20


def resident_bytes() -> int | None:
    """The process's resident memory now, where the system says it cheaply (Linux)."""
    try:
        with open("/proc/self/statm") as statm:
            return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError):
        return None


@contextmanager
def memory_given_back() -> Iterator[None]:
    """Around a step: what it freed goes back when it grew the process by `WORTH_RELEASING` or
    more (always, where the resident size cannot be read)."""
    before = resident_bytes()
    try:
        yield
    finally:
        after = resident_bytes()
        if before is None or after is None or after - before >= WORTH_RELEASING:
            release_freed_memory()
