"""The gate's own settings: bounds every suite shares, and why each has its value."""

from __future__ import annotations

import os
from datetime import timedelta

import pandas as pd

# No row of the chain can be older than the chain itself. The default predates every store the
# demo world can have (the simulator backdates store set-up by at most about four years before a
# world's first day, and demo worlds start in 2025), so a timestamp before it is a zero date, an
# epoch or a parsing accident. A real chain sets the day its first store was set up.
CHAIN_OPENED_ON_VARIABLE = "REGULARS_CHAIN_OPENED_ON"
DEFAULT_CHAIN_OPENED_ON = "2015-01-01"

# A source clock slightly ahead of ours is not bad data; a timestamp further ahead is.
CLOCK_SKEW = timedelta(days=1)

# A required column that is entirely null in a batch this big was dropped or renamed upstream
# (dlt keeps the old column and fills it with nulls): that is the schema, not the rows, so the
# batch is held. Below this size, one or two bad rows can be all the rows: they are quarantined.
SCHEMA_DRIFT_MIN_ROWS = 50

# The Data Docs index lists this many validations, newest first: the site is for looking at
# recent batches, and an index rebuilt over the whole history after every batch would make each
# batch slower than the last.
DATA_DOCS_VALIDATIONS_SHOWN = 200


def chain_opened_at() -> pd.Timestamp:
    """The first instant a row of the chain can carry (REGULARS_CHAIN_OPENED_ON, a date)."""
    return pd.Timestamp(os.environ.get(CHAIN_OPENED_ON_VARIABLE, DEFAULT_CHAIN_OPENED_ON), tz="UTC")
