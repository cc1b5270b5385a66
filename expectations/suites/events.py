"""What bad data from the app and web event stream looks like."""

from __future__ import annotations

import great_expectations as gx
import pandas as pd

from expectations.suites import TableSuite, VolumeRule
from expectations.suites.common import (
    in_set,
    keyed,
    not_null,
    platform_ids,
    timestamps_in_chain_lifetime,
)

# Segment's message types. Track event names are not an enum here: a new app release adds
# events, and holding them back would hide a feature's first days from the marts.
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
                *keyed("message_id"),
                # Present but unreadable timestamps, or no messageId at all (named by ingestion).
                gx.expectations.ExpectColumnValuesToBeNull(column="_malformed_fields"),
                *not_null("type", "timestamp", "received_at"),
                in_set("type", MESSAGE_TYPES),
                in_set("_has_user_or_anonymous_id", [True]),
                in_set("_track_has_event", [True]),
                *platform_ids("user_id"),
                # `timestamp` is the device's clock corrected by Segment; `received_at` is ours.
                *timestamps_in_chain_lifetime("timestamp", "received_at"),
            ],
            derive=_identity_and_event,
            # The collector lands files on a schedule: a batch far below the usual is lost files.
            volume=VolumeRule(),
        )
    }
