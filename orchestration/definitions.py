"""The code location `dagster dev` and every run worker load (pyproject.toml, [tool.dagster]).

Loading it sets no paths: the command line (`regulars ui`, `regulars materialize`) and the
Makefile set DAGSTER_HOME and the paths; dbt gets the warehouse from its launcher. What it holds
is built by orchestration.assembly, which callers with their own settings import instead.
"""

from __future__ import annotations

from orchestration.assembly import build_definitions
from regulars.settings import load_settings

defs = build_definitions(load_settings())
