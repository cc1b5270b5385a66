"""A load that dies half way is finished by the next run: no row lost, none duplicated."""

from __future__ import annotations

import sqlite3

import duckdb
import pytest
from dlt.pipeline.exceptions import PipelineStepFailed

from expectations.promote import promote
from ingestion.ordering import ordering_source
from ingestion.pipelines import landing_pipeline
from regulars.settings import Settings
from simulator import advance_world


def source_ids(settings: Settings, table: str, key: str) -> list[int]:
    with sqlite3.connect(settings.ordering_db_path) as connection:
        rows = connection.execute(f"select {key} from {table} order by 1").fetchall()
        return [row[0] for row in rows]


def lake_ids(settings: Settings, dataset: str, table: str, key: str) -> list[int]:
    with duckdb.connect(str(settings.warehouse_path), read_only=True) as connection:
        rows = connection.execute(f"select {key} from {dataset}.{table} order by 1").fetchall()
        return [row[0] for row in rows]


def small_batches(settings: Settings):
    return ordering_source(credentials=settings.ordering_db_url, chunk_size=50)


def test_a_crash_between_extract_and_load_is_finished_by_the_next_run(tiny_world: Settings):
    pipeline = landing_pipeline("ordering", tiny_world)
    pipeline.extract(small_batches(tiny_world))
    pipeline.normalize()
    # The process dies here: extracted and normalised, never loaded.
    assert pipeline.has_pending_data

    advance_world(tiny_world.data_dir, days=2)  # and the source moves on meanwhile
    landing_pipeline("ordering", tiny_world).run(small_batches(tiny_world))

    expected = source_ids(tiny_world, "orders", "order_id")
    assert lake_ids(tiny_world, "landing_ordering", "orders", "order_id") == expected
    promote("ordering", tiny_world)
    assert lake_ids(tiny_world, "raw_ordering", "orders", "order_id") == expected


def test_a_crash_in_the_middle_of_a_resource_loses_and_repeats_nothing(tiny_world: Settings):
    seen = {"batches": 0}

    def die_on_third_batch(batch):
        seen["batches"] += 1
        if seen["batches"] == 3:
            raise ConnectionError("connection to the ordering DB reset by peer")
        return batch

    crashing = small_batches(tiny_world)
    crashing.resources["order_items"].add_map(die_on_third_batch)
    with pytest.raises(PipelineStepFailed, match="reset by peer"):
        landing_pipeline("ordering", tiny_world).run(crashing)

    landing_pipeline("ordering", tiny_world).run(small_batches(tiny_world))
    promote("ordering", tiny_world)

    for table, key in (("orders", "order_id"), ("order_items", "order_item_id")):
        expected = source_ids(tiny_world, table, key)
        assert lake_ids(tiny_world, "raw_ordering", table, key) == expected, table
