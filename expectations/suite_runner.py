"""The suite runner: wires a GX suite to a DataFrame and says which rows failed why.

Row-level expectations (column map expectations: they report the failing rows) send those rows to
quarantine; any other failed expectation (table shape, row count) fails the whole batch.
"""

from __future__ import annotations

import json
import logging
import re
from collections import defaultdict
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from copy import copy
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cache
from pathlib import Path

import great_expectations as gx
import pandas as pd
from great_expectations.core.run_identifier import RunIdentifier
from great_expectations.data_context.types.base import (
    DataContextConfig,
    InMemoryStoreBackendDefaults,
    ProgressBarsConfig,
)
from great_expectations.data_context.types.resource_identifiers import (
    ExpectationSuiteIdentifier,
    ValidationResultIdentifier,
)
from great_expectations.execution_engine import pandas_execution_engine
from great_expectations.expectations.expectation import (
    ColumnMapExpectation,
    ColumnPairMapExpectation,
    Expectation,
    MulticolumnMapExpectation,
)

from expectations.bounds import DATA_DOCS_VALIDATIONS_SHOWN, SCHEMA_DRIFT_MIN_ROWS

# GX reports failing rows by the values of these columns. A row number rather than the primary
# key: the key itself may be null or duplicated in exactly the rows we need to find.
ROW_NUMBER = "_gate_row_number"

# Suite parameters (GX `$PARAMETER`s) set per batch: batch-level rules whose bound depends on
# the batch's size or on the table's history.
MIN_BATCH_ROWS = "min_batch_rows"
MIN_NON_NULL_SHARE = "min_non_null_share"

DOCS_SITE = "regulars"
DOCS_RESULTS_STORE = "data_docs_validation_results"
# Per-row lists GX keeps for COMPLETE results: the gate reads them, and none is stored for Data
# Docs. The full lists would make a mass failure's result megabytes; the `partial_` ones (the
# first 20 values, with their counts and rows) would put quarantined values, a guest's email or
# phone among them, on static pages that `regulars forget` cannot reach. The pages keep counts
# and percentages; the quarantine tables hold the rows, where forget finds them.
ROW_LISTS = (
    "unexpected_list",
    "unexpected_index_list",
    "unexpected_index_query",
    "partial_unexpected_list",
    "partial_unexpected_counts",
    "partial_unexpected_index_list",
)


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


def rule_of(reason: str) -> str:
    """The expectation and column a `describe` reason names, without the other arguments.

    Two verdicts on the same row are the same when they name the same rules: a bound that moves
    with the clock (the latest timestamp allowed is now plus a day) changes the reason's text on
    every run, not what is wrong with the row.
    """
    name, _, arguments = reason.partition("(")
    # `describe` sorts the arguments, so `column=` comes first and its value ends at `, ` or `)`.
    column = re.match(r"column=([^,)]*)", arguments)
    return f"{name}(column={column.group(1)})" if column else name


def _docs_config(docs_dir: Path) -> DataContextConfig:
    """Suites and checkpoints stay in memory (they are code); the results Data Docs render from,
    and the site itself, are files under `docs_dir`."""
    config = DataContextConfig(store_backend_defaults=InMemoryStoreBackendDefaults())
    config.stores[DOCS_RESULTS_STORE] = {
        "class_name": "ValidationResultsStore",
        "store_backend": {
            "class_name": "TupleFilesystemStoreBackend",
            "base_directory": str(docs_dir / "validation_results"),
        },
    }
    config.data_docs_sites = {
        DOCS_SITE: {
            "class_name": "SiteBuilder",
            "show_how_to_buttons": False,
            "store_backend": {
                "class_name": "TupleFilesystemStoreBackend",
                "base_directory": str(docs_dir / "site"),
            },
            "site_index_builder": {
                "class_name": "DefaultSiteIndexBuilder",
                "validation_results_limit": DATA_DOCS_VALIDATIONS_SHOWN,
            },
            # Suites are code, registered per process: a suite page would come and go with the
            # process that built the site. Each validation page lists its suite's expectations.
            # ("None" as a string: GX's YAML-born config reads that as switched off.)
            "site_section_builders": {
                "expectations": "None",
                "profiling": "None",
                "validations": {"source_store_name": DOCS_RESULTS_STORE},
            },
        }
    }
    return config


@cache
def _context(docs_dir: Path | None = None):
    # Validation must not write to the home directory or depend on a GX project folder.
    logging.getLogger("great_expectations").setLevel(logging.WARNING)
    # GX fingerprints every pandas batch under this many bytes (a hash of all its values) only to
    # label the result; the gate names each result by its landing load instead, and on a million
    # rows the fingerprint takes as long as all the expectations together.
    pandas_execution_engine.HASH_THRESHOLD = 0
    if docs_dir is None:
        context = gx.get_context(mode="ephemeral")
    else:
        context = gx.get_context(mode="ephemeral", project_config=_docs_config(docs_dir))
    # One progress bar per batch would bury the pipeline's own progress lines.
    context.variables.progress_bars = ProgressBarsConfig(globally=False)
    return context


def is_row_level(expectation: Expectation) -> bool:
    """Whether an expectation judges rows one by one (GX's map expectations, uniqueness among
    them), as opposed to the batch as a whole (a column's existence, a share, a row count)."""
    return isinstance(
        expectation, ColumnMapExpectation | ColumnPairMapExpectation | MulticolumnMapExpectation
    )


def validated_columns(expectations: Sequence[Expectation]) -> tuple[list[str], list[str]]:
    """The columns a suite reads values of, and those it only requires to exist."""
    read: dict[str, None] = {}
    named: dict[str, None] = {}
    for expectation in expectations:
        column = getattr(expectation, "column", None)
        if column is None:
            continue
        named.setdefault(column)
        if not isinstance(expectation, gx.expectations.ExpectColumnToExist):
            read.setdefault(column)
    return list(read), [column for column in named if column not in read]


def gx_frame(frame: pd.DataFrame, read: Sequence[str], existing: Sequence[str]) -> pd.DataFrame:
    """The part of a batch GX needs: the columns it reads, the row number, and for a column it
    only needs to exist, the column's null mask under its name (one byte a row, where the column
    may be kilobytes of JSON that GX would otherwise fingerprint and copy for nothing). A column
    the batch lacks stays absent, so its existence check fails."""
    columns = {name: frame[name] for name in read if name in frame.columns}
    columns |= {name: frame[name].isna() for name in existing if name in frame.columns}
    columns[ROW_NUMBER] = frame[ROW_NUMBER]
    return pd.DataFrame(columns, index=frame.index)


def batch_parameters(rows: int, min_batch_rows: int = 0) -> dict[str, float]:
    """The per-batch values of the suite parameters.

    A never-null column needs at least one value in a batch of SCHEMA_DRIFT_MIN_ROWS rows or more
    (a share just under one row's); smaller batches leave it to the row-level checks.
    """
    share = 1 / (rows + 1) if rows >= SCHEMA_DRIFT_MIN_ROWS else 0.0
    return {MIN_NON_NULL_SHARE: share, MIN_BATCH_ROWS: min_batch_rows}


# The runner whose GX objects are registered under each (context, suite name): GX checks at every
# run that a checkpoint is the one its store holds, so a runner validates only after it is.
_registered: dict[tuple[Path | None, str], SuiteRunner] = {}
_runners: dict[tuple[Path | None, str, str], SuiteRunner] = {}


def suite_runner(
    suite_name: str, expectations: Sequence[Expectation], docs_dir: Path | None = None
) -> SuiteRunner:
    """This process's runner of a suite. GX's context lives as long as the process, and
    registering the same suite, validation definition and checkpoint in it again on every run
    cost 0.2-0.3 s a table, 15 tables a run: a process that runs the gate again (a test session,
    any caller of `materialize_everything` more than once) registers each suite once, and again
    only if its expectations change."""
    key = (docs_dir, suite_name, _fingerprint(expectations))
    if key not in _runners:
        _runners[key] = SuiteRunner(suite_name, expectations, docs_dir)
    return _runners[key]


def _fingerprint(expectations: Sequence[Expectation]) -> str:
    """The expectations' configurations, without the ids GX gives them once in a suite."""
    configurations = [
        {name: value for name, value in e.configuration.to_json_dict().items() if name != "id"}
        for e in expectations
    ]
    return json.dumps(configurations, sort_keys=True, default=str)


class SuiteRunner:
    """A suite bound to a pandas batch definition, a validation definition and a checkpoint.

    With `docs_dir`, every validation is also rendered into a GX Data Docs site there.
    `suite_runner` gives the process's runner of a suite; constructing one registers it anew.
    """

    def __init__(
        self,
        suite_name: str,
        expectations: Sequence[Expectation],
        docs_dir: Path | None = None,
    ):
        self.context = _context(docs_dir)
        self.suite_name = suite_name
        self.docs_dir = docs_dir
        self.docs = docs_dir is not None
        self.read_columns, self.existing_columns = validated_columns(expectations)
        self.expectations = list(expectations)
        self.data_source_name = f"{suite_name}_source"
        self._register()

    def _register(self) -> None:
        context = self.context
        data_source = context.data_sources.add_or_update_pandas(self.data_source_name)
        asset = data_source.add_dataframe_asset(name=self.suite_name)
        batch_definition = asset.add_batch_definition_whole_dataframe(f"{self.suite_name}_batch")
        # The whole suite in one store write: adding to a stored suite one expectation at a time
        # writes it back after each (175 writes, 5 s, for the ordering source's six tables).
        # Copies: a GX expectation belongs to the one suite it was added to, and each
        # registration makes a new suite; the caller's objects stay in none.
        suite = context.suites.add_or_update(
            gx.ExpectationSuite(
                name=self.suite_name, expectations=[copy(e) for e in self.expectations]
            )
        )
        validation = context.validation_definitions.add_or_update(
            gx.ValidationDefinition(name=self.suite_name, data=batch_definition, suite=suite)
        )
        self.checkpoint = context.checkpoints.add_or_update(
            gx.Checkpoint(
                name=self.suite_name,
                validation_definitions=[validation],
                result_format={
                    "result_format": "COMPLETE",
                    "unexpected_index_column_names": [ROW_NUMBER],
                    "return_unexpected_index_query": False,
                },
            )
        )
        _registered[(self.docs_dir, self.suite_name)] = self

    def validate(
        self,
        frame: pd.DataFrame,
        min_batch_rows: int = 0,
        run_name: str | None = None,
        render_passing: bool = True,
    ) -> BatchVerdict:
        """Validate a batch; `frame` must carry the ROW_NUMBER column.

        `min_batch_rows` is the volume rule's bound for this batch (0: none). Without
        `render_passing`, Data Docs get a page only when something failed (a large batch's
        parts: one page each would bury the batch's own).

        Only the columns the suite names go to GX (`gx_frame`).
        """
        if _registered.get((self.docs_dir, self.suite_name)) is not self:
            self._register()  # another runner of this name registered since
        run_id = RunIdentifier(run_name=run_name or self.suite_name, run_time=datetime.now(UTC))
        try:
            result = self.checkpoint.run(
                batch_parameters={
                    "dataframe": gx_frame(frame, self.read_columns, self.existing_columns)
                },
                expectation_parameters=batch_parameters(len(frame), min_batch_rows),
                run_id=run_id,
            )
        finally:
            self._forget_batch()
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
        if self.docs and (render_passing or not suite_result.success):
            self._render(suite_result, run_id)
        return BatchVerdict(
            suite_name=self.suite_name,
            row_failures=dict(row_failures),
            batch_failures=batch_failures,
            statistics=dict(suite_result.statistics),
        )

    def _forget_batch(self) -> None:
        """Let go of the batch just validated. GX's ephemeral context lives as long as the process
        (GX's project manager holds it) and each data source's execution engine keeps its last
        batch: in Dagster's process, after the events gate, the frames of every suite's last
        part stayed resident through every later step."""
        engine = self.context.data_sources.get(self.data_source_name).get_execution_engine()
        engine.batch_manager.reset_batch_cache()
        engine.batch_manager.batch_data_cache.clear()

    def _render(self, suite_result, run_id: RunIdentifier) -> None:
        """Store the result without its per-row lists (no row values) and build its Data Docs
        page and index."""
        for expectation_result in suite_result.results:
            for name in ROW_LISTS:
                expectation_result.result.pop(name, None)
        key = ValidationResultIdentifier(
            expectation_suite_identifier=ExpectationSuiteIdentifier(name=self.suite_name),
            run_id=run_id,
            batch_identifier=suite_result.batch_id,
        )
        self.context.stores[DOCS_RESULTS_STORE].set(key, suite_result)
        if _deferred is not None:
            _deferred.setdefault(id(self.context), (self.context, []))[1].append(key)
            return
        _build_pages(self.context, [key])


# Inside `deferred_data_docs`: per GX context, the results stored whose pages are still to build.
_deferred: dict[int, tuple[object, list[ValidationResultIdentifier]]] | None = None


@contextmanager
def deferred_data_docs() -> Iterator[None]:
    """Build the Data Docs of the validations run inside once, at the end.

    Each build also rebuilds the site's index, which reads back up to DATA_DOCS_VALIDATIONS_SHOWN
    stored results: once a chain's history holds that many, a build took about half a second,
    paid after each table of a gate run (six tables for the ordering platform). A gate run builds
    its pages together, also when it fails part way: what was validated gets its page.
    """
    global _deferred
    if _deferred is not None:  # nested: the outer block builds
        yield
        return
    _deferred = {}
    try:
        yield
    finally:
        pending, _deferred = _deferred, None
        for context, keys in pending.values():
            _build_pages(context, keys)


def _build_pages(context, keys: list[ValidationResultIdentifier]) -> None:
    context.build_data_docs(site_names=[DOCS_SITE], resource_identifiers=keys)


def docs_index(docs_dir: Path) -> Path:
    """The page to open in a browser."""
    return docs_dir / "site" / "index.html"
