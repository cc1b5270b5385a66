"""What bad data from the app and web event stream looks like."""

from __future__ import annotations

import great_expectations as gx
import pandas as pd

from expectations.suites import TableSuite
from expectations.suites.ordering import timestamps_in_chain_lifetime

MESSAGE_TYPES = ["identify", "track", "page", "screen", "alias", "group"]


def _identity_and_event(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.assign(
        _has_user_or_anonymous_id=frame["user_id"].notna() | frame["anonymous_id"].notna(),
        _track_has_event=(frame["type"] != "track") | frame["event"].notna(),
    )


def table_suites() -> dict[str, TableSuite]:
    return {
        "messages": TableSuite(
            table_name="messages",
            primary_key="message_id",
            required_columns=["message_id", "type", "timestamp", "received_at", "context"],
            expectations=[
                gx.expectations.ExpectColumnValuesToBeUnique(column="message_id"),
                # Present but unreadable timestamps, or no messageId at all (named by ingestion).
                gx.expectations.ExpectColumnValuesToBeNull(column="_malformed_fields"),
                gx.expectations.ExpectColumnValuesToNotBeNull(column="timestamp"),
                gx.expectations.ExpectColumnValuesToBeInSet(column="type", value_set=MESSAGE_TYPES),
                gx.expectations.ExpectColumnValuesToBeInSet(
                    column="_has_user_or_anonymous_id", value_set=[True]
                ),
                gx.expectations.ExpectColumnValuesToBeInSet(
                    column="_track_has_event", value_set=[True]
                ),
                *timestamps_in_chain_lifetime("timestamp"),
            ],
            derive=_identity_and_event,
        )
    }
