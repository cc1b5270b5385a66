"""App and web events: Segment Spec messages from the landing zone's `events` stream.

Reads only files it has not read before, parses identify / track / page / screen (and alias,
group) messages with DuckDB's JSON reader into Arrow, and lands one row per message keyed by its
messageId. A message delivered twice (SDK retries, a re-sent batch, a file read twice) lands once:
the merge inserts only message ids the table does not have. Late events are ordinary rows: their
`timestamp` is old, their `received_at` is when they came.

Timestamps are parsed here; a value that is present but not a timestamp lands as null and is
named, with its original text, in `_malformed_fields`, so the validation gate can quarantine the
row with what it really said.
"""

from __future__ import annotations

import dlt
from dlt.sources import DltSource

from ingestion.events.settings import SEGMENT_FIELDS, STREAM, TIMESTAMP_FIELDS
from ingestion.landing_zone import landing_table
from ingestion.source_spec import landing_stream

SOURCE_NAME = "events"


def _snake(name: str) -> str:
    return "".join(f"_{c.lower()}" if c.isupper() else c for c in name)


def _select_sql() -> str:
    plain = [
        f'"{field}" as {_snake(field)}'
        for field, kind in SEGMENT_FIELDS.items()
        if field not in (*TIMESTAMP_FIELDS, "messageId") and kind != "JSON"
    ]
    stamps = [
        f'try_cast("{field}" as timestamptz) as {_snake(field)}' for field in TIMESTAMP_FIELDS
    ]
    # A present but unreadable value is kept, as text, next to the null it became.
    malformed = ", ".join(
        f"""case when "{field}" is not null and try_cast("{field}" as timestamptz) is null """
        f"""then '{field}=' || "{field}" end"""
        for field in TIMESTAMP_FIELDS
    )
    json_columns = [
        f'cast("{field}" as varchar) as {_snake(field)}'
        for field, kind in SEGMENT_FIELDS.items()
        if kind == "JSON"
    ]
    # A message without a messageId still lands (for the gate to quarantine) under a key made of
    # its file and content; a messageId seen twice in one page of files lands once.
    message_id = (
        "coalesce(\"messageId\", '_missing:' || md5(concat_ws('|', _landing_file, "
        + ", ".join(f"coalesce(cast(\"{field}\" as varchar), '')" for field in SEGMENT_FIELDS)
        + "))) as message_id"
    )
    return (
        f"select {message_id}, "
        + ", ".join([*plain, *stamps, *json_columns])
        + f", nullif(concat_ws('; ', {malformed}, "
        + "case when \"messageId\" is null then 'messageId missing' end), '') as _malformed_fields"
        + ", _landing_file from {raw}"
        + ' qualify "messageId" is null or row_number() over '
        + '(partition by "messageId" order by "receivedAt" nulls last, _landing_file) = 1'
    )


SELECT_SQL = _select_sql()
JSON_COLUMNS = {_snake(f): {"data_type": "json"} for f, k in SEGMENT_FIELDS.items() if k == "JSON"}


@dlt.source(name=SOURCE_NAME)
def events_source(bucket_url: str = dlt.config.value) -> DltSource:
    """Every Segment message in the landing zone's events stream, once per messageId."""
    yield landing_table(
        bucket_url, STREAM, "messages", "message_id", SEGMENT_FIELDS, SELECT_SQL, JSON_COLUMNS
    )


SOURCE = landing_stream(
    SOURCE_NAME,
    "App and web events: Segment batches in the landing zone.",
    "segment",
    events_source,
)
