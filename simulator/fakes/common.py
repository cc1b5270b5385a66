"""What both fakes share: a request and response, scripted faults, number formats, the world's
"today"."""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import duckdb

from simulator.world import read_state


@dataclass
class Request:
    """One HTTP request, already split: the path without its query, the query as single values."""

    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]  # lower-cased names
    body: bytes = b""
    host: str = "127.0.0.1"

    def bearer_token(self) -> str | None:
        auth = self.headers.get("authorization", "")
        scheme, _, token = auth.partition(" ")
        if scheme.lower() in ("bearer", "oauth") and token.strip():
            return token.strip()
        return None


@dataclass
class Response:
    status: int
    body: Any
    headers: dict[str, str] = field(default_factory=dict)

    def encode(self) -> bytes:
        return json.dumps(self.body, ensure_ascii=False).encode()


@dataclass
class _Fault:
    kind: str
    count: int
    after: int = 0
    path_contains: str = ""


class Faults:
    """Failures scripted for the next requests: `add("quota", count=2, after=1)` lets one request
    through, then fails the two after it. Thread-safe; control endpoints never consume faults."""

    def __init__(self, kinds: tuple[str, ...]):
        self.kinds = kinds
        self._pending: list[_Fault] = []
        self._lock = threading.Lock()

    def add(self, kind: str, count: int = 1, after: int = 0, path_contains: str = "") -> None:
        if kind not in self.kinds:
            raise ValueError(f"unknown fault {kind!r}; this fake knows {', '.join(self.kinds)}")
        if count < 0 or after < 0:
            raise ValueError("count and after must be >= 0")
        with self._lock:
            self._pending.append(_Fault(kind, count, after, path_contains))

    def load(self, spec: dict[str, Any]) -> None:
        """`{"quota": 2}` or `{"quota": {"count": 2, "after": 1, "path_contains": "/insights"}}`."""
        for kind, value in spec.items():
            if isinstance(value, int):
                self.add(kind, value)
            elif isinstance(value, dict):
                keys = ("count", "after", "path_contains")
                self.add(kind, **{k: value[k] for k in keys if k in value})
            else:
                raise ValueError(f"fault {kind!r}: expected a count or an object, got {value!r}")

    def clear(self) -> None:
        with self._lock:
            self._pending.clear()

    def pending(self) -> list[dict[str, Any]]:
        with self._lock:
            return [vars(f).copy() for f in self._pending if f.count > 0]

    def take(self, path: str, kinds: tuple[str, ...] | None = None) -> str | None:
        """The fault this request suffers, if any (consuming it), among `kinds` (default: all)."""
        with self._lock:
            for fault in self._pending:
                if fault.count <= 0 or fault.path_contains not in path:
                    continue
                if kinds is not None and fault.kind not in kinds:
                    continue
                if fault.after > 0:
                    fault.after -= 1
                    continue
                fault.count -= 1
                return fault.kind
            self._pending = [f for f in self._pending if f.count > 0]
        return None


def format_money(value: float | None) -> str:
    """A money amount as the APIs send it: a plain decimal string, at most two decimals."""
    if value is None:
        return "0"
    rounded = round(float(value), 2)
    if rounded == int(rounded):
        return str(int(rounded))
    return f"{rounded:.2f}".rstrip("0").rstrip(".")


def connect() -> duckdb.DuckDBPyConnection:
    """A private in-memory DuckDB per request: connections are not shared between threads."""
    con = duckdb.connect()
    con.execute("SET threads = 1")
    return con


def parquet_sql(path: Path) -> str:
    """A FROM item for a parquet file (paths are ours, but quote them properly anyway)."""
    return "read_parquet('" + str(path).replace("'", "''") + "')"


def world_today(data_dir: Path, fallback_sql: str | None = None) -> date:
    """The world's as-of date: world.json in data_dir if there is one, else the latest date in the
    data (`fallback_sql` returns it as a DATE), else the real today."""
    try:
        return read_state(data_dir)[1]
    except (FileNotFoundError, ValueError, KeyError, TypeError):
        pass
    if fallback_sql:
        try:
            with connect() as con:
                row = con.execute(fallback_sql).fetchone()
            if row and row[0] is not None:
                return row[0]
        except duckdb.Error:
            pass
    return date.today()
