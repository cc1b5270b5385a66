"""The bounds every suite of the gate shares, and why each has its value."""

from __future__ import annotations

from datetime import timedelta

import pandas as pd

from regulars.settings import load_chain

# A source clock slightly ahead of ours is not bad data; a timestamp further ahead is.
CLOCK_SKEW = timedelta(days=1)

# A required column that is entirely null in a batch this big was dropped or renamed upstream
# (dlt keeps the old column and fills it with nulls): that is the schema, not the rows, so the
# batch is held. Below this size, one or two bad rows can be all the rows: they are quarantined.
SCHEMA_DRIFT_MIN_ROWS = 50

# A landed batch larger than this is validated in parts of about this many rows, so the gate's
# memory follows this bound, not the batch (a year of a large chain's events lands as one batch
# of millions of messages, and GX over pandas holds about a kilobyte a row while it validates).
# Small enough that a part's validation stays near half a gigabyte; large enough that the
# per-validation cost of GX (about a tenth of a second) stays small beside the rows'.
GATE_PART_ROWS = 500_000

# The DuckDB memory limit of the one query that reads a large batch sorted by part, instead of
# the process's (Settings.duckdb_steps_memory_limit): DuckDB would hold the whole sorted batch in
# memory up to that limit while the gate validates each part beside it. Measured on a year of a
# 100,000-guest chain's events (9.2 million messages, the read without payloads): under 3GB the
# query held 3.0 GiB and took 10.4 s; under 1GB, 1.2 GiB in 11.1 s; under 512MB, 0.8 GiB in
# 11.2 s, the rest spilled to disk and read back once.
GATE_SORT_MEMORY_LIMIT = "512MB"

# The Data Docs index lists this many validations, newest first: the site is for looking at
# recent batches, and an index rebuilt over the whole history after every batch would make each
# batch slower than the last.
DATA_DOCS_VALIDATIONS_SHOWN = 200


def chain_currency() -> str | None:
    """`[chain] currency`: the one currency the chain's sources may report money in.

    Unset, nothing says which code is the chain's, so no currency check is made (a chain that
    trades in several is one Regulars does not model: its sums would add unlike units).
    """
    return load_chain().currency


def chain_opened_at() -> pd.Timestamp:
    """The first instant a row of the chain can carry: `[chain] opened_on`, local midnight.

    No row of the chain can be older than the chain. Unset, the bound only catches zero dates,
    epochs and parsing accidents (regulars.settings.EARLIEST_PLAUSIBLE_DAY).
    """
    chain = load_chain()
    return pd.Timestamp(chain.earliest_day, tz=chain.timezone).tz_convert("UTC")
