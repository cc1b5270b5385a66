"""The Segment Spec fields Regulars reads from each event, and how they land."""

STREAM = "events"

# The fields read from every message (Segment Spec common fields plus each call's own).
# properties / traits / context stay JSON: they are sparse and differ per event, so flattening
# them would give hundreds of mostly empty columns and a schema that changes with every new app
# release; DuckDB (and dbt) query JSON directly (`properties->>'order_id'`).
SEGMENT_FIELDS: dict[str, str] = {
    "messageId": "VARCHAR",
    "type": "VARCHAR",
    "event": "VARCHAR",
    "name": "VARCHAR",
    # A page call's category (Segment Spec, Page: `Docs` for a page named `Getting Started`).
    "category": "VARCHAR",
    "userId": "VARCHAR",
    "anonymousId": "VARCHAR",
    "previousId": "VARCHAR",
    "groupId": "VARCHAR",
    "timestamp": "VARCHAR",
    "originalTimestamp": "VARCHAR",
    "sentAt": "VARCHAR",
    "receivedAt": "VARCHAR",
    "properties": "JSON",
    "traits": "JSON",
    "context": "JSON",
}

TIMESTAMP_FIELDS = ("timestamp", "sentAt", "receivedAt", "originalTimestamp")
