"""The chain itself: its stores with opening dates, and its menu with the history of prices.

Both are fixed schedules (not a function of the horizon), so any as-of date sees the same ones.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import numpy as np

from simulator.config import WorldConfig
from simulator.model.catalog import BRAND, CATEGORY_SKU_PREFIX, MENU, SEASONAL
from simulator.model.clock import HOUR_US, MINUTE_US, NEVER, day_start_us, epoch_day, format_dates
from simulator.model.rand import Stream, keyed_rng

LATE_OPENING_FIRST_DAY = 20  # the first store opened during the period opens around day 20-34
LATE_OPENING_EVERY = 50
MENU_CREATED_DAY = -90
MENU_CHANGE_HOUR_UTC = 0.5  # 07:30 WIB, before any store opens
PRICE_REVIEW_FIRST_DAY = 30
PRICE_REVIEW_EVERY = 91  # quarterly
PRICE_REVIEW_SHARE = 0.3  # items repriced at a review
PRICE_STEPS_IDR = (1_000, 2_000, 3_000, 5_000)
SEASONAL_FIRST_DAY = 20
SEASONAL_EVERY = 90
SEASONAL_AVAILABLE_DAYS = 56  # then sold out (is_available false) ...
SEASONAL_DELETED_AFTER_DAYS = 84  # ... then soft-deleted


@dataclass(frozen=True)
class Stores:
    store_id: np.ndarray
    store_code: np.ndarray
    name: np.ndarray
    province: np.ndarray
    city: np.ndarray
    province_idx: np.ndarray
    utc_offset: np.ndarray  # hours
    weight: np.ndarray
    opened_day: np.ndarray  # days since start_date; negative if open before the period
    opened_on: np.ndarray  # 'YYYY-MM-DD'
    created_us: np.ndarray

    def open_on(self, day: int) -> np.ndarray:
        """Indices of the stores open on `day`."""
        return np.flatnonzero(self.opened_day <= day)


def make_stores(config: WorldConfig) -> Stores:
    """A few stores per province; each province's first site predates the period, its last opens
    during it (when there are two or more per province)."""
    rng = keyed_rng(config.seed, Stream.STORES)
    rows = [
        (p_idx, province, site_idx, city, area)
        for p_idx, province in enumerate(config.chosen_provinces)
        for site_idx, (city, area) in enumerate(province.sites[: config.stores_per_province])
    ]
    n = len(rows)
    late = np.array([s > 0 and s == config.stores_per_province - 1 for _, _, s, _, _ in rows])
    opened_day = -rng.integers(60, 1500, size=n)
    late_rank = np.cumsum(late) - 1
    jitter = rng.integers(0, 15, size=n)
    opened_day = np.where(
        late, LATE_OPENING_FIRST_DAY + LATE_OPENING_EVERY * late_rank + jitter, opened_day
    )
    # Set up in the back office two to six weeks before opening, during office hours.
    created_day = opened_day - rng.integers(14, 45, size=n)
    created_us = day_start_us(config.start_date, created_day) + rng.integers(
        2 * HOUR_US, 9 * HOUR_US, size=n
    )
    start = epoch_day(config.start_date)
    return Stores(
        store_id=np.arange(1, n + 1, dtype=np.int64),
        store_code=np.array([f"{p.code}-{s + 1:02d}" for _, p, s, _, _ in rows], dtype=object),
        name=np.array([f"{BRAND} {area}" for *_, area in rows], dtype=object),
        province=np.array([p.name for _, p, _, _, _ in rows], dtype=object),
        city=np.array([city for *_, city, _ in rows], dtype=object),
        province_idx=np.array([i for i, *_ in rows], dtype=np.int64),
        utc_offset=np.array([p.utc_offset_hours for _, p, *_ in rows], dtype=np.int64),
        weight=np.array([p.weight for _, p, *_ in rows]),
        opened_day=opened_day.astype(np.int64),
        opened_on=format_dates(start + opened_day),
        created_us=created_us.astype(np.int64),
    )


@dataclass(frozen=True)
class Menu:
    menu_item_id: np.ndarray
    sku: np.ndarray
    name: np.ndarray
    category: np.ndarray
    base_price: np.ndarray
    popularity: np.ndarray
    created_day: np.ndarray
    retired_day: np.ndarray  # NEVER if still on sale
    deleted_day: np.ndarray
    created_us: np.ndarray
    retired_us: np.ndarray
    deleted_us: np.ndarray
    # Price changes, in time order: item index, when, new price.
    change_item: np.ndarray
    change_day: np.ndarray
    change_us: np.ndarray
    change_price: np.ndarray

    def prices_at(self, until_us: int) -> np.ndarray:
        """Price of every item after the changes made up to `until_us`."""
        prices = self.base_price.copy()
        done = self.change_us <= until_us
        items, last = last_per_key(self.change_item[done])
        prices[items] = self.change_price[done][last]
        return prices

    def available_on(self, day: int) -> np.ndarray:
        return np.flatnonzero((self.created_day <= day) & (day < self.retired_day))


def last_per_key(keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Distinct keys and the position of each one's last occurrence (input in time order)."""
    reversed_keys = keys[::-1]
    unique, first_in_reversed = np.unique(reversed_keys, return_index=True)
    return unique, len(keys) - 1 - first_in_reversed


def _change_us(start_date: date, day: np.ndarray) -> np.ndarray:
    """Menu changes land before the stores open, so a day's orders all see the same menu."""
    happens = day != NEVER
    us = day_start_us(start_date, np.where(happens, day, 0)) + int(MENU_CHANGE_HOUR_UTC * HOUR_US)
    return np.where(happens, us, NEVER)


def make_menu(config: WorldConfig, last_day: int) -> Menu:
    """The base menu, seasonal dishes launched up to `last_day`, and quarterly price reviews."""
    n_seasonal = max(0, (last_day - SEASONAL_FIRST_DAY) // SEASONAL_EVERY + 1)
    dishes = list(MENU) + [SEASONAL[k % len(SEASONAL)] for k in range(n_seasonal)]
    n_base = len(MENU)
    counters = dict.fromkeys(CATEGORY_SKU_PREFIX, 0)
    skus = []
    for dish in MENU:
        counters[dish.category] += 1
        skus.append(f"{CATEGORY_SKU_PREFIX[dish.category]}-{counters[dish.category]:03d}")
    skus += [f"SSN-{k + 1:03d}" for k in range(n_seasonal)]

    launch = SEASONAL_FIRST_DAY + SEASONAL_EVERY * np.arange(n_seasonal, dtype=np.int64)
    created_day = np.concatenate([np.full(n_base, MENU_CREATED_DAY, dtype=np.int64), launch])
    never = np.full(n_base, NEVER, dtype=np.int64)
    retired_day = np.concatenate([never, launch + SEASONAL_AVAILABLE_DAYS])
    deleted_day = np.concatenate([never, launch + SEASONAL_DELETED_AFTER_DAYS])
    base_price = np.array([d.price_idr for d in dishes], dtype=np.int64)

    change_item, change_day, change_price = [], [], []
    current = base_price.copy()
    for k, day in enumerate(range(PRICE_REVIEW_FIRST_DAY, last_day + 1, PRICE_REVIEW_EVERY)):
        rng = keyed_rng(config.seed, Stream.MENU_REVIEW, k)
        on_sale = np.flatnonzero((created_day <= day) & (day < retired_day))
        chosen = on_sale[rng.random(on_sale.size) < PRICE_REVIEW_SHARE]
        current[chosen] += rng.choice(PRICE_STEPS_IDR, size=chosen.size)
        change_item.append(chosen)
        change_day.append(np.full(chosen.size, day, dtype=np.int64))
        change_price.append(current[chosen])
    change_day_arr = np.concatenate([np.zeros(0, np.int64), *change_day])

    return Menu(
        menu_item_id=np.arange(1, len(dishes) + 1, dtype=np.int64),
        sku=np.array(skus, dtype=object),
        name=np.array([d.name for d in dishes], dtype=object),
        category=np.array([d.category for d in dishes], dtype=object),
        base_price=base_price,
        popularity=np.array([d.popularity for d in dishes]),
        created_day=created_day,
        retired_day=retired_day,
        deleted_day=deleted_day,
        created_us=_change_us(config.start_date, created_day)
        + np.where(created_day < 0, 2 * HOUR_US + 17 * MINUTE_US, 0),
        retired_us=_change_us(config.start_date, retired_day),
        deleted_us=_change_us(config.start_date, deleted_day),
        change_item=np.concatenate([np.zeros(0, np.int64), *change_item]),
        change_day=change_day_arr,
        change_us=_change_us(config.start_date, change_day_arr),
        change_price=np.concatenate([np.zeros(0, np.int64), *change_price]),
    )
