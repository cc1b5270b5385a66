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
