"""dlt landing assets (dagster-dlt): one asset per dlt resource, fed by its source system."""

from collections.abc import Iterator

import dagster as dg
from dagster_dlt import DagsterDltResource, DagsterDltTranslator, dlt_assets
from dagster_dlt.translator import DltResourceTranslatorData

from ingestion.pipelines import landing_dataset, landing_pipeline, load_options
from ingestion.registry import Source, active_sources
from orchestration.pools import WAREHOUSE_POOL
from regulars.settings import Settings


def source_system_key(source_name: str) -> dg.AssetKey:
    return dg.AssetKey(["sources", source_name])


class LandingTranslator(DagsterDltTranslator):
    """Keys are the relation each resource writes: `landing_<source>/<table>`."""

    def get_asset_spec(self, data: DltResourceTranslatorData) -> dg.AssetSpec:
        source_name = data.resource.source_name
        return (
            super()
            .get_asset_spec(data)
            .replace_attributes(
                key=dg.AssetKey([landing_dataset(source_name), data.resource.name]),
                deps=[source_system_key(source_name)],
                group_name="ingestion",
                owners=["team:data-engineering"],
            )
        )


def source_systems(settings: Settings) -> list[dg.AssetSpec]:
    """The systems Regulars reads, as external assets: the roots of the lineage."""
    return [
        dg.AssetSpec(
            source_system_key(source.name),
            description=source.description,
            group_name="sources",
            kinds=set(source.kinds),
        )
        for source in active_sources(settings)
    ]


def landing_assets(source: Source, settings: Settings) -> dg.AssetsDefinition:
    @dlt_assets(
        dlt_source=source.build(settings),
        dlt_pipeline=landing_pipeline(source.name, settings),
        name=f"{source.name}_landing",
        dagster_dlt_translator=LandingTranslator(),
        pool=WAREHOUSE_POOL,
    )
    def landing(context: dg.AssetExecutionContext, dlt: DagsterDltResource) -> Iterator:
        source.preflight(settings)
        # A fresh source object per run: readers keep per-run state (keys already seen).
        yield from dlt.run(
            context=context, dlt_source=source.build(settings), **load_options(settings)
        )

    return landing


def definitions(settings: Settings) -> dg.Definitions:
    return dg.Definitions(
        assets=[
            *source_systems(settings),
            *(landing_assets(source, settings) for source in active_sources(settings)),
        ],
        resources={"dlt": DagsterDltResource()},
    )
