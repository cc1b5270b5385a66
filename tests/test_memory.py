"""Memory a step freed goes back to the system before the next step (orchestration.memory)."""

from __future__ import annotations

import pyarrow as pa

from orchestration.memory import release_freed_memory


def resident_mib() -> float:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * 4096 / 2**20


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
