"""dlt landing assets (dagster-dlt): one asset per dlt resource, fed by its source system."""

from collections.abc import Iterator
from dataclasses import dataclass

import dagster as dg
from dagster_dlt import DagsterDltResource, DagsterDltTranslator, dlt_assets
from dagster_dlt.translator import DltResourceTranslatorData

from ingestion.failures import explain, interruptions_stop
from ingestion.landing_zone import append_where_empty
from ingestion.pipelines import (
    finish_pending,
    lake_dataset,
    landing_dataset,
    landing_held_open,
    landing_pipeline,
    load_options,
    prune_state_history,
)
from ingestion.registry import SOURCES
from ingestion.source_spec import Source
from ingestion.starting_over import restart_changed_tables, restart_message
from orchestration.memory import memory_given_back
from orchestration.pools import WAREHOUSE_POOL, wait_for_the_warehouse
from regulars.settings import Settings


def source_system_key(source_name: str) -> dg.AssetKey:
    return dg.AssetKey(["sources", source_name])


def warehouse_table_name(settings: Settings, schema: str, table: str) -> str:
    """A table of the warehouse as dagster-dbt names dbt's relations: `<database>.<schema>.<table>`,
    the database being the DuckDB file's name (dbt-duckdb's catalog)."""
    return f"{settings.warehouse_path.stem}.{schema}.{table}"


def landing_table_name(settings: Settings, source_name: str, table: str) -> str:
    """Where a landing table is: in the warehouse, or on the filesystem destination the folder of
    its Parquet files. Qualified, so two sources' `orders` are two tables to Dagster."""
    if settings.destination == "filesystem":
        return f"{settings.lake_bucket_url.rstrip('/')}/{landing_dataset(source_name)}/{table}"
    return warehouse_table_name(settings, landing_dataset(source_name), table)


@dataclass
class LandingTranslator(DagsterDltTranslator):
    """Keys are the relation each resource writes: `landing_<source>/<table>`."""

    settings: Settings | None = None

    def get_asset_spec(self, data: DltResourceTranslatorData) -> dg.AssetSpec:
        source_name = data.resource.source_name
        table = data.resource.name
        spec = super().get_asset_spec(data)
        metadata = dict(spec.metadata)
        if self.settings is not None:
            metadata["dagster/table_name"] = landing_table_name(self.settings, source_name, table)
        return spec.replace_attributes(
            key=dg.AssetKey([landing_dataset(source_name), table]),
            deps=[source_system_key(source_name)],
            group_name="ingestion",
            owners=["team:data-engineering"],
            description=landing_description(source_name, table),
            metadata=metadata,
        )


def landing_description(source_name: str, table: str) -> str:
    source = SOURCES.get(source_name)
    return (
        f"`{table}` from the `{source_name}` source, as dlt lands it: not yet validated. "
        f"{source.description if source else ''} The validation gate promotes the batches that "
        f"pass their Great Expectations suite to `{lake_dataset(source_name)}.{table}` "
        "(quarantining failing rows), which dbt reads."
    ).replace("  ", " ")


def qualified(
    results: Iterator, settings: Settings, source_name: str
) -> Iterator[dg.MaterializeResult]:
    """dlt's materialisations with the table name the asset's definition gives, not dlt's
    `<destination>.<dataset>.<table>`, which is neither the warehouse's nor the same per run."""
    for result in results:
        if isinstance(result, dg.MaterializeResult) and result.asset_key is not None:
            name = landing_table_name(settings, source_name, result.asset_key.path[-1])
            result = dg.MaterializeResult(
                asset_key=result.asset_key,
                metadata={**(result.metadata or {}), "dagster/table_name": name},
                check_results=result.check_results,
                data_version=result.data_version,
                tags=result.tags,
            )
        yield result


def source_systems(settings: Settings) -> list[dg.AssetSpec]:
    """The systems Regulars reads, as external assets: the roots of the lineage.

    Every source is in the graph whatever this chain has set up, so the graph (and a job's
    selection) does not change with the environment; a source without its settings is skipped
    at run time with a line saying what to set.
    """
    return [
        dg.AssetSpec(
            source_system_key(source.name),
            description=source.description,
            group_name="sources",
            kinds=set(source.kinds),
        )
        for source in SOURCES.values()
    ]


def not_configured(
    context: dg.AssetExecutionContext, source: Source, missing: str
) -> Iterator[dg.MaterializeResult]:
    """A run that reaches a source this chain has not set up (the UI's "Materialize all", a
    schedule): say so and let everything downstream build on what the lake has.

    Dagster skips every step downstream of an asset that yields nothing, the dbt build among
    them, so each asset reports a materialisation that says nothing was loaded and why.
    """
    context.log.warning(f"{source.name} is not configured, nothing loaded. {missing}")
    for key in sorted(context.selected_asset_keys):
        yield dg.MaterializeResult(
            asset_key=key, metadata={"not_configured": missing, "dagster/row_count": 0}
        )


def landing_assets(source: Source, settings: Settings) -> dg.AssetsDefinition:
    @dlt_assets(
        dlt_source=source.build(settings),
        dlt_pipeline=landing_pipeline(source.name, settings),
        name=f"{source.name}_landing",
        dagster_dlt_translator=LandingTranslator(settings=settings),
        pool=WAREHOUSE_POOL,
    )
    def landing(context: dg.AssetExecutionContext, dlt: DagsterDltResource) -> Iterator:
        missing = source.missing(settings)
        if missing:
            yield from not_configured(context, source, missing)
            return
        if settings.destination == "duckdb":
            wait_for_the_warehouse(context, settings)  # dlt's own error would blame credentials
        with interruptions_stop(), memory_given_back(), landing_held_open(settings):
            # A fresh source object per run: readers keep per-run state (keys already seen).
            try:
                if finished := finish_pending(landing_pipeline(source.name, settings)):
                    context.log.warning(finished.describe("landing"))
                fresh = source.build(settings)
                restarted = restart_changed_tables(source.name, fresh, settings)
                if restarted:
                    context.log.warning(restart_message(source.name, restarted))
                append_where_empty(fresh, landing_pipeline(source.name, settings))
                loaded = dlt.run(context=context, dlt_source=fresh, **load_options(settings))
                yield from qualified(loaded, settings, source.name)
                prune_state_history(landing_pipeline(source.name, settings))
            except Exception as error:
                # The step's error says what `regulars ingest` says: the source, the cause, what to
                # check. The chain stays attached for the run's logs.
                explained = explain(source, error, settings)
                if explained is None:
                    raise
                raise dg.Failure(description=explained) from error

    return landing


def definitions(settings: Settings) -> dg.Definitions:
    return dg.Definitions(
        assets=[
            *source_systems(settings),
            *(landing_assets(source, settings) for source in SOURCES.values()),
        ],
        resources={"dlt": DagsterDltResource()},
    )
