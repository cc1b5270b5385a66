"""Concurrency pools: the embedded DuckDB file takes one writer at a time."""

import dagster as dg

from regulars.settings import Settings
from regulars.warehouse import WarehouseLocked, wait_for_warehouse

# Every asset that writes the warehouse runs in this pool; var/dagster_home/dagster.yaml limits it
# to one step at a time across runs, so a schedule and a hand-launched run never collide.
WAREHOUSE_POOL = "warehouse"


def wait_for_the_warehouse(
    context: dg.AssetExecutionContext, settings: Settings, read_only: bool = False
) -> None:
    """Processes outside Dagster are in no pool: a step waits for them with back-off, and fails
    with the locking process named if the file stays locked (regulars.warehouse)."""
    try:
        wait_for_warehouse(settings.warehouse_path, read_only=read_only, log=context.log.warning)
    except WarehouseLocked as error:
        raise dg.Failure(description=str(error)) from None
