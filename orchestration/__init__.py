"""Dagster definitions: one asset graph from each source system to each mart."""
