"""Suppressed guests dropped at extract, before dlt writes anything, and out of the landing files.

`regulars forget` deletes what Regulars holds of a guest, but the chain's systems go on sending
them: new orders and profile changes from the ordering DB, new events and deliveries in the
landing zone. The gate's `suppression.purge` deletes such rows once landed, which leaves them in
dlt's load package files and in the warehouse file's free blocks. So every source's resources
drop the rows of suppressed guests as they are extracted (`without_suppressed`): dlt never
writes them. Rows read from landing-zone files take the matching lines out of those files too,
as forget does: the landing zone is Regulars' copy, not the chain's system.

The hashes come from `suppression.hash_list_path`, which forget writes (hashes only, owner-only),
read once per run when the first row arrives: nothing happens when a source is only built for
Dagster's graph. A row belongs to a guest by `suppression.GUEST_COLUMNS` and `JSON_PATHS`, the
gate's rules. Each drop is logged with its count and reason, and counted in
`privacy.suppressed_rows` (by way of `suppression.log_extract_drop`, as the gate runs next); the
row itself is kept nowhere.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator

import dlt
import pyarrow as pa
from dlt.common.storages.load_package import CurrentLoadPackageStateNotAvailable
from dlt.sources import DltSource

from regulars.privacy import suppression
from regulars.privacy.forget import Guest, local_root, rewrite_landing_files
from regulars.privacy.hashing import normalise_email, normalise_phone
from regulars.settings import Settings

log = logging.getLogger("regulars.privacy")

LANDING_FILE = "_landing_file"


class SuppressedRows:
    """The map every resource's rows go through: rows of suppressed guests are dropped."""

    def __init__(self, settings: Settings, source_name: str, table_name: str, json_columns):
        self.settings = settings
        self.where = f"{source_name}.{table_name}"
        self.json_columns = set(json_columns)
        self.hashes: dict[str, frozenset[str]] | None = None

    def _row_hits(self, row: dict) -> dict[str, str]:
        return suppression.suppressed_identifiers(row, self.hashes, self.json_columns)

    def __call__(self, item) -> Iterator:
        if self.hashes is None:
            self.hashes = suppression.read_hash_list(self.settings)
        if not self.hashes:
            yield item
            return
        if isinstance(item, pa.RecordBatch):
            item = pa.Table.from_batches([item])
        if isinstance(item, pa.Table):
            yield from self._table(item)
        elif isinstance(item, dict):
            hits = self._row_hits(item)
            if hits:
                self._dropped(1, [(item.get(LANDING_FILE), hits)])
            else:
                yield item
        else:
            yield item

    def _table(self, table: pa.Table) -> Iterator[pa.Table]:
        watched = [
            name
            for name in table.column_names
            if name in suppression.GUEST_COLUMNS or name in self.json_columns
        ]
        if not watched:
            yield table
            return
        columns = {name: table.column(name).to_pylist() for name in watched}
        files = (
            table.column(LANDING_FILE).to_pylist()
            if LANDING_FILE in table.column_names
            else [None] * table.num_rows
        )
        keep, dropped = [], []
        for index in range(table.num_rows):
            hits = self._row_hits({name: columns[name][index] for name in watched})
            keep.append(not hits)
            if hits:
                dropped.append((files[index], hits))
        if dropped:
            self._dropped(len(dropped), dropped)
            table = table.filter(pa.array(keep))
        if table.num_rows:
            yield table

    def _dropped(self, rows: int, dropped: list[tuple[str | None, dict[str, str]]]) -> None:
        log.warning(
            "%s: %d row(s) of suppressed guests dropped before landing (regulars forget).",
            self.where,
            rows,
        )
        try:
            load_id = dlt.current.load_package_state()["load_id"]
        except CurrentLoadPackageStateNotAvailable:  # rows read outside a pipeline run
            load_id = "unknown"
        suppression.log_extract_drop(self.settings, self.where, load_id, rows)
        names = {name for name, _ in dropped if name}
        root = local_root(self.settings.landing_url)
        if not names or root is None:
            return
        # The lines these rows came from, found as forget finds them: by the identifiers the
        # rows hold (in memory only, for this rewrite), as written and normalised.
        guest = Guest(kind="suppressed")
        for _, hits in dropped:
            for kind, value in hits.items():
                if kind == "email":
                    guest.emails.update({value, normalise_email(value) or value})
                elif kind == "phone":
                    guest.phones.update({value, normalise_phone(value) or value})
                elif kind == "customer_id":
                    guest.customer_ids.add(value.strip())
                else:
                    guest.anonymous_ids.add(value)
        rewrite_landing_files(root, guest, names=names)


def without_suppressed(source: DltSource, settings: Settings) -> DltSource:
    """`source` with every selected resource dropping suppressed guests' rows as extracted."""
    for resource in source.selected_resources.values():
        hints = resource.columns if isinstance(resource.columns, dict) else {}
        json_columns = [name for name, hint in hints.items() if hint.get("data_type") == "json"]
        resource.add_yield_map(SuppressedRows(settings, source.name, resource.name, json_columns))
    return source
