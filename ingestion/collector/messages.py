"""Segment messages in, landing lines out: checks, the server's stamps, clock-skew correction.

Pure functions over a parsed request body; the app does the I/O. A request is either refused as
a whole (`RequestRejected`: nothing stored, the client is told why) or every event in it ends up
in exactly one place: an accepted line for the `events` stream or a failed-event record, with
its reason, for the `_failed` stream.
"""

from __future__ import annotations

import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson

from ingestion.collector.settings import BATCH_MAX_BYTES, EVENT_MAX_BYTES

MESSAGE_TYPES = ("identify", "track", "page", "screen", "alias", "group")
ID_FIELDS = ("userId", "anonymousId", "previousId", "groupId")
OBJECT_FIELDS = ("properties", "traits", "context", "integrations")
TEXT_FIELDS = ("event", "name", "category", "messageId")
# The JSON types each known field may have (null counts as absent). Ids may be integers, as
# Segment's libraries accept them; they are stored as text.
_OBJECT = (dict,)
_FIELD_TYPES: dict[str, tuple[type, ...]] = {
    **dict.fromkeys(ID_FIELDS, (str, int)),
    **dict.fromkeys(OBJECT_FIELDS, _OBJECT),
    **dict.fromkeys(TEXT_FIELDS, (str,)),
}
# The field the collector owns in every accepted event: the source its write key belongs to.
SOURCE_FIELD = "source"  # context.source
# Fixed, so a generated messageId is the same for the same event sent twice (an SDK retry).
MESSAGE_ID_NAMESPACE = uuid.UUID("0b3f6d2e-5c1a-4f0e-9d57-2a8c4e6b1f90")
# ISO-8601 text the formatter can write with a four-digit year.
_MIN_MS, _MAX_MS = 0, 253_402_300_799_999
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MILLISECOND = timedelta(milliseconds=1)


class RequestRejected(Exception):
    """The whole request is refused and nothing of it is stored."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        headers: dict[str, str] | None = None,
        **detail: Any,
    ):
        super().__init__(message)
        self.status, self.code, self.message, self.detail = status, code, message, detail
        self.headers = headers or {}

    def body(self) -> dict[str, Any]:
        # `code` and `message` are what Segment's libraries read from an error response.
        return {"success": False, "code": self.code, "message": self.message, **self.detail}


def too_large(kind: str | None) -> RequestRejected:
    """413 for a request body over its limit (sent or unpacked), naming the limit."""
    if kind is None:
        endpoint, limit, name = "/v1/batch", BATCH_MAX_BYTES, "batch_max_bytes"
    else:
        endpoint, limit, name = f"/v1/{kind}", EVENT_MAX_BYTES, "event_max_bytes"
    return RequestRejected(
        413,
        "request_too_large",
        f"The request body is over the limit for {endpoint}: {limit:,} bytes ({name}). Nothing "
        "was stored.",
        limit=name,
        limit_bytes=limit,
    )


@dataclass
class Normalised:
    """What one request becomes: accepted lines, failed-event records, counts of failure codes."""

    lines: list[bytes] = field(default_factory=list)
    failed: list[bytes] = field(default_factory=list)
    failure_codes: Counter = field(default_factory=Counter)

    @property
    def received(self) -> int:
        return len(self.lines) + len(self.failed)


def events_of(payload: Any, kind: str | None) -> tuple[list[Any], Any, Any]:
    """(events, batch-level sentAt, batch-level context) of a parsed body, or RequestRejected."""
    if not isinstance(payload, dict):
        raise RequestRejected(400, "invalid_body", "The body must be a JSON object.")
    if kind is not None:
        return [payload], None, None
    batch = payload.get("batch")
    if not isinstance(batch, list):
        raise RequestRejected(
            400, "invalid_batch", "A /v1/batch body needs `batch`, a list of messages."
        )
    return batch, payload.get("sentAt"), payload.get("context")


def check_event_sizes(events: list[Any]) -> None:
    """400 for the whole batch if one event is over 32 KB, as Segment's API answers."""
    for index, event in enumerate(events):
        size = len(orjson.dumps(event))
        if size > EVENT_MAX_BYTES:
            raise RequestRejected(
                400,
                "event_too_large",
                f"Event {index} is {size:,} bytes; the limit is {EVENT_MAX_BYTES:,} bytes per "
                "event (event_max_bytes). Nothing in this batch was stored.",
                limit="event_max_bytes",
                limit_bytes=EVENT_MAX_BYTES,
                index=index,
            )


def normalise(
    events: list[Any],
    *,
    kind: str | None,
    source: str,
    received_ms: int,
    sent_at: Any = None,
    context: Any = None,
    endpoint: str = "/v1/batch",
) -> Normalised:
    """Check and stamp each event; an event that fails a check becomes a failed-event record."""
    out = Normalised()
    received_text = iso_ms(received_ms)
    batch_context = context if isinstance(context, dict) else None
    clock = _Clock()
    for index, event in enumerate(events):
        result = _normalise_one(
            event, kind, source, received_ms, received_text, sent_at, batch_context, clock
        )
        if type(result) is dict:
            out.lines.append(orjson.dumps(result, option=orjson.OPT_APPEND_NEWLINE))
        else:
            code, reason = result
            if type(event) is dict and "writeKey" in event:  # a secret; never stored
                event = {name: value for name, value in event.items() if name != "writeKey"}
            out.failure_codes[code] += 1
            out.failed.append(
                failed_record(
                    code,
                    reason,
                    received_text,
                    source=source,
                    endpoint=endpoint,
                    index=index,
                    message=event,
                )
            )
    return out


def failed_record(code: str, reason: str, received_text: str, **detail: Any) -> bytes:
    """One line of the `_failed` stream: why, when, and the input as it came."""
    record = {"code": code, "reason": reason, "receivedAt": received_text, **detail}
    return orjson.dumps(record, option=orjson.OPT_APPEND_NEWLINE)


class _Clock:
    """Parsing and formatting with a cache for one request: a batch repeats its sentAt, and its
    events' times share their seconds."""

    def __init__(self) -> None:
        self.parsed: dict[str, int] = {}
        self.seconds: dict[int, str] = {}

    def parse(self, value: Any) -> int:
        if type(value) is not str:
            raise ValueError(value)
        ms = self.parsed.get(value)
        if ms is None:
            ms = self.parsed[value] = parse_ms(value)
        return ms

    def format(self, ms: int) -> str:
        seconds, millis = divmod(ms, 1000)
        prefix = self.seconds.get(seconds)
        if prefix is None:
            prefix = self.seconds[seconds] = time.strftime(
                "%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)
            )
        return f"{prefix}.{millis:03d}Z"


def _normalise_one(
    event: Any,
    kind: str | None,
    source: str,
    received_ms: int,
    received_text: str,
    batch_sent_at: Any,
    batch_context: dict | None,
    clock: _Clock,
) -> dict | tuple[str, str]:
    # Every check comes before the first change, so a failed event is stored as it came.
    if type(event) is not dict:
        return "not_an_object", f"the message is a JSON {_json_type(event)}, not an object"
    message_type = kind or event.get("type")
    if message_type not in MESSAGE_TYPES:
        return "unknown_type", f"type {message_type!r} is not one of {', '.join(MESSAGE_TYPES)}"
    numeric_ids = None
    for name, value in event.items():
        allowed = _FIELD_TYPES.get(name)
        if allowed is None or value is None:
            continue
        value_type = type(value)
        if value_type not in allowed:
            wanted = "an object" if allowed is _OBJECT else "a string"
            return "wrong_type", f"{name} must be {wanted}, not a JSON {_json_type(value)}"
        if value_type is int:
            numeric_ids = [*(numeric_ids or ()), name]
    user_id, anonymous_id = event.get("userId"), event.get("anonymousId")
    if (user_id is None or user_id == "") and (anonymous_id is None or anonymous_id == ""):
        return "missing_identity", "the message has neither userId nor anonymousId"
    if message_type == "track" and not event.get("event"):
        return "missing_event", "a track message needs `event`, the event's name"
    if message_type == "alias" and _missing(event.get("previousId")):
        return "missing_previous_id", "an alias message needs `previousId`"
    if message_type == "group" and _missing(event.get("groupId")):
        return "missing_group_id", "a group message needs `groupId`"

    # The device's clock: originalTimestamp if a relay already split it out, else timestamp.
    original = event.get("originalTimestamp")
    original_field = "originalTimestamp"
    if original is None:
        original, original_field = event.get("timestamp"), "timestamp"
    sent = event.get("sentAt")
    sent_field = "sentAt"
    if sent is None:
        sent, sent_field = batch_sent_at, "the batch's sentAt"
    try:
        original_ms = None if original is None else clock.parse(original)
    except ValueError:
        return "bad_timestamp", f"{original_field} is not an ISO-8601 time: {_clip(original)}"
    try:
        sent_ms = None if sent is None else clock.parse(sent)
    except ValueError:
        return "bad_timestamp", f"{sent_field} is not an ISO-8601 time: {_clip(sent)}"
    if original_ms is None:
        timestamp_ms = received_ms
    elif sent_ms is None:
        timestamp_ms = original_ms
    else:
        # Segment's correction: the device's clock is off by (sentAt - receivedAt), the same
        # for the event's own time, so timestamp = receivedAt - (sentAt - originalTimestamp).
        timestamp_ms = received_ms - (sent_ms - original_ms)
    if not _MIN_MS <= timestamp_ms <= _MAX_MS:
        return "bad_timestamp", "the clock-corrected timestamp falls outside years 1970-9999"

    if "writeKey" in event:
        del event["writeKey"]  # a secret; never stored
    event["type"] = message_type
    if numeric_ids:
        for name in numeric_ids:
            event[name] = str(event[name])
    if _missing(event.get("messageId")):
        event["messageId"] = derived_message_id(source, event)
    context_value = event.get("context") or {}
    if batch_context:
        context_value = {**batch_context, **context_value}
    context_value[SOURCE_FIELD] = source
    event["context"] = context_value
    if original_ms is not None:
        event["originalTimestamp"] = original
    event["timestamp"] = received_text if original_ms is None else clock.format(timestamp_ms)
    if sent is not None:
        event["sentAt"] = sent
    event["receivedAt"] = received_text
    return event


def derived_message_id(source: str, event: dict) -> str:
    """A messageId for an event sent without one, the same each time the same event is sent.

    Segment's libraries always set one; a hand-rolled client may not. A random id would land an
    SDK retry twice, so it is a UUID of the source and the event's content (less sentAt and
    receivedAt, which differ between tries).
    """
    content = {k: v for k, v in event.items() if k not in ("sentAt", "receivedAt", "messageId")}
    text = source + "\n" + orjson.dumps(content, option=orjson.OPT_SORT_KEYS).decode()
    return f"collector-{uuid.uuid5(MESSAGE_ID_NAMESPACE, text)}"


def parse_ms(value: Any) -> int:
    """Milliseconds since the epoch of an ISO-8601 string; a time without a zone is UTC."""
    if not isinstance(value, str):
        raise ValueError(value)
    parsed = datetime.fromisoformat(value)
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return (parsed - _EPOCH) // _MILLISECOND


def iso_ms(ms: int) -> str:
    """Segment's format: 'YYYY-MM-DDTHH:MM:SS.sssZ', UTC, milliseconds."""
    seconds, millis = divmod(ms, 1000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)) + f".{millis:03d}Z"


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def _missing(value: Any) -> bool:
    return value is None or value == ""


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    return {str: "string", list: "array", dict: "object"}.get(type(value), type(value).__name__)


def _clip(value: Any, limit: int = 64) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."
