"""Replay: re-validate quarantined rows with the current suite; move those that now pass, once.

Exactly once, and why this way: a quarantine row is keyed by `quarantine_id` (its landing load
and row) and merged on it, so the gate and replay can update it in place. Replay writes the rows
that now pass to the lake and, in the same dlt load, the same quarantine rows with `replayed_at`
set; only rows with `replayed_at` null are held, so a second replay finds nothing to move. The
marker keeps the row (and its old reasons) as the record of what was held and when it left,
which a deletion would lose; a load that fails half-way is finished by dlt's next run of the
pipeline, and re-merging a lake row on its key leaves it as it was.

Rows still failing stay held with their reasons updated. A held row whose key already has a newer
version in the lake (the source fixed it, and the fix passed the gate) is not moved, which would
overwrite newer data: it is marked superseded (`superseded_at`, and `superseded_by` the newer
version's landing load), kept with its reasons as the record of what was held, and no longer
held. The audit counts it in `superseded_rows`, so landed = promoted + quarantined + superseded.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import dlt
import numpy as np
import pandas as pd
import pyarrow as pa

from expectations.gate import (
    AUDIT_TABLE,
    DLT_COLUMNS,
    LANDING_LOAD_ID,
    QUARANTINE_COLUMNS,
    LandingTables,
    audit_row,
    gate_resource,
    gate_rows,
    newest_per_key,
    quarantine_table,
    runner_for,
    validate_batch,
    with_load_id,
)
from expectations.promote import suites_for
from expectations.suite_runner import deferred_data_docs
from expectations.suites import TableSuite
from ingestion.lake_views import publish_lake_views
from ingestion.pipelines import lake_pipeline, landing_pipeline, load_options
from regulars.settings import Settings


@dataclass
class TableReplay:
    """What one replay did to one table's quarantine."""

    table_name: str
    held: int = 0
    moved: int = 0
    still_failing: int = 0
    superseded: int = 0
    reasons: Counter = field(default_factory=Counter)
    batch_failures: list[str] = field(default_factory=list)


@dataclass
class ReplayReport:
    source_name: str
    tables: dict[str, TableReplay] = field(default_factory=dict)

    def for_table(self, table_name: str) -> TableReplay:
        return self.tables.setdefault(table_name, TableReplay(table_name))

    @property
    def moved(self) -> int:
        return sum(table.moved for table in self.tables.values())


def held_rows(lake: dlt.Dataset, table_name: str) -> pd.DataFrame:
    """The quarantine rows still held, oldest batch first.

    The filesystem lake appends every version of a quarantine row: the newest one counts.
    """
    name = quarantine_table(table_name)
    if name not in lake.tables:
        return pd.DataFrame(columns=list(QUARANTINE_COLUMNS))
    rows = lake.table(name).df()
    if "_dlt_load_id" in rows.columns:
        rows = rows.sort_values("_dlt_load_id").drop_duplicates("quarantine_id", keep="last")
    # A quarantine table from before a column existed has none of its values.
    rows = rows.reindex(columns=list(dict.fromkeys([*rows.columns, *QUARANTINE_COLUMNS])))
    held = rows[rows["replayed_at"].isna() & rows["superseded_at"].isna()]
    order = held["quarantine_id"].str.rsplit(":", n=1).str[1].astype(int)
    return held.assign(_row=order).sort_values([LANDING_LOAD_ID, "_row"]).drop(columns="_row")


def _column(values: list, arrow_type: pa.DataType) -> pa.Array:
    storage = getattr(arrow_type, "storage_type", arrow_type)
    if pa.types.is_string(storage) or pa.types.is_large_string(storage):
        text = [v if v is None or isinstance(v, str) else json.dumps(v) for v in values]
        return pa.array(text, pa.string()).cast(arrow_type)
    if pa.types.is_temporal(storage) or pa.types.is_decimal(storage):
        return pa.array([None if v is None else str(v) for v in values], pa.string()).cast(
            arrow_type
        )
    return pa.array(values).cast(arrow_type)


def decode_records(records: list[str], schema: pa.Schema) -> pa.Table:
    """Quarantined JSON records back to the landing table's column types."""
    rows = [json.loads(record) for record in records]
    return pa.table(
        {field.name: _column([row.get(field.name) for row in rows], field.type) for field in schema}
    )


def landing_schema(landing: dlt.Dataset, table_name: str) -> pa.Schema:
    empty = landing.table(table_name).limit(0).arrow()
    return pa.schema([f for f in empty.schema if f.name not in DLT_COLUMNS])


def newest_lake_batches(lake: dlt.Dataset, suite: TableSuite, keys: pa.Array) -> dict:
    """Key -> the newest landing load of that key in the lake (for keys the lake holds)."""
    present = [key for key in keys.to_pylist() if key is not None]
    # The lake dataset reads like a landing one: the same lookup, by key.
    rows = LandingTables(lake).read(
        suite.table_name, [suite.primary_key, LANDING_LOAD_ID], suite.primary_key, present
    )
    return rows.groupby(suite.primary_key)[LANDING_LOAD_ID].max().to_dict()


def _quarantine_updates(group: pd.DataFrame, **changes) -> list[dict]:
    rows = group.reindex(columns=list(QUARANTINE_COLUMNS)).assign(**changes)
    # Back to plain values: pandas reads a null text or timestamp as NaN or NaT.
    return [
        {key: None if pd.isna(value) else value for key, value in row.items()}
        for row in rows.to_dict("records")
    ]


def _supersede(
    group: pd.DataFrame, newer: np.ndarray, newest: list, suite: TableSuite, now: datetime
) -> Iterator:
    """Mark the held rows whose key has a newer version in the lake superseded, and say so in
    the audit (they leave the held count without reaching the lake)."""
    load_id = group[LANDING_LOAD_ID].iloc[0]
    yield gate_rows(
        _quarantine_updates(
            group[newer],
            superseded_at=now,
            superseded_by=[by for by, is_newer in zip(newest, newer, strict=True) if is_newer],
            last_validated_at=now,
        ),
        quarantine_table(suite.table_name),
    )
    rows = int(newer.sum())
    yield gate_rows(
        [
            audit_row(
                suite,
                load_id,
                status="superseded",
                source_rows=0,
                promoted_rows=0,
                quarantined_rows=-rows,
                superseded_rows=rows,
                reason=f"replay found {rows} held row(s) superseded by a newer version in the lake",
            )
        ],
        AUDIT_TABLE,
    )


def _replay_table(
    landing: dlt.Dataset, lake: dlt.Dataset, suite: TableSuite, runner, report: TableReplay
) -> Iterator:
    held = held_rows(lake, suite.table_name)
    report.held = len(held)
    if held.empty or suite.table_name not in landing.tables:
        return
    schema = landing_schema(landing, suite.table_name)
    landed = LandingTables(landing)
    now = datetime.now(UTC)
    moved: list[pa.Table] = []
    for load_id, group in held.groupby(LANDING_LOAD_ID, sort=True):
        batch = decode_records(group["record"].tolist(), schema)
        keys = batch.column(suite.primary_key).to_pylist()
        newest = newest_lake_batches(lake, suite, batch.column(suite.primary_key))
        newer = np.array([newest.get(key, "") > load_id for key in keys])
        if newer.any():
            yield from _supersede(group, newer, [newest.get(key) for key in keys], suite, now)
            report.superseded += int(newer.sum())
        verdict = validate_batch(
            batch, suite, runner, landed, run_name=f"replay_of_landing_load_{load_id}"
        )
        if not verdict.batch_passed:
            report.batch_failures.append(f"batch {load_id}: " + "; ".join(verdict.batch_failures))
            report.still_failing += int((~newer).sum())
            continue
        failing = np.zeros(len(group), dtype=bool)
        failing[list(verdict.row_failures)] = True
        moving = ~failing & ~newer
        report.moved += int(moving.sum())
        report.still_failing += int((failing & ~newer).sum())
        if moving.any():
            moved.append(with_load_id(batch.filter(pa.array(moving)), load_id))
            yield gate_rows(
                _quarantine_updates(group[moving], replayed_at=now, last_validated_at=now),
                quarantine_table(suite.table_name),
            )
        still = failing & ~newer
        if still.any():
            reasons = [
                json.dumps(sorted(set(verdict.row_failures[row]))) for row in np.flatnonzero(still)
            ]
            for row in np.flatnonzero(still):
                report.reasons.update(set(verdict.row_failures[row]))
            yield gate_rows(
                _quarantine_updates(
                    group[still], failed_expectations=reasons, last_validated_at=now
                ),
                quarantine_table(suite.table_name),
            )
        if moving.any():
            # A replay lands no rows: it moves them, out of quarantine and into the lake, so the
            # audit's sums still read landed = promoted + quarantined (held now).
            yield gate_rows(
                [
                    audit_row(
                        suite,
                        load_id,
                        status="replayed",
                        source_rows=0,
                        promoted_rows=int(moving.sum()),
                        quarantined_rows=-int(moving.sum()),
                        reason=f"replay moved {int(moving.sum())} row(s) into the lake",
                    )
                ],
                AUDIT_TABLE,
            )
    if moved:
        yield newest_per_key(moved, suite.primary_key)


def replay_source(
    source_name: str,
    landing: dlt.Dataset,
    lake: dlt.Dataset,
    suites: dict[str, TableSuite],
    report: ReplayReport,
    docs_dir: Path | None = None,
):
    """The gate's dlt source (same name, tables and hints), fed from quarantine."""

    @dlt.source(name=f"{source_name}_lake")
    def gate():
        for table_name, suite in suites.items():
            runner = runner_for(suite, docs_dir)
            table_report = report.for_table(table_name)
            yield gate_resource(
                _replay_table, suite, landing, landing, lake, suite, runner, table_report
            )

    return gate()


def replay(source_name: str, settings: Settings, table_name: str | None = None) -> ReplayReport:
    """Re-validate what the gate holds for one source (one table of it) and move what passes."""
    suites = suites_for(source_name)
    if table_name is not None:
        if table_name not in suites:
            known = ", ".join(suites)
            raise KeyError(f"{source_name} has no table {table_name!r} (its tables: {known})")
        suites = {table_name: suites[table_name]}
    report = ReplayReport(source_name)
    landing = landing_pipeline(source_name, settings).dataset()
    lake = lake_pipeline(source_name, settings)
    source = replay_source(
        source_name, landing, lake.dataset(), suites, report, settings.data_docs_dir
    )
    with deferred_data_docs():
        lake.run(source, **load_options(settings))
    publish_lake_views(lake, settings)
    return report


def render(report: ReplayReport) -> str:
    """The replay as a person reads it: per table, what moved and what is still held, and why."""
    lines = [f"Replay of raw_{report.source_name} quarantine with the current suites:"]
    for table in report.tables.values():
        if not table.held:
            lines.append(f"  {table.table_name}: nothing held")
            continue
        lines.append(
            f"  {table.table_name}: {table.held} held -> {table.moved} moved into the lake, "
            f"{table.still_failing} still failing"
            + (
                f", {table.superseded} superseded (the lake has a newer version; kept, no longer "
                "held)"
                if table.superseded
                else ""
            )
        )
        for reason, count in table.reasons.most_common():
            lines.append(f"      {count} x {reason}")
        for failure in table.batch_failures:
            lines.append(f"      held as a whole: {failure}")
    lines.append(f"{report.moved} row(s) moved.")
    return "\n".join(lines)
