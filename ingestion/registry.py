"""Every source Regulars loads, found by name: `ingestion.SOURCE_NAMES` lists them in the order
runs take them, and each source's folder declares its `SOURCE` (ingestion/source_spec.py).

The CLI, the Dagster assets and the validation gate all iterate over this, so adding a source is
its folder (with `SOURCE`), its name in SOURCE_NAMES, its suite (expectations/suites/<name>.py)
and its dbt staging models.
"""

from __future__ import annotations

import importlib

from ingestion import SOURCE_NAMES
from ingestion.source_spec import Source
from regulars.settings import Settings


def _declared(name: str) -> Source:
    source = getattr(importlib.import_module(f"ingestion.{name}"), "SOURCE", None)
    if not isinstance(source, Source) or source.name != name:
        raise ImportError(
            f"ingestion/{name}/__init__.py must declare SOURCE = Source(name={name!r}, ...) "
            "(ingestion/source_spec.py): ingestion.SOURCE_NAMES lists it."
        )
    return source


SOURCES: dict[str, Source] = {name: _declared(name) for name in SOURCE_NAMES}


def configured_sources(settings: Settings) -> list[Source]:
    return [source for source in SOURCES.values() if not source.missing(settings)]


def get_source(name: str) -> Source:
    try:
        return SOURCES[name]
    except KeyError:
        raise KeyError(f"Unknown source {name!r}; known: {', '.join(SOURCES)}") from None
