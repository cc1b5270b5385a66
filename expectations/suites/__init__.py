"""One module per source; each exposes `table_suites()`: lake table -> TableSuite."""

from __future__ import annotations

import math
import statistics
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Protocol

import pandas as pd
from great_expectations.expectations.expectation import Expectation


class LandedTables(Protocol):
    """Read access to the other tables of the batch's landing dataset, for rules that span tables.

    Landing tables hold every row the source sent, valid or not; on the filesystem destination
    they hold every version of it, so a reader keeps the newest per key itself.
    """

    def read(
        self, table_name: str, columns: Sequence[str], column: str, values: Sequence
    ) -> pd.DataFrame:
        """`columns` of the rows of `table_name` whose `column` is one of `values`, with
        `_dlt_load_id` (empty, with those columns, when the table has not landed)."""
        ...


def landed_hour(load_id: str) -> int:
    """The hour of day (UTC) a batch landed: a dlt load id is the load's Unix time."""
    return datetime.fromtimestamp(float(load_id), UTC).hour


@dataclass(frozen=True)
class VolumeRule:
    """Hold a batch whose row count collapsed against the table's recent promoted batches.

    A batch needs at least `min_share` of the median row count of the last `history` batches of
    its table that the gate promoted and that landed at the same hour of day, once there are
    `min_history` of them. The same hour, because a restaurant chain's hourly streams sleep at
    night: 03:00 is compared with earlier 03:00s, and a daily load with earlier daily loads.
    It only makes sense where batches are comparable (a stream loaded on a schedule, a report
    re-pulled over a fixed window); tables where tiny batches are normal (incremental updates,
    one-off imports) have none.
    """

    min_share: float = 0.1
    history: int = 14
    min_history: int = 7

    def min_rows(self, previous_batches: Sequence[tuple[str, int]], load_id: str) -> int:
        """The fewest rows batch `load_id` may have, given earlier (load id, rows), oldest first."""
        hour = landed_hour(load_id)
        same_hour = [rows for batch, rows in previous_batches if landed_hour(batch) == hour]
        recent = same_hour[-self.history :]
        if len(recent) < self.min_history:
            return 0
        return math.ceil(self.min_share * statistics.median(recent))


def _unchanged(frame: pd.DataFrame) -> pd.DataFrame:
    return frame


@dataclass(frozen=True)
class TableSuite:
    """The expectations for one lake table.

    `derive` adds computed columns (an arithmetic mismatch, say) so that rules GX cannot state
    on raw columns over pandas become ordinary column expectations on the derived column;
    `derive_across` does the same with other tables of the same landing dataset (an order's items).
    """

    table_name: str
    primary_key: str
    required_columns: Sequence[str]
    expectations: Sequence[Expectation]
    derive: Callable[[pd.DataFrame], pd.DataFrame] = field(default=_unchanged)
    derive_across: Callable[[pd.DataFrame, LandedTables], pd.DataFrame] | None = None
    volume: VolumeRule | None = None

    @property
    def suite_name(self) -> str:
        return f"lake_{self.table_name}"
