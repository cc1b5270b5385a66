"""The gate between landing and the lake: validate each landed batch, promote what passes.

Where it sits, and why: dlt loads each source unchanged into `landing_<source>`; this gate reads
every batch (one dlt load) that it has not promoted yet, runs the table's suite, and loads the
passing rows into `raw_<source>` (the lake dbt reads) with a second dlt pipeline. Failing rows go
to `raw_<source>.quarantine_<table>` with the reasons; each batch leaves one row in
`raw_<source>.gate_audit`. Keeping the gate outside the landing pipeline means the raw batch
survives whatever the suite says (a fixed suite can re-read it), lake writes are ordinary dlt
merges (so the same code runs on DuckDB and the filesystem destination), and the gate is its own
asset in the lineage. A batch that fails as a whole (missing column, collapsed row count) is not
promoted, and nothing after it in that table is, until it passes: promotion stays in load order,
so a merge never applies an older version over a newer one.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime

import dlt
import great_expectations as gx
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from dlt.sources import DltSource

from expectations.factory import ROW_NUMBER, SuiteRunner
from expectations.suites import TableSuite

DLT_COLUMNS = ("_dlt_load_id", "_dlt_id")
LANDING_LOAD_ID = "_landing_load_id"
AUDIT_TABLE = "gate_audit"


def quarantine_table(table_name: str) -> str:
    return f"quarantine_{table_name}"


def is_gate_table(table_name: str) -> bool:
    """The gate's own bookkeeping in a lake dataset, as opposed to a source's table."""
    return table_name == AUDIT_TABLE or table_name.startswith("quarantine_")


@dataclass
class TableGateReport:
    """What the gate did to one table in one run; becomes Dagster metadata and check results."""

    table_name: str
    batches_promoted: int = 0
    source_rows: int = 0
    promoted_rows: int = 0
    quarantined_rows: int = 0
    rows_by_reason: Counter = field(default_factory=Counter)
    batch_failure: str | None = None

    @property
    def reconciles(self) -> bool:
        return self.source_rows == self.promoted_rows + self.quarantined_rows


@dataclass
class GateReport:
    tables: dict[str, TableGateReport] = field(default_factory=dict)

    def for_table(self, table_name: str) -> TableGateReport:
        return self.tables.setdefault(table_name, TableGateReport(table_name))


def _pending_load_ids(landing: dlt.Dataset, table_name: str, after: str) -> list[str]:
    if table_name not in landing.tables:
        return []
    load_ids = landing.table(table_name).where("_dlt_load_id", "gt", after).select("_dlt_load_id")
    column = load_ids.arrow().column("_dlt_load_id")
    return sorted(pc.unique(column).to_pylist())


def _quarantine_rows(
    batch: pa.Table, suite: TableSuite, load_id: str, failures: dict[int, list[str]]
) -> list[dict]:
    quarantined_at = datetime.now(UTC)
    row_numbers = sorted(failures)
    records = batch.take(pa.array(row_numbers, type=pa.int64())).to_pylist()
    return [
        {
            "quarantine_id": f"{load_id}:{row_number}",
            "table_name": suite.table_name,
            "primary_key_value": None
            if record.get(suite.primary_key) is None
            else str(record[suite.primary_key]),
            "record": json.dumps(record, default=str, sort_keys=True),
            "failed_expectations": json.dumps(sorted(set(failures[row_number]))),
            LANDING_LOAD_ID: load_id,
            "quarantined_at": quarantined_at,
        }
        for row_number, record in zip(row_numbers, records, strict=True)
    ]


def _audit_row(suite: TableSuite, load_id: str, **counts) -> dict:
    return {
        "table_name": suite.table_name,
        "suite_name": suite.suite_name,
        LANDING_LOAD_ID: load_id,
        "validated_at": datetime.now(UTC),
        **counts,
    }


def _to_table(rows: list[dict], table_name: str):
    # Audit and quarantine rows are appended; they must not inherit the lake table's merge key.
    return dlt.mark.with_hints(
        rows,
        dlt.mark.make_hints(table_name=table_name, write_disposition="append", primary_key=()),
    )


def _gate_table(
    landing: dlt.Dataset, suite: TableSuite, runner: SuiteRunner, report: TableGateReport
) -> Iterator:
    state = dlt.current.resource_state()
    last_promoted = state.get("last_landing_load_id", "")
    for load_id in _pending_load_ids(landing, suite.table_name, last_promoted):
        batch = landing.table(suite.table_name).where("_dlt_load_id", "eq", load_id).arrow()
        batch = batch.drop_columns([name for name in DLT_COLUMNS if name in batch.column_names])
        frame = suite.derive(batch.to_pandas())
        frame[ROW_NUMBER] = np.arange(len(frame))
        verdict = runner.validate(frame)
        if not verdict.batch_passed:
            report.batch_failure = f"batch {load_id}: " + "; ".join(verdict.batch_failures)
            yield _to_table(
                [
                    _audit_row(
                        suite,
                        load_id,
                        status="batch_rejected",
                        source_rows=batch.num_rows,
                        promoted_rows=0,
                        quarantined_rows=0,
                        reason=report.batch_failure,
                    )
                ],
                AUDIT_TABLE,
            )
            return  # later batches wait: promotion stays in load order
        rejected = np.zeros(batch.num_rows, dtype=bool)
        rejected[list(verdict.row_failures)] = True
        promoted = batch.filter(pa.array(~rejected)).append_column(
            LANDING_LOAD_ID, pa.array([load_id] * int((~rejected).sum()), type=pa.string())
        )
        if promoted.num_rows:
            yield promoted
        if verdict.row_failures:
            yield _to_table(
                _quarantine_rows(batch, suite, load_id, verdict.row_failures),
                quarantine_table(suite.table_name),
            )
        yield _to_table(
            [
                _audit_row(
                    suite,
                    load_id,
                    status="promoted",
                    source_rows=batch.num_rows,
                    promoted_rows=promoted.num_rows,
                    quarantined_rows=int(rejected.sum()),
                    reason=None,
                )
            ],
            AUDIT_TABLE,
        )
        report.batches_promoted += 1
        report.source_rows += batch.num_rows
        report.promoted_rows += promoted.num_rows
        report.quarantined_rows += int(rejected.sum())
        for reasons in verdict.row_failures.values():
            report.rows_by_reason.update(set(reasons))
        state["last_landing_load_id"] = load_id


def _landed_columns(landing: dlt.Dataset, table_name: str) -> dict:
    """The landing table's column types, so the lake keeps them (JSON stays JSON, decimals keep
    their precision) rather than re-inferring them from Arrow."""
    if table_name not in landing.schema.tables:
        return {}
    columns = landing.schema.get_table_columns(table_name)
    return {
        name: {
            key: column[key]
            for key in ("data_type", "precision", "scale", "timezone")
            if key in column
        }
        for name, column in columns.items()
        if not name.startswith("_dlt")
    }


def lake_gate(
    source_name: str, landing: dlt.Dataset, suites: dict[str, TableSuite], report: GateReport
) -> DltSource:
    """A dlt source whose resources are the validated lake tables of one landing dataset."""

    @dlt.source(name=f"{source_name}_lake")
    def gate() -> Iterator:
        for table_name, suite in suites.items():
            runner = SuiteRunner(suite.suite_name, suite_expectations(suite))
            promote = dlt.resource(
                _gate_table,
                name=table_name,
                primary_key=suite.primary_key,
                write_disposition="merge",
                columns=_landed_columns(landing, table_name),
            )
            yield promote(landing, suite, runner, report.for_table(table_name))

    return gate()


def suite_expectations(suite: TableSuite) -> list:
    """The suite's own expectations plus the columns every batch must have."""
    return [
        *(gx.expectations.ExpectColumnToExist(column=name) for name in suite.required_columns),
        *suite.expectations,
    ]
