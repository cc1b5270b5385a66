"""The validation gate as assets: one lake table per landing table, with GX results as checks."""

from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import duckdb

from expectations.gate import TableGateReport
from expectations.promote import promote, suites_for
from expectations.suite_runner import docs_index
from ingestion.failures import interruptions_stop
from ingestion.pipelines import lake_dataset, landing_dataset
from ingestion.registry import SOURCES
from orchestration.ingestion import warehouse_table_name
from orchestration.memory import memory_given_back
from orchestration.pools import WAREHOUSE_POOL, wait_for_the_warehouse
from regulars import warehouse
from regulars.settings import Settings

SUITE_CHECK = "gx_suite_passed"
RECONCILE_CHECK = "rows_reconcile"
QUARANTINE_CHECK = "no_rows_quarantined"


def lake_key(source_name: str, table_name: str) -> dg.AssetKey:
    return dg.AssetKey([lake_dataset(source_name), table_name])


def _lake_table(
    settings: Settings, source_name: str, table_name: str
) -> tuple[int | None, dg.TableSchema | None]:
    """The lake table's row count and columns as the warehouse has them (a view over Parquet
    files on the filesystem destination); None for a table not there yet.

    Read while the gate holds the warehouse open (regulars.warehouse.kept_open), in the mode it
    holds it: DuckDB refuses a read-only connection to a file its process has open for writing."""
    try:
        with duckdb.connect(str(settings.warehouse_path)) as connection:
            relation = f'"{lake_dataset(source_name)}"."{table_name}"'
            rows = connection.execute(f"select count(*) from {relation}").fetchone()[0]
            columns = connection.execute(f"describe {relation}").fetchall()
    except duckdb.CatalogException:
        return None, None
    schema = dg.TableSchema(
        columns=[
            dg.TableColumn(
                name=name,
                type=type_,
                constraints=dg.TableColumnConstraints(nullable=null == "YES"),
            )
            for name, type_, null, *_ in columns
        ]
    )
    return rows, schema


def _results(
    key: dg.AssetKey,
    table: TableGateReport,
    lake: tuple[int | None, dg.TableSchema | None],
    docs: Path | None,
) -> Iterator[dg.MaterializeResult | dg.AssetCheckResult]:
    reasons = dict(table.rows_by_reason.most_common())
    lake_rows, columns = lake
    yield dg.MaterializeResult(
        asset_key=key,
        metadata={
            "batches_promoted": table.batches_promoted,
            "source_rows": table.source_rows,
            "promoted_rows": table.promoted_rows,
            "quarantined_rows": table.quarantined_rows,
            "already_held_rows": table.already_held_rows,
            "dagster/row_count": lake_rows if lake_rows is not None else 0,
            **({"dagster/column_schema": columns} if columns is not None else {}),
            "quarantine_reasons": dg.MetadataValue.json(reasons),
            **({"gx_data_docs": dg.MetadataValue.path(str(docs))} if docs else {}),
        },
    )
    yield dg.AssetCheckResult(
        asset_key=key,
        check_name=SUITE_CHECK,
        passed=table.batch_failure is None,
        metadata={"batch_failure": table.batch_failure or "none"},
        description=table.batch_failure,
    )
    yield dg.AssetCheckResult(
        asset_key=key,
        check_name=RECONCILE_CHECK,
        passed=table.reconciles,
        metadata={
            "source_rows": table.source_rows,
            "lake_plus_quarantine": table.promoted_rows
            + table.quarantined_rows
            + table.already_held_rows,
        },
    )
    yield dg.AssetCheckResult(
        asset_key=key,
        check_name=QUARANTINE_CHECK,
        # Rows already held still warn: the source keeps sending them.
        passed=table.quarantined_rows + table.already_held_rows == 0,
        severity=dg.AssetCheckSeverity.WARN,
        metadata={
            "quarantined_rows": table.quarantined_rows,
            "already_held_rows": table.already_held_rows,
            "reasons": dg.MetadataValue.json(reasons),
        },
    )


def _not_configured(
    source_name: str, table_names: list[str], missing: str
) -> Iterator[dg.MaterializeResult | dg.AssetCheckResult]:
    """Nothing landed, nothing to check: the lake keeps what it has (dbt reads an empty table
    where it has none, macros/lake_source.sql)."""
    for table_name in table_names:
        key = lake_key(source_name, table_name)
        yield dg.MaterializeResult(
            asset_key=key, metadata={"not_configured": missing, "dagster/row_count": 0}
        )
        for check in (SUITE_CHECK, RECONCILE_CHECK, QUARANTINE_CHECK):
            yield dg.AssetCheckResult(
                asset_key=key,
                check_name=check,
                passed=True,
                description=f"{source_name} is not configured: nothing landed to check.",
            )


def gate_assets(source_name: str, settings: Settings) -> dg.AssetsDefinition:
    table_names = list(suites_for(source_name))
    specs = [
        dg.AssetSpec(
            lake_key(source_name, table_name),
            deps=[dg.AssetKey([landing_dataset(source_name), table_name])],
            group_name="lake",
            description=(
                f"Validated `{table_name}` rows from {source_name}: landed batches that passed "
                f"their Great Expectations suite; failing rows are in "
                f"`{lake_dataset(source_name)}.quarantine_{table_name}`."
            ),
            kinds={"duckdb", "great_expectations"},
            owners=["team:data-engineering"],
            # The relation dbt's source reads: dagster-dbt would name the source the same.
            metadata={
                "dagster/table_name": warehouse_table_name(
                    settings, lake_dataset(source_name), table_name
                ),
                "dagster/storage_kind": "duckdb",
            },
        )
        for table_name in table_names
    ]
    check_specs = [
        check
        for spec in specs
        for check in (
            dg.AssetCheckSpec(
                SUITE_CHECK,
                asset=spec.key,
                blocking=True,
                description="Every landed batch passed its suite as a whole (schema, volume).",
            ),
            dg.AssetCheckSpec(
                RECONCILE_CHECK,
                asset=spec.key,
                blocking=True,
                description=(
                    "Landed rows = promoted + newly quarantined + already held rows, for every "
                    "batch."
                ),
            ),
            dg.AssetCheckSpec(
                QUARANTINE_CHECK,
                asset=spec.key,
                description="Warns when rows failed row-level expectations and were quarantined.",
            ),
        )
    ]

    @dg.multi_asset(
        name=f"{source_name}_gate",
        specs=specs,
        check_specs=check_specs,
        pool=WAREHOUSE_POOL,
    )
    def gate(context: dg.AssetExecutionContext) -> Iterator:
        missing = SOURCES[source_name].missing(settings)
        if missing:
            yield from _not_configured(source_name, table_names, missing)
            return
        wait_for_the_warehouse(context, settings)
        with interruptions_stop(), memory_given_back(), warehouse.kept_open(settings):
            result = promote(source_name, settings)
            lake_tables = {name: _lake_table(settings, source_name, name) for name in table_names}
        if result.finished_pending:
            context.log.warning(result.finished_pending.describe("lake"))
        for table_name in table_names:
            table = result.report.tables[table_name]
            context.log.info(
                "%s.%s: %d landed, %d promoted, %d quarantined, %d already held%s",
                source_name,
                table_name,
                table.source_rows,
                table.promoted_rows,
                table.quarantined_rows,
                table.already_held_rows,
                f"; batch rejected: {table.batch_failure}" if table.batch_failure else "",
            )
            yield from _results(
                lake_key(source_name, table_name),
                table,
                lake_tables[table_name],
                docs_index(settings.data_docs_dir) if settings.data_docs_dir else None,
            )

    return gate


def definitions(settings: Settings) -> dg.Definitions:
    return dg.Definitions(
        assets=[gate_assets(source.name, settings) for source in SOURCES.values()]
    )
