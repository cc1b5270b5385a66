"""Right to be forgotten: erase a guest from everything Regulars keeps, suppress their future data.

`forget(identifier, settings)` takes a customer id, an email or a phone number and:

1. Resolves the guest from the warehouse (every `customers`-like table of the landing, lake and
   quarantine, whose rows hold customer_id with email or phone): their customer id, every email
   and phone their profile rows ever held (normalised as `regulars.privacy.hashing` does),
   the anonymous ids their events tie to them (events carrying their userId, alias calls'
   previous ids) and their order ids (ordering and old-POS orders, the latter keyed by phone).
   An email or phone held by two customers is ambiguous: nothing changes and the error asks for
   the customer id. Nothing found anywhere: nothing changes, the error says so.
2. Rewrites the landing zone files (`REGULARS_LANDING_URL`: events, messaging, telemetry) and the
   order-history exports (CSV / Parquet) without the guest's lines or rows: each file is written
   under a temporary name and renamed over the old one, keeping its format and its modification
   time (so the incremental file readers and the new-files sensor do not read it again).
3. In one DuckDB transaction: records the guest's suppression hashes, deletes their rows from
   every base table of every schema (landing_*, raw_* with quarantine_* and gate_audit, the dlt
   `_staging` scratch copies, intermediate and marts tables, incremental ones included, and dlt
   nested tables through `_dlt_root_id`), and writes the deletion log.
4. Deletes the copies dlt kept of files it loaded (`<state>/dlt_pipelines/*/load/loaded/*/
   completed_jobs`: pipelines now delete them after each load, `ingestion.pipelines`); a pipeline
   with a load package still pending would load the guest again, so forget refuses to start
   while one exists (checked once it holds the warehouse, so no load can start in between).
   Audience export files past their retention go (`regulars.activation.retention`), and GX Data
   Docs files that name the guest (the gate stores no row values in them any more).
5. Writes the suppression hashes to a file the sources' extract reads (`regulars.privacy.
   extract`: a suppressed guest's new rows are dropped before dlt writes them), then copies the
   warehouse to a new file and renames it over the old one: DuckDB keeps deleted rows in free
   blocks of the file, readable with a byte search, until they are reused.
6. Publishes the serving copy again from the erased warehouse, and returns the lake sources
   that lost rows: the caller (`regulars forget`, or the `forget_guest` job's sensor) rebuilds
   what reads them through Dagster (`orchestration.privacy`), so aggregates no longer count the
   guest, their checks run, and both runs are on record in the instance.

What is matched, by column name in every table (`suppression.GUEST_COLUMNS` and `JSON_PATHS`):
customer_id, user_id, anonymous_id, previous_id, email, recipient, phone and their JSON
counterparts, plus order_id for the guest's orders; then in every text or JSON column (payloads,
quarantined records, file lines) the literal email, phone (E.164 and national form), anonymous
ids, and the customer and order ids where a JSON key names them (`"userId": "347"`): an id is
never matched as a bare substring, so customer 34 does not take customer 347's rows. Names are
never matched on their own (namesakes): a name goes with the rows found by the ids above.

Not erased: the chain's own ordering DB (the source system is not Regulars' to change; the
suppression list makes every later load drop the guest, see `suppression.purge`), and the
simulator's truth file. The suppression list holds SHA-256 hashes of normalised identifiers, the
deletion log the identifier's kind and row counts per location: never the identifier. A hash of
a small id or a known email can be confirmed by whoever holds the value, which is what
suppression needs; it cannot be read back into a guest.

DuckDB takes one writer: forget holds the warehouse for its whole run (Dagster runs it in the
warehouse pool), and if another process has the file it stops before changing anything. Forget
run again for a guest already forgotten finishes what a crash left (files, the file rewrite).
Only the DuckDB destination is supported: on the filesystem destination the lake's Parquet files
are append-only dlt loads, and forget refuses rather than erase half of a guest.
"""

from __future__ import annotations

import fcntl
import gzip
import io
import json
import os
import re
import struct
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from regulars import warehouse
from regulars.privacy import suppression
from regulars.privacy.hashing import normalise_email, normalise_phone, sha256_hex
from regulars.settings import Settings, chain_phone_country_code

KINDS = ("customer_id", "email", "phone")
SKIPPED_SCHEMAS = {suppression.SCHEMA, "information_schema", "pg_catalog"}
ID_KEYS = ("customer_id", "customerId", "user_id", "userId")
ORDER_KEYS = ("order_id", "orderId")
LANDING_SUFFIXES = (".ndjson.gz", ".ndjson", ".jsonl", ".json")
EXPORT_SUFFIXES = (".csv", ".parquet")
KEYS_TABLE = "forget_keys"
# struct flock (Linux): a write lock from offset 0 to the end; l_pid 0, as OFD locks require.
WHOLE_FILE_WRITE_LOCK = struct.pack("hhqqi", fcntl.F_WRLCK, os.SEEK_SET, 0, 0, 0)


class ForgetError(Exception):
    """Forget stopped; the message says why and what to do (and whether anything changed)."""


class GuestNotFound(ForgetError):
    pass


class AmbiguousGuest(ForgetError):
    pass


class WarehouseBusy(ForgetError):
    pass


def identifier_kind(identifier: str, kind: str | None = None) -> str:
    """customer_id, email or phone: `kind` when given, else from the identifier's shape.

    An email has an `@`; a phone starts with `+` or `0`, or has at least 10 digits (ids here are
    far shorter); anything else of digits is a customer id.
    """
    if kind is not None:
        if kind not in KINDS:
            raise ForgetError(f"Unknown identifier kind {kind!r}: use one of {', '.join(KINDS)}.")
        return kind
    text = identifier.strip()
    if "@" in text:
        return "email"
    digits = re.sub(r"[^0-9]", "", text)
    if text.startswith(("+", "0")) or len(digits) >= 10:
        return "phone"
    if text.isdigit():
        return "customer_id"
    raise ForgetError(
        f"Cannot tell what {identifier!r} is: give a customer id, an email or a phone number, "
        "or say which with --kind."
    )


def normalised(kind: str, identifier: str) -> str:
    value = {
        "email": normalise_email,
        "phone": normalise_phone,
        "customer_id": lambda text: text.strip() or None,
    }[kind](identifier)
    if value is None:
        raise ForgetError(f"{identifier!r} is not a valid {kind.replace('_', ' ')}.")
    return value


@dataclass
class Guest:
    """Everything that identifies one guest in Regulars' data (held in memory only)."""

    kind: str
    customer_ids: set[str] = field(default_factory=set)
    emails: set[str] = field(default_factory=set)
    phones: set[str] = field(default_factory=set)
    anonymous_ids: set[str] = field(default_factory=set)
    order_ids: set[str] = field(default_factory=set)

    def identity_hashes(self) -> list[tuple[str, str]]:
        """(kind, SHA-256) of every identifier: the suppression entries."""
        values = {
            "customer_id": self.customer_ids,
            "email": self.emails,
            "phone": self.phones,
            "anonymous_id": self.anonymous_ids,
        }
        return sorted({(kind, sha256_hex(v)) for kind, found in values.items() for v in found})

    def keys(self) -> list[tuple[str, str]]:
        return self.identity_hashes() + sorted(("order_id", sha256_hex(v)) for v in self.order_ids)

    def text_pattern(self) -> str | None:
        """A regex (RE2 and Python alike) finding the guest in free text or serialised JSON."""
        literals = [*self.emails, *self.anonymous_ids]
        country_code = chain_phone_country_code()
        for phone in self.phones:
            literals.append(phone)
            if country_code and phone.startswith(country_code):
                # The national form the chain's own systems may write (`08...`, [chain] country).
                literals.append("0" + phone[len(country_code) :])
        parts = [re.escape(value) for value in sorted(literals) if value]
        for keys, ids in ((ID_KEYS, self.customer_ids), (ORDER_KEYS, self.order_ids)):
            if ids:
                names = "|".join(keys)
                values = "|".join(re.escape(value) for value in sorted(ids))
                parts.append(f'"(?:{names})"\\s*:\\s*"?(?:{values})"?\\s*[,}}]')
        return f"(?i)(?:{'|'.join(parts)})" if parts else None


@dataclass
class Removal:
    location_kind: str  # table, landing_files, export_files, dlt_load_files
    location: str
    rows: int
    files: int = 0


@dataclass
class ForgetResult:
    request_id: str
    identifier_kind: str
    removals: list[Removal]
    # Lake sources that lost rows: what reads them is rebuilt by the caller, through Dagster
    # (orchestration.privacy), so the runs and their checks are on record.
    affected_sources: list[str]

    @property
    def rows_removed(self) -> int:
        return sum(removal.rows for removal in self.removals)


# --- the warehouse ------------------------------------------------------------------------------


@contextmanager
def warehouse_writer(settings: Settings) -> Iterator[duckdb.DuckDBPyConnection]:
    """The warehouse opened for writing, or a clear error if another process holds it."""
    if not settings.warehouse_path.exists():
        raise ForgetError(f"No warehouse at {settings.warehouse_path}: there is nothing to erase.")
    try:
        connection = warehouse.connect(settings)
    except duckdb.IOException as error:
        raise WarehouseBusy(
            f"The warehouse {settings.warehouse_path} is in use by another process "
            f"({str(error).splitlines()[0]}). Wait for the running Dagster run, dbt or "
            "`regulars ingest` to finish (or stop it), then run forget again; nothing was changed."
        ) from None
    try:
        connection.execute("set enable_progress_bar = false")
        suppression.register_functions(connection)
        yield connection
    finally:
        connection.close()


def _searchable(connection: duckdb.DuckDBPyConnection) -> dict:
    return {
        key: shape
        for key, shape in suppression.table_shapes(connection).items()
        if key[0] not in SKIPPED_SCHEMAS and not key[1].startswith("_dlt_")
    }


def _relations(shapes: dict, identifying: tuple[str, ...], fields: tuple[str, ...]) -> str | None:
    """One relation of `fields` (as text, null where a table lacks one) over every table that has
    `identifying[0]` and any other of `identifying`, and over the quarantined records of tables
    whose rows have them (a held row is the guest's too)."""
    selects = []
    first, others = identifying[0], identifying[1:]
    for shape in shapes.values():
        if first in shape.columns and any(name in shape.columns for name in others):
            columns = ", ".join(
                f'cast("{name}" as varchar) as {name}'
                if name in shape.columns
                else f"cast(null as varchar) as {name}"
                for name in fields
            )
            selects.append(f"select {columns} from {shape.qualified}")
        elif shape.name.startswith("quarantine_") and "record" in shape.columns:
            present = f"json_extract_string(record, '$.{first}') is not null"
            columns = ", ".join(
                f"json_extract_string(record, '$.{name}') as {name}" for name in fields
            )
            selects.append(f"select {columns} from {shape.qualified} where {present}")
    return " union all ".join(selects) or None


def resolve(connection: duckdb.DuckDBPyConnection, identifier: str, kind: str) -> Guest:
    """The guest behind one identifier, with every id and contact their rows hold."""
    value = normalised(kind, identifier)
    shapes = _searchable(connection)
    guest = Guest(kind=kind)
    profiles = _relations(
        shapes, ("customer_id", "email", "phone"), ("customer_id", "email", "phone")
    )
    if profiles:
        match = {
            "customer_id": "trim(customer_id) = $value",
            "email": "regulars_normalise_email(email) = $value",
            "phone": "regulars_normalise_phone(phone) = $value",
        }[kind]
        ids = [
            row[0]
            for row in connection.execute(
                f"select distinct trim(customer_id) from ({profiles}) "
                f"where customer_id is not null and {match}",
                {"value": value},
            ).fetchall()
        ]
        if len(ids) > 1:
            raise AmbiguousGuest(
                f"That {kind.replace('_', ' ')} belongs to {len(ids)} customers. Run forget with "
                "the customer id of the guest who asked (the chain's ordering system shows it); "
                "nothing was changed."
            )
        guest.customer_ids.update(ids)
        if ids:
            for email, phone in connection.execute(
                f"select distinct email, phone from ({profiles}) where trim(customer_id) = $id",
                {"id": ids[0]},
            ).fetchall():
                guest.emails.update(filter(None, [normalise_email(email)]))
                guest.phones.update(filter(None, [normalise_phone(phone)]))
    {"customer_id": guest.customer_ids, "email": guest.emails, "phone": guest.phones}[kind].add(
        value
    )
    events = _relations(
        shapes, ("user_id", "anonymous_id"), ("user_id", "anonymous_id", "previous_id")
    )
    if events and guest.customer_ids:
        for anonymous_id, previous_id in connection.execute(
            f"select distinct anonymous_id, previous_id from ({events}) "
            "where trim(user_id) in (select unnest($ids))",
            {"ids": sorted(guest.customer_ids)},
        ).fetchall():
            guest.anonymous_ids.update(filter(None, [anonymous_id, previous_id]))
    _load_keys(connection, guest.identity_hashes())
    for shape in shapes.values():
        if "order_id" not in shape.columns:
            continue
        conditions = suppression.column_predicates(shape, KEYS_TABLE)
        if conditions:
            guest.order_ids.update(
                row[0]
                for row in connection.execute(
                    f"select distinct cast(order_id as varchar) from {shape.qualified} "
                    f"where order_id is not null and ({' or '.join(conditions)})"
                ).fetchall()
            )
    return guest


def _load_keys(connection: duckdb.DuckDBPyConnection, keys: list[tuple[str, str]]) -> None:
    connection.execute(
        f"create or replace temp table {KEYS_TABLE} (hash_kind varchar, guest_hash varchar)"
    )
    if keys:
        connection.executemany(f"insert into {KEYS_TABLE} values (?, ?)", keys)


def row_predicates(shapes: dict, guest: Guest) -> dict:
    """Per table, the SQL condition true for the guest's rows (given `KEYS_TABLE` is loaded)."""
    pattern = guest.text_pattern()
    predicates = {}
    for key, shape in shapes.items():
        conditions = suppression.column_predicates(shape, KEYS_TABLE)
        if "order_id" in shape.columns:
            conditions.append(
                "sha256(trim(cast(order_id as varchar))) in "
                f"(select guest_hash from {KEYS_TABLE} where hash_kind = 'order_id')"
            )
        if pattern:
            quoted = pattern.replace("'", "''")
            conditions += [
                f"regexp_matches(cast(\"{column}\" as varchar), '{quoted}')"
                for column, data_type in shape.columns.items()
                if data_type in suppression.TEXT_TYPES
            ]
        if conditions:
            predicates[key] = " or ".join(conditions)
    return predicates


def already_suppressed(connection: duckdb.DuckDBPyConnection, guest: Guest) -> bool:
    """Whether the guest was forgotten before: forget then runs again to finish the files and
    rewrite the warehouse file, which a crash or a busy warehouse may have left undone."""
    if not suppression.suppression_keys(connection):
        return False
    (found,) = connection.execute(
        f"select count(*) from {suppression.SUPPRESSED_GUESTS} "
        "where hash_kind || ':' || guest_hash in (select unnest($keys))",
        {"keys": [f"{kind}:{value}" for kind, value in guest.identity_hashes()]},
    ).fetchone()
    return found > 0


def erase_tables(
    connection: duckdb.DuckDBPyConnection, guest: Guest, dry_run: bool = False
) -> list[Removal]:
    """Delete (or, dry, count) the guest's rows in every table; dependants first."""
    shapes = _searchable(connection)
    _load_keys(connection, guest.keys())
    predicates = row_predicates(shapes, guest)
    removals = []
    for shape in suppression.dependants_first(shapes.values()):
        key = (shape.schema, shape.name)
        conditions = [
            c for c in (predicates.get(key), suppression.child_link(shape, shapes, predicates)) if c
        ]
        if not conditions:
            continue
        where = " or ".join(f"({condition})" for condition in conditions)
        verb = "select count(*) from" if dry_run else "delete from"
        (rows,) = connection.execute(f"{verb} {shape.qualified} where {where}").fetchone()
        if rows:
            removals.append(Removal("table", f"{shape.schema}.{shape.name}", int(rows)))
    return removals


# --- files --------------------------------------------------------------------------------------


def local_root(url: str) -> Path | None:
    if url.startswith("file://"):
        return Path(url.removeprefix("file://"))
    return None if "://" in url else Path(url)


def _replace(path: Path, data: bytes) -> None:
    """Write `data` over `path` atomically, keeping its modification time and permissions (an
    owner-only export stays owner-only)."""
    stat = path.stat()
    temporary = path.with_name(f".{path.name}.forget-{uuid.uuid4().hex}.tmp")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, stat.st_mode & 0o777)
    with os.fdopen(descriptor, "wb") as handle:
        handle.write(data)
    os.utime(temporary, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    os.replace(temporary, path)


def _kept_lines(text: str, pattern: re.Pattern) -> tuple[str, int]:
    lines = text.splitlines(keepends=True)
    kept = [line for line in lines if not pattern.search(line)]
    return "".join(kept), len(lines) - len(kept)


def rewrite_landing_files(
    root: Path, guest: Guest, dry_run: bool = False, names: set[str] | None = None
) -> list[Removal]:
    """The landing zone's line files (those called `names`, when given) without the guest's
    lines, per stream (top folder)."""
    source = guest.text_pattern()
    if source is None or not root.exists():
        return []
    pattern = re.compile(source)
    by_stream: dict[str, Removal] = {}
    for path in sorted(root.rglob("*")):
        if not path.is_file() or not path.name.endswith(LANDING_SUFFIXES):
            continue
        if names is not None and path.name not in names:
            continue
        compressed = path.name.endswith(".gz")
        raw = path.read_bytes()
        text = (gzip.decompress(raw) if compressed else raw).decode("utf-8", "surrogateescape")
        if not pattern.search(text):
            continue
        kept, removed = _kept_lines(text, pattern)
        stream = path.relative_to(root).parts[0]
        removal = by_stream.setdefault(stream, Removal("landing_files", f"landing/{stream}", 0, 0))
        removal.rows += removed
        removal.files += 1
        if not dry_run:
            data = kept.encode("utf-8", "surrogateescape")
            _replace(path, gzip.compress(data, mtime=0) if compressed else data)
    return list(by_stream.values())


def _csv_matches(line: str, guest: Guest, pattern: re.Pattern) -> bool:
    if pattern.search(line):
        return True
    for cell in re.split(r"[,;\t|]", line.strip()):
        cell = cell.strip().strip('"')
        if normalise_phone(cell) in guest.phones or normalise_email(cell) in guest.emails:
            return True
        if cell and cell in guest.order_ids:
            return True
    return False


def rewrite_exports(root: Path, guest: Guest, dry_run: bool = False) -> list[Removal]:
    """Order-history exports (CSV, Parquet) without the guest's rows, header kept."""
    if not root.exists():
        return []
    source = guest.text_pattern() or "(?!)"
    pattern = re.compile(source)
    removal = Removal("export_files", "order_history exports", 0, 0)
    for path in sorted(root.rglob("*")):
        if not path.is_file() or not path.name.endswith(EXPORT_SUFFIXES):
            continue
        if path.name.endswith(".csv"):
            text = path.read_bytes().decode("utf-8", "surrogateescape")
            lines = text.splitlines(keepends=True)
            kept = lines[:1] + [
                line for line in lines[1:] if not _csv_matches(line, guest, pattern)
            ]
            removed = len(lines) - len(kept)
            data = "".join(kept).encode("utf-8", "surrogateescape")
        else:
            table = pq.read_table(path)
            mask = pa.array([False] * table.num_rows)
            for name in table.column_names:
                column = table.column(name)
                if pa.types.is_string(column.type) or pa.types.is_integer(column.type):
                    values = pc.cast(column, pa.string()).to_pylist()
                    hits = pa.array(
                        [
                            value is not None
                            and (
                                value in guest.order_ids
                                or normalise_phone(value) in guest.phones
                                or normalise_email(value) in guest.emails
                            )
                            for value in values
                        ]
                    )
                    mask = pc.or_(mask, hits)
            removed = pc.sum(pc.cast(mask, pa.int64())).as_py() or 0
            buffer = io.BytesIO()
            pq.write_table(table.filter(pc.invert(mask)), buffer)
            data = buffer.getvalue()
        if removed:
            removal.rows += removed
            removal.files += 1
            if not dry_run:
                _replace(path, data)
    return [removal] if removal.rows else []


def rewrite_audience_exports(root: Path, guest: Guest, dry_run: bool = False) -> list[Removal]:
    """Audience export files (regulars/activation) without the guest: the email and SMS CSVs
    hold their raw contact, the Meta CSV their hashed one, the push JSON their customer id."""
    if not root.exists():
        return []
    pattern = re.compile(guest.text_pattern() or "(?!)")
    hashes = {sha256_hex(value) for value in (*guest.emails, *guest.phones)}
    removal = Removal("export_files", "audience exports", 0, 0)
    for path in sorted(root.rglob("*")):
        if path.suffix == ".csv":
            lines = path.read_text().splitlines(keepends=True)
            kept = lines[:1] + [
                line
                for line in lines[1:]
                if not _csv_matches(line, guest, pattern)
                and not hashes.intersection(cell.strip() for cell in line.split(","))
            ]
            removed, data = len(lines) - len(kept), "".join(kept)
        elif path.suffix == ".json":
            members = json.loads(path.read_text())
            kept_members = [m for m in members if str(m) not in guest.customer_ids]
            removed, data = len(members) - len(kept_members), json.dumps(kept_members) + "\n"
        else:
            continue
        if removed:
            removal.rows += removed
            removal.files += 1
            if not dry_run:
                _replace(path, data.encode())
    return [removal] if removal.rows else []


def scrub_data_docs(docs_dir: Path, guest: Guest) -> list[Removal]:
    """Delete the GX Data Docs files (stored results, pages) that name the guest.

    The gate no longer stores row values in them (`expectations.suite_runner`); pages rendered
    before that may list failing values. A deleted page leaves a dead link in the index until
    the gate renders the next one, which is better than a guest's email on a static page.
    """
    source = guest.text_pattern()
    if source is None or not docs_dir.exists():
        return []
    pattern = re.compile(source.encode())
    deleted = 0
    for path in docs_dir.rglob("*"):
        if path.is_file() and pattern.search(path.read_bytes()):
            path.unlink()
            deleted += 1
    return [Removal("data_docs_files", "GX Data Docs", 0, deleted)] if deleted else []


def copy_warehouse(connection: duckdb.DuckDBPyConnection, warehouse: Path) -> Path:
    """A fresh copy of the open warehouse beside it, holding only what is live.

    Deleted rows stay in a DuckDB file's free blocks until they are reused, readable with any
    byte search; `COPY FROM DATABASE` writes schemas, tables, views, macros, types and sequences
    (at their current values) into a new file, and no freed block comes with them.
    """
    fresh = warehouse.with_name(f".{warehouse.name}.forget-{uuid.uuid4().hex}.tmp")
    (current,) = connection.execute("select current_database()").fetchone()
    quoted = str(fresh).replace("'", "''")
    connection.execute(f"attach '{quoted}' as regulars_fresh")
    try:
        connection.execute(f'copy from database "{current}" to regulars_fresh')
    except BaseException:
        connection.execute("detach regulars_fresh")
        fresh.unlink(missing_ok=True)
        raise
    connection.execute("detach regulars_fresh")
    return fresh


def swap_in(fresh: Path, warehouse: Path) -> None:
    """Rename the fresh copy over the warehouse while no other process can open either.

    DuckDB's own lock is a POSIX record lock on the file, released when forget's connection
    closes; an open-file-description lock taken on the old file right after keeps DuckDB in
    every other process out until the rename is done (a DuckDB that opened it in between makes
    the lock fail, and the swap is not made). Old and fresh hold the same live data, so a swap
    that is not made loses nothing: the error says how to finish it.
    """
    descriptor = os.open(warehouse, os.O_RDWR)
    try:
        try:
            fcntl.fcntl(descriptor, fcntl.F_OFD_SETLK, WHOLE_FILE_WRITE_LOCK)
        except OSError:
            fresh.unlink(missing_ok=True)
            raise WarehouseBusy(
                f"The guest is erased and suppressed, but another process opened {warehouse} "
                "before forget could replace it with a copy without the deleted rows' free "
                "blocks, nor rebuild the marts. When that process is done, run forget again "
                "with the same identifier (it finds nothing more to erase and rewrites the "
                "file), then materialise the marts so that aggregates no longer count them."
            ) from None
        os.replace(fresh, warehouse)
        directory = os.open(warehouse.parent, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(directory)
        finally:
            os.close(directory)
    finally:
        os.close(descriptor)


def pending_packages(settings: Settings) -> list[str]:
    """dlt pipelines with a load package not yet loaded (it would bring the guest back)."""
    pending = []
    for pipeline in sorted(settings.dlt_pipelines_dir.glob("*")):
        for folder in ("load/new", "load/normalized", "normalize/extracted"):
            if any((pipeline / folder).glob("*")):
                pending.append(pipeline.name)
                break
    return pending


def delete_loaded_copies(settings: Settings) -> list[Removal]:
    """dlt keeps each loaded file in its pipeline folder; nothing reads them again."""
    files = 0
    for path in settings.dlt_pipelines_dir.glob("*/load/loaded/*/completed_jobs/*"):
        if path.is_file() and not path.name.endswith(".sql"):
            path.unlink()
            files += 1
    return [Removal("dlt_load_files", "dlt_pipelines loaded packages", 0, files)] if files else []


# --- the whole request --------------------------------------------------------------------------


def forget(
    identifier: str,
    settings: Settings,
    kind: str | None = None,
    reason: str = "erasure request",
) -> ForgetResult:
    """Erase the guest `identifier` names from the warehouse, landing files and exports, and
    suppress their future data. Raises `ForgetError` (nothing changed) when it cannot."""
    if settings.destination != "duckdb":
        raise ForgetError(
            "forget supports the duckdb destination only (REGULARS_DESTINATION=duckdb): the "
            "filesystem lake's Parquet files cannot be rewritten row by row here."
        )
    # Here, not at the top: regulars.activation's package imports its Meta client (and dlt),
    # which `regulars forget` must not pay for before it has checked its arguments.
    from regulars.activation import retention as exports

    kind = identifier_kind(identifier, kind)
    landing_root = local_root(settings.landing_url)
    exports_root = local_root(settings.order_history_url)
    if landing_root is None or exports_root is None:
        raise ForgetError(
            "forget rewrites local landing and export folders only; REGULARS_LANDING_URL or "
            "SOURCES__ORDER_HISTORY__BUCKET_URL is a remote URL here."
        )
    request_id = str(uuid.uuid4())
    requested_at = datetime.now(UTC)
    with warehouse_writer(settings) as connection:
        # Checked under the lock: a load that started before it would otherwise finish after
        # the erasure and bring the guest back.
        pending = pending_packages(settings)
        if pending:
            raise ForgetError(
                f"dlt has unfinished loads in {', '.join(pending)}: they could bring the guest "
                "back. Run `regulars ingest <source>` (or materialise it in Dagster) to finish "
                "them, then forget again; nothing was changed."
            )
        guest = resolve(connection, identifier, kind)
        table_counts = erase_tables(connection, guest, dry_run=True)
        if not table_counts:
            found_in_files = rewrite_landing_files(
                landing_root, guest, dry_run=True
            ) + rewrite_exports(exports_root, guest, dry_run=True)
            if not found_in_files and not already_suppressed(connection, guest):
                raise GuestNotFound(
                    f"No guest with that {kind.replace('_', ' ')} in the warehouse or the landing "
                    "files; nothing was changed."
                )
        # Files first: a crash there leaves the warehouse untouched, and a second run finds the
        # guest again and finishes the files.
        removals = (
            rewrite_landing_files(landing_root, guest)
            + rewrite_exports(exports_root, guest)
            + rewrite_audience_exports(exports.exports_dir(settings), guest)
            + scrub_data_docs(settings.gx_docs_dir, guest)
        )
        expired = exports.expire(settings)
        if expired:
            removals.append(Removal("export_files", "audience exports past retention", 0, expired))
        connection.execute("begin transaction")
        suppression.ensure_tables(connection)
        connection.executemany(
            f"insert into {suppression.SUPPRESSED_GUESTS} values (?, ?, ?, ?, ?) "
            "on conflict do nothing",
            [
                [hash_kind, guest_hash, request_id, requested_at, reason]
                for hash_kind, guest_hash in guest.identity_hashes()
            ],
        )
        removals = erase_tables(connection, guest) + removals
        removals += delete_loaded_copies(settings)
        connection.executemany(
            f"insert into {suppression.DELETION_LOG} values (?, ?, ?, ?, ?, ?, ?)",
            [
                [
                    request_id,
                    requested_at,
                    kind,
                    removal.location_kind,
                    removal.location,
                    removal.rows,
                    removal.files,
                ]
                for removal in removals
            ],
        )
        connection.execute("commit")
        suppression.write_hash_list(connection, settings)
        fresh = copy_warehouse(connection, settings.warehouse_path)
    swap_in(fresh, settings.warehouse_path)
    sources = sorted(
        {
            removal.location.split(".")[0].removeprefix("raw_")
            for removal in removals
            if removal.location_kind == "table"
            and removal.location.startswith("raw_")
            and not removal.location.split(".")[0].endswith("_staging")
        }
    )
    republish_serving(settings, request_id)
    return ForgetResult(request_id, kind, removals, sources)


def republish_serving(settings: Settings, request_id: str) -> None:
    """The serving copy BI reads (and its PostgreSQL twin) held the guest's mart rows too: it is
    published again from the erased warehouse now, not at the next run. The copy's
    `published.run_id` is `forget-<request id>` until then."""
    from regulars.serving import (
        mart_relations,
        postgres_url,
        publish,
        publish_postgres,
        serving_path,
    )

    target = serving_path(settings.warehouse_path)
    manifest = settings.dbt_project_dir / "target" / "manifest.json"
    if not target.exists() or not manifest.exists():
        return  # nothing published yet; the first run publishes the erased marts
    publication = publish(
        settings.warehouse_path, target, mart_relations(manifest), f"forget-{request_id}"
    )
    if url := postgres_url():
        publish_postgres(publication.path, url, workdir=settings.state_dir)
