"""Concurrency pools: the embedded DuckDB file takes one writer at a time."""

# Every asset that writes the warehouse runs in this pool; var/dagster_home/dagster.yaml limits it
# to one step at a time across runs, so a schedule and a hand-launched run never collide.
WAREHOUSE_POOL = "warehouse"
