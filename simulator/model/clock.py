"""Time in the simulator: integer microseconds since the Unix epoch (UTC), days since start_date.

Also when restaurant guests act: the lunch and dinner peaks, in the store's local time.
"""

from __future__ import annotations

from datetime import date

import numpy as np

MINUTE_US = 60 * 1_000_000
HOUR_US = 60 * MINUTE_US
DAY_US = 24 * HOUR_US
NEVER = np.iinfo(np.int64).max  # an event that has not happened (or never will)

OPENING_HOUR = 9.0  # local; stores serve 09:00-22:00, so a local day is one UTC date
LAST_ORDER_HOUR = 21.9

# Day-part mixture of local order hours: (weight, mean hour, sd hours).
DAY_PARTS = (
    (0.10, 10.0, 0.6),  # late breakfast
    (0.42, 12.4, 0.8),  # lunch
    (0.13, 15.5, 1.0),  # afternoon snack
    (0.35, 19.0, 1.1),  # dinner
)


def epoch_day(day: date) -> int:
    return (day - date(1970, 1, 1)).days


def day_start_us(start_date: date, day: int | np.ndarray) -> int | np.ndarray:
    """UTC midnight opening `day` (days since start_date)."""
    return (epoch_day(start_date) + day) * DAY_US


def end_of_day_us(as_of: date) -> int:
    """Last microsecond of the as-of date (UTC): the snapshot includes everything up to it."""
    return (epoch_day(as_of) + 1) * DAY_US - 1


def day_part_hours(rng: np.random.Generator, n: int) -> np.ndarray:
    """Local hours of day for n guest actions, peaking at lunch and dinner."""
    weights = np.array([w for w, _, _ in DAY_PARTS])
    part = rng.choice(len(DAY_PARTS), size=n, p=weights / weights.sum())
    means = np.array([m for _, m, _ in DAY_PARTS])[part]
    sds = np.array([s for _, _, s in DAY_PARTS])[part]
    return np.clip(rng.normal(means, sds), OPENING_HOUR, LAST_ORDER_HOUR)


def local_hours_to_us(day_start: np.ndarray, hours: np.ndarray, utc_offset: np.ndarray):
    """UTC microseconds of local `hours` on the day starting (UTC) at day_start."""
    return day_start + np.rint((hours - utc_offset) * HOUR_US).astype(np.int64)


def format_timestamps(us: np.ndarray) -> np.ndarray:
    """'YYYY-MM-DD HH:MM:SS.ffffff' strings, as SQLAlchemy stores DateTime in SQLite; None for
    NEVER."""
    us = np.asarray(us, dtype=np.int64)
    present = us != NEVER
    text = np.datetime_as_string(np.where(present, us, 0).astype("datetime64[us]"), unit="us")
    text = text.astype("U26")
    text.view(np.uint32).reshape(-1, 26)[:, 10] = ord(" ")  # ISO 'T' -> ' '
    out = text.astype(object)
    out[~present] = None
    return out


def format_dates(days_since_epoch: np.ndarray) -> np.ndarray:
    days = np.asarray(days_since_epoch).astype("datetime64[D]")
    return np.datetime_as_string(days).astype(object)
