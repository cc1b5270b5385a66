"""Audience config: channels with the consent each requires, audiences as filters on dim_customers.

The file is YAML (default `regulars/activation/audiences.yml`, overridden by REGULARS_AUDIENCES).
Loading checks its shape; `check_columns` then checks every filter against dim_customers' actual
columns and types. Either raises `ConfigError` naming the file, the audience or channel, and the
field, with what to write instead.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any

import yaml

DEFAULT_PATH = Path(__file__).with_name("audiences.yml")
ENV_VAR = "REGULARS_AUDIENCES"

# The destinations Regulars has an exporter for.
CHANNELS = ("meta", "email", "sms", "push")
NAME = re.compile(r"[a-z][a-z0-9_]*")
# Column types a filter may bound with min / max.
NUMERIC_TYPES = (
    "INT", "BIGINT", "SMALLINT", "TINYINT", "HUGEINT", "UBIGINT", "UINTEGER", "USMALLINT",
    "UTINYINT", "DECIMAL", "DOUBLE", "FLOAT", "REAL", "NUMERIC",
)  # fmt: skip
ORDERED_TYPES = (*NUMERIC_TYPES, "DATE", "TIMESTAMP")


class ConfigError(ValueError):
    """The audience config cannot be used as written."""


@dataclass(frozen=True)
class Condition:
    """One column's test: `values` (accepted values), or `low` / `high` bounds (inclusive)."""

    column: str
    values: tuple[Any, ...] | None = None
    low: Any = None
    high: Any = None

    def sql(self) -> tuple[str, list[Any]]:
        column = f'"{self.column}"'
        if self.values is not None:
            marks = ", ".join("?" for _ in self.values)
            return f"{column} in ({marks})", list(self.values)
        parts, params = [], []
        if self.low is not None:
            parts.append(f"{column} >= ?")
            params.append(self.low)
        if self.high is not None:
            parts.append(f"{column} <= ?")
            params.append(self.high)
        return "(" + " and ".join(parts) + ")", params

    def holds(self, row: Mapping[str, Any]) -> bool:
        value = row.get(self.column)
        if value is None:
            return False  # as SQL: a null is in no list and within no bounds
        if self.values is not None:
            return value in self.values
        return (self.low is None or value >= self.low) and (self.high is None or value <= self.high)


@dataclass(frozen=True)
class Filter:
    """Conditions that must all hold (`mode` all) or of which one must hold (`mode` any)."""

    mode: str
    parts: tuple[Condition | Filter, ...]

    def sql(self) -> tuple[str, list[Any]]:
        if not self.parts:
            return "true", []
        clauses, params = [], []
        for part in self.parts:
            clause, values = part.sql()
            clauses.append(clause)
            params += values
        joiner = " and " if self.mode == "all" else " or "
        return "(" + joiner.join(clauses) + ")", params

    def holds(self, row: Mapping[str, Any]) -> bool:
        results = (part.holds(row) for part in self.parts)
        return all(results) if self.mode == "all" else any(results)

    def conditions(self) -> list[Condition]:
        found: list[Condition] = []
        for part in self.parts:
            found += part.conditions() if isinstance(part, Filter) else [part]
        return found


@dataclass(frozen=True)
class Channel:
    name: str
    consent: Filter  # what a guest must satisfy to be exported to this channel


@dataclass(frozen=True)
class Audience:
    name: str
    description: str
    filter: Filter
    channels: tuple[str, ...]
    meta_custom_audience_id: str | None = None


@dataclass(frozen=True)
class ActivationConfig:
    path: Path
    channels: dict[str, Channel]
    audiences: dict[str, Audience]

    def check_columns(self, columns: Mapping[str, str], audience: str | None = None) -> None:
        """Every filtered column exists in dim_customers (`columns`: name -> DuckDB type) and
        its values have the column's type: for one audience and its channels, or for all."""
        audiences = [self.audiences[audience]] if audience else list(self.audiences.values())
        for name in dict.fromkeys(c for a in audiences for c in a.channels):
            channel = self.channels[name]
            where = f"channel {name!r}, field consent"
            for condition in channel.consent.conditions():
                _check_condition(self.path, where, condition, columns)
        for each in audiences:
            where = f"audience {each.name!r}, field filter"
            for condition in each.filter.conditions():
                _check_condition(self.path, where, condition, columns)


def config_path() -> Path:
    return Path(os.environ.get(ENV_VAR) or DEFAULT_PATH)


def load_config(path: Path | str | None = None) -> ActivationConfig:
    path = Path(path) if path is not None else config_path()
    try:
        raw = yaml.safe_load(path.read_text())
    except FileNotFoundError:
        raise ConfigError(
            f"{path}: no audience config there; set {ENV_VAR} to an existing file or unset it to "
            f"use {DEFAULT_PATH}."
        ) from None
    except yaml.YAMLError as error:
        raise ConfigError(f"{path}: not valid YAML: {error}") from None
    return parse_config(raw, path)


def parse_config(raw: Any, path: Path) -> ActivationConfig:
    def fail(where: str, message: str) -> ConfigError:
        return ConfigError(f"{path}: {where}: {message}")

    if not isinstance(raw, dict) or set(raw) - {"channels", "audiences"}:
        raise fail("top level", "expected a mapping with `channels` and `audiences` only.")
    channels: dict[str, Channel] = {}
    raw_channels = raw.get("channels") or {}
    if not isinstance(raw_channels, dict):
        raise fail("channels", "expected a mapping of channel name -> {consent: ...}.")
    for name, spec in raw_channels.items():
        where = f"channel {name!r}"
        if name not in CHANNELS:
            raise fail(where, f"unknown channel; Regulars exports to {', '.join(CHANNELS)}.")
        if not isinstance(spec, dict) or not spec.get("consent"):
            raise fail(
                f"{where}, field consent",
                "every channel needs a consent rule, e.g. `consent: {has_email_consent: true}`.",
            )
        if set(spec) - {"consent"}:
            raise fail(where, f"unknown fields {sorted(set(spec) - {'consent'})}; only consent.")
        consent = _filter(spec["consent"], lambda m, w=where: fail(f"{w}, field consent", m))
        if not any(
            c.column.endswith("_consent") and c.values == (True,) for c in consent.conditions()
        ) or any(isinstance(part, Filter) and part.mode == "any" for part in consent.parts):
            raise fail(
                f"{where}, field consent",
                "a consent rule must require a `has_..._consent: true` column, and every part of "
                "it must hold (no any_of).",
            )
        channels[name] = Channel(name, consent)

    audiences: dict[str, Audience] = {}
    raw_audiences = raw.get("audiences") or {}
    if not isinstance(raw_audiences, dict) or not raw_audiences:
        raise fail("audiences", "expected a mapping of audience name -> definition.")
    for name, spec in raw_audiences.items():
        where = f"audience {name!r}"
        if not isinstance(name, str) or not NAME.fullmatch(name):
            raise fail(where, "names are lower-case letters, digits and underscores.")
        if not isinstance(spec, dict):
            raise fail(where, "expected a mapping with description, filter and channels.")
        unknown = set(spec) - {"description", "filter", "channels", "meta_custom_audience_id"}
        if unknown:
            raise fail(where, f"unknown fields {sorted(unknown)}.")
        description = spec.get("description")
        if not isinstance(description, str) or not description.strip():
            raise fail(f"{where}, field description", "say in a sentence who this audience is.")
        if "filter" not in spec:
            raise fail(f"{where}, field filter", "add a filter on dim_customers columns.")
        flt = _filter(spec["filter"], lambda m, w=where: fail(f"{w}, field filter", m))
        wanted = spec.get("channels")
        if not isinstance(wanted, list) or not wanted:
            raise fail(f"{where}, field channels", f"list one or more of {', '.join(CHANNELS)}.")
        for channel in wanted:
            if channel not in CHANNELS:
                raise fail(
                    f"{where}, field channels",
                    f"unknown channel {channel!r}; choose from {', '.join(CHANNELS)}.",
                )
            if channel not in channels:
                raise fail(
                    f"{where}, field channels",
                    f"channel {channel!r} has no consent rule: add it under `channels:` first.",
                )
        audience_id = spec.get("meta_custom_audience_id")
        if audience_id is not None and not str(audience_id).isdigit():
            raise fail(
                f"{where}, field meta_custom_audience_id",
                f"expected the numeric id of a Meta Custom Audience, got {audience_id!r}.",
            )
        audiences[name] = Audience(
            name=name,
            description=" ".join(description.split()),
            filter=flt,
            channels=tuple(dict.fromkeys(wanted)),
            meta_custom_audience_id=None if audience_id is None else str(audience_id),
        )
    return ActivationConfig(path=path, channels=channels, audiences=audiences)


def _filter(raw: Any, fail) -> Filter:
    """`{column: condition, ...}` (all hold), `{any_of: [filter, ...]}` or `{all_of: [...]}`."""
    if isinstance(raw, dict) and len(raw) == 1 and next(iter(raw)) in ("any_of", "all_of"):
        key, items = next(iter(raw.items()))
        if not isinstance(items, list) or not items:
            raise fail(f"{key} takes a non-empty list of filters.")
        return Filter("any" if key == "any_of" else "all", tuple(_filter(i, fail) for i in items))
    if not isinstance(raw, dict) or not raw:
        raise fail(
            "expected a mapping of dim_customers column -> accepted values (a list), a single "
            "value, or {min: ..., max: ...}; or any_of / all_of with a list of such mappings."
        )
    parts: list[Condition | Filter] = []
    for column, value in raw.items():
        if column in ("any_of", "all_of"):
            parts.append(_filter({column: value}, fail))
            continue
        if not isinstance(column, str) or not NAME.fullmatch(column):
            raise fail(f"{column!r} is not a column name.")
        parts.append(_condition(column, value, fail))
    return Filter("all", tuple(parts))


def _condition(column: str, value: Any, fail) -> Condition:
    if isinstance(value, dict):
        if not value or set(value) - {"min", "max"}:
            raise fail(f"{column}: bounds are written {{min: ..., max: ...}} (either or both).")
        for key, bound in value.items():
            if isinstance(bound, bool) or not isinstance(bound, int | float | date):
                raise fail(f"{column}: {key} must be a number or a date, got {bound!r}.")
        return Condition(column, low=value.get("min"), high=value.get("max"))
    values = value if isinstance(value, list) else [value]
    if not values:
        raise fail(f"{column}: the list of accepted values is empty.")
    for item in values:
        if item is None or isinstance(item, dict | list):
            raise fail(f"{column}: accepted values are plain values, got {item!r}.")
    return Condition(column, values=tuple(values))


def _check_condition(
    path: Path, where: str, condition: Condition, columns: Mapping[str, str]
) -> None:
    column = condition.column
    if column not in columns:
        raise ConfigError(
            f"{path}: {where}: dim_customers has no column {column!r}; it has "
            f"{', '.join(sorted(columns))}."
        )
    kind = columns[column].upper()
    if condition.values is not None:
        for value in condition.values:
            if not _fits(value, kind):
                raise ConfigError(
                    f"{path}: {where}: {column} is {kind}, so {value!r} can never match; write "
                    f"{_example(kind)}."
                )
    else:
        if not kind.startswith(ORDERED_TYPES):
            raise ConfigError(
                f"{path}: {where}: {column} is {kind}: min / max need a number or date column; "
                "list the accepted values instead."
            )
        for bound in (condition.low, condition.high):
            if bound is not None and not _fits(bound, kind):
                raise ConfigError(
                    f"{path}: {where}: {column} is {kind}, so the bound {bound!r} does not "
                    f"compare; write {_example(kind)}."
                )


def _fits(value: Any, kind: str) -> bool:
    if kind == "BOOLEAN":
        return isinstance(value, bool)
    if isinstance(value, bool):
        return False
    if kind.startswith(("VARCHAR", "TEXT", "STRING")):
        return isinstance(value, str)
    if kind.startswith(("DATE", "TIMESTAMP")):
        return isinstance(value, date | datetime)
    if kind.startswith(NUMERIC_TYPES):
        return isinstance(value, int | float)
    return True


def _example(kind: str) -> str:
    if kind == "BOOLEAN":
        return "true or false"
    if kind.startswith(("VARCHAR", "TEXT", "STRING")):
        return "text values (quote numbers-as-text)"
    if kind.startswith(("DATE", "TIMESTAMP")):
        return "a date like 2025-01-31"
    return "a number"
