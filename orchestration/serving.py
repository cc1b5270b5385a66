"""The serving copy (regulars.serving) as the last asset of the lineage, group `serving`.

It depends on every mart, so any job that rebuilds a mart publishes them again at its end, and
Dagster's lineage runs from each source to the copy BI reads.
"""

import dagster as dg

from ingestion.failures import interruptions_stop
from orchestration.automation import SERVING_GROUP
from orchestration.dbt import dbt_project
from orchestration.pools import WAREHOUSE_POOL, wait_for_the_warehouse
from regulars.serving import (
    ServingError,
    mart_relations,
    postgres_url,
    publish,
    publish_postgres,
    serving_path,
)
from regulars.settings import Settings

SERVING_KEY = dg.AssetKey(["serving", "published"])


def definitions(settings: Settings) -> dg.Definitions:
    relations = mart_relations(dbt_project(settings).manifest_path)

    @dg.asset(
        key=SERVING_KEY,
        deps=[dg.AssetKey([relation.schema, relation.name]) for relation in relations],
        group_name=SERVING_GROUP,
        kinds={"duckdb"},
        owners=["team:analytics-engineering"],
        # It reads the warehouse: no dbt step may be writing it meanwhile.
        pool=WAREHOUSE_POOL,
        description="The marts copied whole into the serving file BI tools read "
        f"({serving_path(settings.warehouse_path).name}, REGULARS_SERVING_PATH), swapped in by "
        "rename so a reader sees one run's marts and never waits on a lock. Which run published "
        "them is in its `published` table, row counts in `published_tables`. With "
        "REGULARS_SERVING_POSTGRES set, the same snapshot then replaces the `marts` schema of "
        "that PostgreSQL database in one transaction.",
    )
    def serving_copy(context: dg.AssetExecutionContext) -> dg.MaterializeResult:
        wait_for_the_warehouse(context, settings, read_only=True)
        with interruptions_stop():
            publication = publish(
                settings.warehouse_path,
                serving_path(settings.warehouse_path),
                relations,
                context.run_id,
            )
        for relation in publication.missing:
            context.log.warning(
                f"{relation.schema}.{relation.name} is not in the warehouse, so the serving "
                "copy has no such table: build it (dbt build --select "
                f"{relation.name}) and publish again."
            )
        postgres = {}
        if url := postgres_url():
            # From the copy just published: PostgreSQL gets the very snapshot DuckDB readers see.
            try:
                loaded = publish_postgres(publication.path, url, workdir=settings.state_dir)
            except ServingError as error:
                raise dg.Failure(description=str(error)) from None
            postgres = {
                "postgres_schema": loaded.schema,
                "postgres_seconds": dg.MetadataValue.float(round(loaded.seconds, 2)),
            }
        return dg.MaterializeResult(
            metadata=postgres
            | {
                "path": dg.MetadataValue.path(str(publication.path)),
                "tables": len(publication.rows),
                "rows": sum(publication.rows.values()),
                "bytes": publication.bytes,
                "seconds": dg.MetadataValue.float(round(publication.seconds, 2)),
                "missing": ", ".join(f"{r.schema}.{r.name}" for r in publication.missing) or "none",
            }
        )

    return dg.Definitions(assets=[serving_copy])
