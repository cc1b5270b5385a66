"""Expectations every source's suite states the same way."""

from __future__ import annotations

from datetime import UTC, datetime

import great_expectations as gx
import pandas as pd

from expectations.bounds import CLOCK_SKEW, chain_currency, chain_opened_at


def keyed(primary_key: str) -> list:
    """A key present on every row and unique within the batch (both copies of a duplicate go)."""
    return [
        gx.expectations.ExpectColumnValuesToNotBeNull(column=primary_key),
        gx.expectations.ExpectColumnValuesToBeUnique(column=primary_key),
    ]


def not_null(*columns: str) -> list:
    return [gx.expectations.ExpectColumnValuesToNotBeNull(column=column) for column in columns]


def in_set(column: str, values) -> gx.expectations.Expectation:
    return gx.expectations.ExpectColumnValuesToBeInSet(column=column, value_set=list(values))


# An id the models read as the ordering platform's bigint key: digits, spaces around allowed.
PLATFORM_ID = r"^\s*[0-9]{1,18}\s*$"


def platform_ids(*columns: str) -> list:
    """Where present, these identifiers must be platform ids (the marts join them as bigint).

    A Segment userId may be any string by the spec, and a webhook may carry anything: `guest-abc`
    or a JSON object is held with the column named, rather than landing as a key no mart can
    join (staging's try_cast would read it as no customer, silently).
    """
    return [
        gx.expectations.ExpectColumnValuesToMatchRegex(column=column, regex=PLATFORM_ID)
        for column in columns
    ]


def between(column: str, low=None, high=None) -> gx.expectations.Expectation:
    return gx.expectations.ExpectColumnValuesToBeBetween(
        column=column, min_value=low, max_value=high
    )


def in_chain_currency(column: str) -> list:
    """The chain's currency only: money in another would be summed as if it were the chain's."""
    currency = chain_currency()
    return [in_set(column, [currency])] if currency else []


def timestamps_in_chain_lifetime(*columns: str) -> list:
    """Not before the chain opened, not after now (give or take a source clock's skew)."""
    latest = pd.Timestamp(datetime.now(UTC) + CLOCK_SKEW)
    return [between(column, chain_opened_at(), latest) for column in columns]


def day_at(frame: pd.DataFrame, column: str) -> pd.Series:
    """A date column as UTC midnights, so the chain-lifetime bounds (timestamps) apply to it."""
    return pd.to_datetime(frame[column]).dt.tz_localize("UTC")
