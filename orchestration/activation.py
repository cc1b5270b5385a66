"""Audiences back to the channels (regulars.activation) as assets, group `activation`.

One asset per audience (its members, selected from dim_customers into
`activation.audience_members`) and one per audience x channel (the export: file, API sync for
Meta where configured, export log). The config is read when the definitions load, so a malformed
file fails there, naming the file, audience and field; filters are checked against
dim_customers' columns when an audience materialises.
"""

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime

import dagster as dg
import duckdb

from orchestration.pools import WAREHOUSE_POOL, wait_for_the_warehouse
from regulars import warehouse
from regulars.activation.config import ActivationConfig, Audience, load_config
from regulars.activation.export import export_channel
from regulars.activation.meta_client import MetaCustomAudiences
from regulars.activation.selection import AUDIENCE_MEMBERS, checked, store_audience
from regulars.settings import Settings

GROUP = "activation"
DIM_CUSTOMERS_KEY = dg.AssetKey(["marts", "dim_customers"])
CONTACTS_KEY = dg.AssetKey(["staging", "stg_ordering__customers"])
OWNERS = ["team:crm"]


def audience_key(audience: str) -> dg.AssetKey:
    return dg.AssetKey(["activation", audience])


def export_key(audience: str, channel: str) -> dg.AssetKey:
    return dg.AssetKey(["activation", audience, channel])


@contextmanager
def _warehouse(settings: Settings) -> Iterator[duckdb.DuckDBPyConnection]:
    conn = warehouse.connect(settings)
    try:
        yield conn
    finally:
        conn.close()


def audience_asset(
    settings: Settings, config: ActivationConfig, audience: Audience
) -> dg.AssetsDefinition:
    @dg.asset(
        key=audience_key(audience.name),
        deps=[DIM_CUSTOMERS_KEY],
        group_name=GROUP,
        description=f"{audience.description} Members in {AUDIENCE_MEMBERS}.",
        kinds={"duckdb"},
        owners=OWNERS,
        pool=WAREHOUSE_POOL,
    )
    def _audience(context: dg.AssetExecutionContext) -> dg.MaterializeResult:
        wait_for_the_warehouse(context, settings)
        with _warehouse(settings) as conn:
            checked(config, conn, audience.name)
            members = store_audience(conn, audience, datetime.now(UTC).replace(tzinfo=None))
            stages = conn.execute(
                f"select lifecycle_stage, count(*) from {AUDIENCE_MEMBERS} "
                "inner join marts.dim_customers using (customer_id) "
                "where audience = ? group by 1 order by 1",
                [audience.name],
            ).fetchall()
        context.log.info("%s: %d members", audience.name, members)
        return dg.MaterializeResult(
            metadata={
                "dagster/row_count": members,
                "members_by_lifecycle_stage": dict(stages),
                "config": str(config.path),
            }
        )

    return _audience


def export_description(audience: Audience, channel: str) -> str:
    return (
        f"Audience `{audience.name}` exported to {channel}: {audience.description.strip()} "
        f"Only its guests with {channel} consent are sent."
    )


def export_asset(
    settings: Settings, config: ActivationConfig, audience: Audience, channel: str
) -> dg.AssetsDefinition:
    @dg.asset(
        key=export_key(audience.name, channel),
        deps=[audience_key(audience.name), DIM_CUSTOMERS_KEY, CONTACTS_KEY],
        group_name=GROUP,
        # The graph labels an asset by its key's last part, the channel: the description, tags
        # and metadata name the audience it sends.
        description=export_description(audience, channel),
        kinds={"duckdb", "meta" if channel == "meta" else "file"},
        # A tag value holds at most 63 characters; the metadata always names the audience.
        tags={"channel": channel}
        | ({"audience": audience.name} if len(audience.name) <= 63 else {}),
        metadata={"audience": audience.name, "channel": channel},
        owners=OWNERS,
        pool=WAREHOUSE_POOL,
    )
    def _export(context: dg.AssetExecutionContext) -> dg.MaterializeResult:
        wait_for_the_warehouse(context, settings)
        client = None
        if channel == "meta" and audience.meta_custom_audience_id:
            client = MetaCustomAudiences.from_config()
        with _warehouse(settings) as conn:
            result = export_channel(conn, settings, config, audience, channel, client)
        context.log.info(
            "%s -> %s: %d members (+%d, -%d), %s",
            audience.name,
            channel,
            result.members,
            result.added,
            result.removed,
            result.response_summary,
        )
        return dg.MaterializeResult(
            metadata={
                "audience": audience.name,
                "channel": channel,
                "dagster/row_count": result.members,
                "added": result.added,
                "removed": result.removed,
                "file": dg.MetadataValue.path(str(result.file_path)),
                "http_status": result.http_status,
                "response": result.response_summary,
            }
        )

    return _export


def definitions(settings: Settings) -> dg.Definitions:
    config = load_config()
    assets: list[dg.AssetsDefinition] = []
    for audience in config.audiences.values():
        assets.append(audience_asset(settings, config, audience))
        assets += [export_asset(settings, config, audience, c) for c in audience.channels]
    return dg.Definitions(assets=assets)
