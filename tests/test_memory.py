"""Memory a step freed goes back to the system before the next step (orchestration.memory)."""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from orchestration.memory import release_freed_memory, resident_bytes


def resident_mib() -> float:
    resident = resident_bytes()
    assert resident is not None, "this test reads the resident size from /proc (Linux)"
    return resident / 2**20


def test_what_a_step_freed_leaves_the_process():
    # What a gate part holds: Arrow strings, then the same as pandas objects. Freed, both
    # allocators keep the pages for reuse until asked; the run's next step would start with them.
    release_freed_memory()
    before = resident_mib()
    table = pa.table({"message_id": [f"message-{number:012d}" for number in range(4_000_000)]})
    frame = table.to_pandas()
    held = resident_mib() - before
    del table, frame
    kept = resident_mib() - before

    release_freed_memory()

    released = kept - (resident_mib() - before)
    # A pytest worker that ran other tests reuses pages it already had: less shows as new.
    assert held > 64, f"the test allocated only {held:.0f} MiB"
    assert released > held / 3, f"{released:.0f} of {kept:.0f} MiB kept went back"


def test_only_a_step_that_grew_the_process_pays_for_giving_memory_back(monkeypatch):
    from orchestration import memory

    releases: list[str] = []
    monkeypatch.setattr(memory, "release_freed_memory", lambda: releases.append("released"))

    with memory.memory_given_back():
        rows = [f"row-{number}" for number in range(1_000)]
    assert rows and releases == []

    with memory.memory_given_back():
        # Held to the end of the step, as a landing's Arrow tables are: every page written.
        held = np.ones(memory.WORTH_RELEASING // 8 + 2**20, dtype=np.int64)
    del held
    assert releases == ["released"]
