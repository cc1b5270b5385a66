"""One module per source; each exposes `table_suites()`: lake table -> TableSuite."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import pandas as pd
from great_expectations.expectations.expectation import Expectation


@dataclass(frozen=True)
class TableSuite:
    """The expectations for one lake table.

    `derive` adds computed columns (an arithmetic mismatch, say) so that rules GX cannot state
    on raw columns over pandas become ordinary column expectations on the derived column.
    """

    table_name: str
    primary_key: str
    required_columns: Sequence[str]
    expectations: Sequence[Expectation]
    derive: Callable[[pd.DataFrame], pd.DataFrame] = field(default=lambda frame: frame)

    @property
    def suite_name(self) -> str:
        return f"lake_{self.table_name}"
