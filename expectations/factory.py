"""One small factory that wires a GX suite to a DataFrame and says which rows failed why.

Row-level expectations (column map expectations: they report the failing rows) send those rows to
quarantine; any other failed expectation (table shape, row count) fails the whole batch.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cache

import great_expectations as gx
import pandas as pd
from great_expectations.data_context.types.base import ProgressBarsConfig
from great_expectations.expectations.expectation import Expectation

# GX reports failing rows by the values of these columns. A row number rather than the primary
# key: the key itself may be null or duplicated in exactly the rows we need to find.
ROW_NUMBER = "_gate_row_number"


@dataclass(frozen=True)
class BatchVerdict:
    """What one suite said of one batch."""

    suite_name: str
    row_failures: dict[int, list[str]] = field(default_factory=dict)  # row number -> reasons
    batch_failures: list[str] = field(default_factory=list)
    statistics: dict[str, int] = field(default_factory=dict)

    @property
    def batch_passed(self) -> bool:
        return not self.batch_failures


def describe(expectation_config) -> str:
    """A reason a person can read: the expectation's name and the arguments that matter."""
    kwargs = {
        key: value
        for key, value in expectation_config.kwargs.items()
        if key not in {"batch_id", "result_format"} and value is not None
    }
    arguments = ", ".join(f"{key}={value}" for key, value in sorted(kwargs.items()))
    return f"{expectation_config.type}({arguments})"


@cache
def _context():
    # Validation must not write to the home directory or depend on a GX project folder.
    logging.getLogger("great_expectations").setLevel(logging.WARNING)
    context = gx.get_context(mode="ephemeral")
    # One progress bar per batch would bury the pipeline's own progress lines.
    context.variables.progress_bars = ProgressBarsConfig(globally=False)
    return context


class SuiteRunner:
    """A suite bound to a pandas batch definition, a validation definition and a checkpoint."""

    def __init__(self, suite_name: str, expectations: Sequence[Expectation]):
        context = _context()
        self.suite_name = suite_name
        data_source = context.data_sources.add_or_update_pandas(f"{suite_name}_source")
        asset = data_source.add_dataframe_asset(name=suite_name)
        batch_definition = asset.add_batch_definition_whole_dataframe(f"{suite_name}_batch")
        suite = context.suites.add_or_update(gx.ExpectationSuite(name=suite_name))
        for expectation in expectations:
            suite.add_expectation(expectation)
        validation = context.validation_definitions.add_or_update(
            gx.ValidationDefinition(name=suite_name, data=batch_definition, suite=suite)
        )
        self.checkpoint = context.checkpoints.add_or_update(
            gx.Checkpoint(
                name=suite_name,
                validation_definitions=[validation],
                result_format={
                    "result_format": "COMPLETE",
                    "unexpected_index_column_names": [ROW_NUMBER],
                    "return_unexpected_index_query": False,
                },
            )
        )

    def validate(self, frame: pd.DataFrame) -> BatchVerdict:
        """Validate a batch; `frame` must carry the ROW_NUMBER column."""
        result = self.checkpoint.run(batch_parameters={"dataframe": frame})
        (suite_result,) = result.run_results.values()
        row_failures: dict[int, list[str]] = defaultdict(list)
        batch_failures: list[str] = []
        for expectation_result in suite_result.results:
            if expectation_result.success:
                continue
            reason = describe(expectation_result.expectation_config)
            if expectation_result.exception_info.get("raised_exception"):
                message = expectation_result.exception_info.get("exception_message")
                batch_failures.append(f"{reason}: could not run: {message}")
                continue
            failing_rows = expectation_result.result.get("unexpected_index_list")
            if failing_rows is None:
                observed = expectation_result.result.get("observed_value")
                batch_failures.append(f"{reason}: observed {observed}")
                continue
            for failing in failing_rows:
                row_failures[int(failing[ROW_NUMBER])].append(reason)
        return BatchVerdict(
            suite_name=self.suite_name,
            row_failures=dict(row_failures),
            batch_failures=batch_failures,
            statistics=dict(suite_result.statistics),
        )
