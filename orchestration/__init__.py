"""Dagster definitions: one asset graph from each source system to each mart."""

import regulars  # noqa: F401  (first, so its warning filters apply before dagster-dbt loads)
