"""The `telemetry` stream: one JSON line per backend API call, as the API gateway logs it."""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from simulator.model.clock import DAY_US, day_start_us
from simulator.model.telemetry import (
    ENDPOINTS,
    PLATFORMS,
    SERVER_ERRORS,
    SERVICES,
    day_calls,
    version_labels,
)
from simulator.model.timeline import Timeline
from simulator.writers.landing import HourFiles, write_hours
from simulator.writers.text import digits, fixed, hex_chars, join, pieces, strings

CHUNK_DAYS = 7  # telemetry is generated and written a week at a time


def _uuid4(hi: np.ndarray, lo: np.ndarray) -> np.ndarray:
    """Version-4 UUIDs from 128 random bits, as a (n, 36) character matrix."""
    hi = (hi & ~np.uint64(0xF000)) | np.uint64(0x4000)
    lo = (lo & ~(np.uint64(3) << np.uint64(62))) | (np.uint64(2) << np.uint64(62))
    h = np.concatenate([hex_chars(hi, 16), hex_chars(lo, 16)], axis=1)
    n = hi.size
    return fixed(n, h[:, :8], "-", h[:, 8:12], "-", h[:, 12:16], "-", h[:, 16:20], "-", h[:, 20:])


def iso_ms(us: np.ndarray) -> np.ndarray:
    """'YYYY-MM-DDTHH:MM:SS.mmmZ' of UTC microseconds, as a (n, 24) character matrix."""
    ms = us // 1000
    day, in_day = np.divmod(ms, 86_400_000)
    days, which = np.unique(day, return_inverse=True)
    dates = np.datetime_as_string(days.astype("datetime64[D]")).astype("S10")
    date_chars = dates.view(np.uint8).reshape(-1, 10)[which]
    hour, rest = np.divmod(in_day, 3_600_000)
    minute, rest = np.divmod(rest, 60_000)
    second, milli = np.divmod(rest, 1000)
    n = us.size
    return fixed(
        n,
        date_chars,
        "T",
        digits(hour, 2),
        ":",
        digits(minute, 2),
        ":",
        digits(second, 2),
        ".",
        digits(milli, 3),
        "Z",
    )


STATUS_CODES = np.unique(
    [
        -1,
        *SERVER_ERRORS,
        503,
        *(e.ok_status for e in ENDPOINTS),
        *(e.client_error for e in ENDPOINTS),
    ]
)


def calls_lines(tl: Timeline, calls: dict[str, np.ndarray]) -> pa.Array:
    """JSON lines of calls (numeric columns of day_calls, already filtered and ordered)."""
    n = calls["endpoint"].size
    head = fixed(
        n,
        '{"request_id":"',
        _uuid4(calls["request_hi"], calls["request_lo"]),
        '","occurred_at":"',
        iso_ms(calls["occurred_us"]),
        '","service":"',
    )
    present, labels = version_labels(tl, calls["version"])
    latency = calls["latency_ms"]
    line = join(
        strings(head),
        pieces(
            calls["endpoint"],
            [f'{SERVICES[e.service]}","endpoint":"{e.route}","platform":"' for e in ENDPOINTS],
        ),
        pieces(calls["platform"], [f'{p}","app_version":"' for p in PLATFORMS]),
        pieces(np.searchsorted(present, calls["version"]), [f'{v}","store_id":' for v in labels]),
        pieces(calls["store_id"], [str(i) for i in range(int(calls["store_id"].max()) + 1)]),
        pieces(
            np.searchsorted(STATUS_CODES, calls["status_code"]),
            [f',"status_code":{c if c >= 0 else "null"},"latency_ms":' for c in STATUS_CODES],
        ),
        pieces(latency, [str(i) for i in range(int(latency.max()) + 1)]),
        pieces(
            calls["is_timeout"].astype(np.int64), [',"is_timeout":false}', ',"is_timeout":true}']
        ),
    )
    return line.combine_chunks() if isinstance(line, pa.ChunkedArray) else line


def write_telemetry(tl: Timeline, files: HourFiles, since_us: int | None, until_us: int) -> int:
    first_day = day_start_us(tl.config.start_date, 0)
    last = int((until_us - first_day) // DAY_US)
    # A day's calls arrive within hours of it, so starting a day early covers every arrival.
    start = 0 if since_us is None else max(int((since_us - first_day) // DAY_US) - 1, 0)
    written = 0
    for chunk in range(start, last + 1, CHUNK_DAYS):
        end = min(chunk + CHUNK_DAYS, last + 1)
        lo_us = day_start_us(tl.config.start_date, chunk)
        hi_us = day_start_us(tl.config.start_date, end)
        parts = []
        for day in range(max(chunk - 1, 0), end):
            calls = day_calls(tl, day)
            arrival = calls["arrival_us"]
            keep = (arrival >= lo_us) & (arrival < hi_us) & (arrival <= until_us)
            if since_us is not None:
                keep &= arrival > since_us
            parts.append({name: values[keep] for name, values in calls.items()})
        calls = {name: np.concatenate([p[name] for p in parts]) for name in parts[0]}
        if calls["arrival_us"].size:
            order = np.argsort(calls["arrival_us"], kind="stable")
            calls = {name: values[order] for name, values in calls.items()}
            lines = calls_lines(tl, calls)
            written += write_hours(files, "telemetry", calls["arrival_us"], lines)
    return written
