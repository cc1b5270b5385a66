"""Purchases realised on the ordering platform: orders, their lines and their status lifecycle.

One generator per day draws everything about that day's orders (store, time, platform,
fulfilment, basket, promo, outcome), vectorised over the day's orders. Each order's whole future
(completion, cancellation, refund, soft delete) is drawn when it is placed; snapshots decide how
much of it has happened by their as-of date.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

import numpy as np

from simulator.config import WorldConfig
from simulator.model.campaigns import simulate_campaigns
from simulator.model.catalog import MENU, PROMOS
from simulator.model.chain import Menu, Stores
from simulator.model.clock import (
    MINUTE_US,
    NEVER,
    day_part_hours,
    day_start_us,
    local_hours_to_us,
)
from simulator.model.population import Population
from simulator.model.purchases import Purchases
from simulator.model.rand import Stream, keyed_rng

PLATFORMS = ("app", "web")
PLATFORM_LOYALTY = 0.85  # orders placed on the guest's preferred platform
FULFILMENTS = ("delivery", "pickup", "dine_in")
DELIVERY, PICKUP, DINE_IN = range(3)
FULFILMENT_SHARE = {"app": (0.50, 0.25, 0.25), "web": (0.60, 0.30, 0.10)}
DELIVERY_FEES_IDR = (8_000, 10_000, 12_000, 15_000)
DELIVERY_FEE_SHARE = (0.30, 0.35, 0.20, 0.15)
MAX_LINES = 5
MAX_UNITS = 15
SECOND_PORTION_SHARE = 0.3  # a unit beyond the first becomes another portion of a line
WELCOME_SHARE = 0.4  # first orders that use WELCOME20
PROMO_SHARE = 0.07  # repeat orders that use a promo code ...
PAYDAY_PROMO_SHARE = 0.2  # ... and in the payday window
CANCEL_BEFORE_PREPARING_SHARE = 0.6
WELCOME, HEMAT, ONGKIR, PAYDAY = (
    [p.code for p in PROMOS].index(c) for c in ("WELCOME20", "HEMAT10", "GRATISONGKIR", "PAYDAY25")
)
# Indexed by promo, with a last "no promo" row so that promo = -1 needs no special case.
_PERCENT = np.array([p.percent_off for p in PROMOS] + [0])
_CAP = np.array([p.cap_idr for p in PROMOS] + [0])
_MIN_SUBTOTAL = np.array([p.min_subtotal_idr for p in PROMOS] + [0])


@dataclass(frozen=True)
class Orders:
    """One row per order, in order_id order (order_id = row + 1)."""

    customer_idx: np.ndarray
    store_idx: np.ndarray
    is_app: np.ndarray
    fulfilment: np.ndarray  # index into FULFILMENTS
    promo: np.ndarray  # index into PROMOS, -1 for none
    subtotal: np.ndarray
    discount: np.ndarray
    delivery_fee: np.ndarray
    total: np.ndarray
    placed_us: np.ndarray
    preparing_us: np.ndarray  # NEVER when an event does not happen
    completed_us: np.ndarray
    cancelled_us: np.ndarray
    refunded_us: np.ndarray
    deleted_us: np.ndarray
    campaign: np.ndarray  # index of the campaign that brought the order (planted uplift), else -1


@dataclass(frozen=True)
class OrderLines:
    """One row per order line, in order_item_id order (order_item_id = row + 1)."""

    order_row: np.ndarray  # index into Orders
    menu_idx: np.ndarray
    quantity: np.ndarray
    unit_price: np.ndarray
    line_total: np.ndarray


def _minutes(rng: np.random.Generator, low: float, high: float, n: int) -> np.ndarray:
    return np.rint(rng.uniform(low, high, size=n) * MINUTE_US).astype(np.int64)


def _where(
    rng: np.random.Generator,
    config: WorldConfig,
    day: int,
    cust: np.ndarray,
    first: np.ndarray,
    pop: Population,
    stores: Stores,
) -> np.ndarray:
    """The home store, or (repeat orders only) another open store, mostly nearby."""
    home = pop.home_store[cust]
    open_idx = stores.open_on(day)
    nearby = stores.province_idx[open_idx][None, :] == stores.province_idx[home][:, None]
    pull = np.log(stores.weight[open_idx] * np.where(nearby, 3.0, 1.0))
    elsewhere = open_idx[np.argmax(pull + rng.gumbel(size=nearby.shape), axis=1)]
    away = ~first & (rng.random(cust.size) >= config.home_store_share)
    return np.where(away, elsewhere, home)


def _how(rng: np.random.Generator, cust: np.ndarray, pop: Population) -> tuple[np.ndarray, ...]:
    """Platform, fulfilment and delivery fee."""
    n = cust.size
    is_app = np.where(
        rng.random(n) < PLATFORM_LOYALTY, pop.prefers_app[cust], ~pop.prefers_app[cust]
    )
    share = np.where(is_app[:, None], FULFILMENT_SHARE["app"], FULFILMENT_SHARE["web"])
    fulfilment = (rng.random(n)[:, None] >= np.cumsum(share, axis=1)[:, :-1]).sum(axis=1)
    delivery = fulfilment == DELIVERY
    fee = np.where(delivery, rng.choice(DELIVERY_FEES_IDR, size=n, p=DELIVERY_FEE_SHARE), 0)
    return is_app, fulfilment, delivery, fee


def _what(
    rng: np.random.Generator,
    config: WorldConfig,
    day: int,
    cust: np.ndarray,
    pop: Population,
    menu: Menu,
    unit_value: float,
) -> dict[str, np.ndarray]:
    """A Gamma-Gamma order value sets the number of units; popular dishes are likelier. Lines
    come as (row, col): the order and its line slot."""
    n = cust.size
    value = rng.gamma(config.spend_p, 1 / pop.nu[cust])
    units = np.clip(np.rint(value / unit_value), 1, MAX_UNITS).astype(np.int64)
    lines = np.clip(units - rng.binomial(units - 1, SECOND_PORTION_SHARE), 1, MAX_LINES)
    on_sale = menu.available_on(day)
    keys = np.log(menu.popularity[on_sale]) + rng.gumbel(size=(n, on_sale.size))
    picks = on_sale[np.argsort(-keys, axis=1, kind="stable")[:, :MAX_LINES]]
    row, col = np.nonzero(np.arange(MAX_LINES) < lines[:, None])
    extra_row = np.repeat(np.arange(n), units - lines)
    extra_col = (rng.random(extra_row.size) * lines[extra_row]).astype(np.int64)
    portions = np.bincount(extra_row * MAX_LINES + extra_col, minlength=n * MAX_LINES)
    quantity = 1 + portions.reshape(n, MAX_LINES)[row, col]
    menu_idx = picks[row, col]
    unit_price = menu.prices_at(day_start_us(config.start_date, day + 1) - 1)[menu_idx]
    line_total = quantity * unit_price
    subtotal = np.add.reduceat(line_total, np.concatenate([[0], np.cumsum(lines)[:-1]]))
    return {
        "row": row,
        "col": col,
        "menu_idx": menu_idx,
        "quantity": quantity,
        "unit_price": unit_price,
        "line_total": line_total,
        "subtotal": subtotal,
    }


def _promos(
    rng: np.random.Generator,
    config: WorldConfig,
    day: int,
    first: np.ndarray,
    delivery: np.ndarray,
    subtotal: np.ndarray,
    fee: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """WELCOME20 on first orders, other codes now and then, more around payday."""
    n = first.size
    date_of_day = config.start_date + timedelta(days=int(day))
    payday = date_of_day.day >= 25 or date_of_day.day == 1
    use, pick = rng.random(n), rng.random(n)
    promo = np.where(first & (use < WELCOME_SHARE), WELCOME, -1)
    repeat_code = PAYDAY if payday else np.where(delivery & (pick < 0.5), ONGKIR, HEMAT)
    repeat_use = ~first & (use < (PAYDAY_PROMO_SHARE if payday else PROMO_SHARE))
    promo = np.where(repeat_use, repeat_code, promo)
    promo = np.where(subtotal >= _MIN_SUBTOTAL[promo], promo, -1)
    percent_off = (subtotal * _PERCENT[promo] // 100) // 100 * 100  # whole hundreds of rupiah
    discount = np.minimum(_CAP[promo], np.where(_PERCENT[promo] > 0, percent_off, fee))
    return promo, discount


def _lifecycle(
    rng: np.random.Generator, config: WorldConfig, placed: np.ndarray, delivery: np.ndarray
) -> dict[str, np.ndarray]:
    """placed -> preparing -> completed, or cancelled; refunds after completion; fraud deleted."""
    n = placed.size
    outcome = rng.random(n)
    cancelled = outcome < config.cancel_share
    refunded = ~cancelled & (outcome < config.cancel_share + config.refund_share)
    early = rng.random(n) < CANCEL_BEFORE_PREPARING_SHARE
    to_preparing = _minutes(rng, 1, 4, n)
    to_completed = np.where(delivery, _minutes(rng, 25, 60, n), _minutes(rng, 10, 30, n))
    to_cancelled = np.where(
        early,
        (to_preparing * rng.uniform(0.2, 0.9, size=n)).astype(np.int64),
        to_preparing + _minutes(rng, 2, 8, n),
    )
    to_refunded = to_completed + _minutes(rng, 60, 72 * 60, n)
    deleted = rng.random(n) < config.fraud_share
    to_deleted = _minutes(rng, 60, 48 * 60, n)
    return {
        "preparing_us": np.where(cancelled & early, NEVER, placed + to_preparing),
        "completed_us": np.where(cancelled, NEVER, placed + to_completed),
        "cancelled_us": np.where(cancelled, placed + to_cancelled, NEVER),
        "refunded_us": np.where(refunded, placed + to_refunded, NEVER),
        "deleted_us": np.where(deleted, placed + to_deleted, NEVER),
    }


def _orders_of_day(
    config: WorldConfig,
    day: int,
    cust: np.ndarray,
    first: np.ndarray,
    fixed_us: np.ndarray,
    pop: Population,
    stores: Stores,
    menu: Menu,
    unit_value: float,
    stream: Stream = Stream.ORDERS,
) -> tuple[dict, dict]:
    """The orders placed on `day` (columns of Orders) and their lines (columns of OrderLines,
    order_row local to the day), both in placement order. `first` marks each guest's first order.
    The helpers draw from one generator in a fixed sequence: their call order is the stream."""
    rng = keyed_rng(config.seed, stream, day)
    n = cust.size
    store = _where(rng, config, day, cust, first, pop, stores)
    # When: a day part in the store's local time; same-day trial orders follow the sign-up.
    placed = local_hours_to_us(
        day_start_us(config.start_date, day), day_part_hours(rng, n), stores.utc_offset[store]
    ) + rng.integers(0, 1_000_000, size=n)
    placed = np.where(fixed_us != NEVER, fixed_us, placed)
    is_app, fulfilment, delivery, fee = _how(rng, cust, pop)
    basket = _what(rng, config, day, cust, pop, menu, unit_value)
    subtotal = basket["subtotal"]
    promo, discount = _promos(rng, config, day, first, delivery, subtotal, fee)
    orders = {
        "customer_idx": cust,
        "store_idx": store,
        "is_app": is_app,
        "fulfilment": fulfilment,
        "promo": promo,
        "subtotal": subtotal,
        "discount": discount,
        "delivery_fee": fee,
        "total": subtotal - discount + fee,
        "placed_us": placed,
        **_lifecycle(rng, config, placed, delivery),
        "campaign": np.full(n, -1, dtype=np.int64),
    }
    # order_id follows placement time, as an autoincrement key would.
    order = np.lexsort((cust, placed))
    position = np.empty(n, dtype=np.int64)
    position[order] = np.arange(n)
    row, col = basket["row"], basket["col"]
    line_order = np.lexsort((col, position[row]))
    lines_out = {"order_row": position[row][line_order]} | {
        name: basket[name][line_order]
        for name in ("menu_idx", "quantity", "unit_price", "line_total")
    }
    return {name: values[order] for name, values in orders.items()}, lines_out


def simulate_orders(
    config: WorldConfig,
    stores: Stores,
    menu: Menu,
    pop: Population,
    purchases: Purchases,
) -> tuple[Orders, OrderLines]:
    """Every purchase as an order with its lines, day by day in time order, plus the orders the
    email/SMS campaigns bring (drawn from their own stream, so the base orders stay as they are)."""
    weights = np.array([d.popularity for d in MENU])
    unit_value = float(np.average([d.price_idr for d in MENU], weights=weights))
    run = simulate_campaigns(config, pop, purchases)
    extra_first, early = _first_campaign_orders(pop, run.extra_customer, run.extra_day)
    base_first = (purchases.k == 0) & ~early[purchases.customer_idx]
    by_day = np.lexsort((purchases.k, purchases.customer_idx, purchases.day))
    days = purchases.day[by_day]
    extra_by_day = np.lexsort((run.extra_customer, run.extra_day))
    extra_days = run.extra_day[extra_by_day]
    order_parts, line_parts = [], []
    offset = 0
    for day in np.union1d(days, extra_days):
        # A day can have campaign orders and no other purchase (a small chain's quiet day), or
        # the reverse; each stream's generator is keyed by the day, so skipping one draws nothing.
        day_orders = day_lines = None
        lo, hi = np.searchsorted(days, [day, day + 1])
        if hi > lo:
            rows = by_day[lo:hi]
            day_orders, day_lines = _orders_of_day(
                config,
                int(day),
                purchases.customer_idx[rows],
                base_first[rows],
                purchases.placed_us[rows],
                pop,
                stores,
                menu,
                unit_value,
            )
        lo, hi = np.searchsorted(extra_days, [day, day + 1])
        if hi > lo:
            rows = extra_by_day[lo:hi]
            more_orders, more_lines = _orders_of_day(
                config,
                int(day),
                run.extra_customer[rows],
                extra_first[rows],
                np.full(hi - lo, NEVER),
                pop,
                stores,
                menu,
                unit_value,
                stream=Stream.CAMPAIGN_ORDERS,
            )
            # Returned in placement order; a guest has at most one campaign order a day.
            cust = run.extra_customer[rows]
            by_cust = np.argsort(cust)
            placed_row = by_cust[np.searchsorted(cust[by_cust], more_orders["customer_idx"])]
            more_orders["campaign"] = run.extra_campaign[rows][placed_row]
            if day_orders is None:
                day_orders, day_lines = more_orders, more_lines
            else:
                day_orders, day_lines = _merge_days(day_orders, day_lines, more_orders, more_lines)
        day_lines["order_row"] = day_lines["order_row"] + offset
        offset += day_orders["placed_us"].size
        order_parts.append(day_orders)
        line_parts.append(day_lines)
    orders = Orders(**_concat(order_parts, Orders))
    lines = OrderLines(**_concat(line_parts, OrderLines))
    return orders, lines


def _first_campaign_orders(
    pop: Population, extra_customer: np.ndarray, extra_day: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Which campaign orders are the guest's first order (they come before the trial purchase),
    and per guest whether one does (then the trial purchase is not the first order)."""
    trial_day = np.where(pop.never_orders, NEVER, pop.signup_day + pop.first_lag_days)
    before_trial = extra_day < trial_day[extra_customer]
    order = np.lexsort((extra_day, extra_customer))
    earliest = np.zeros(extra_day.size, dtype=bool)
    _, first_pos = np.unique(extra_customer[order], return_index=True)
    earliest[order[first_pos]] = True
    first = before_trial & earliest
    early = np.zeros(len(pop), dtype=bool)
    early[extra_customer[first]] = True
    return first, early


def _merge_days(orders_a: dict, lines_a: dict, orders_b: dict, lines_b: dict) -> tuple[dict, dict]:
    """One day's orders from two streams merged into placement order, lines following."""
    merged = {name: np.concatenate([orders_a[name], orders_b[name]]) for name in orders_a}
    order = np.lexsort((merged["customer_idx"], merged["placed_us"]))
    position = np.empty(order.size, dtype=np.int64)
    position[order] = np.arange(order.size)
    n_a = orders_a["placed_us"].size
    row = position[np.concatenate([lines_a["order_row"], lines_b["order_row"] + n_a])]
    line_order = np.lexsort((np.arange(row.size), row))
    lines = {name: np.concatenate([lines_a[name], lines_b[name]])[line_order] for name in lines_a}
    lines["order_row"] = row[line_order]
    return {name: values[order] for name, values in merged.items()}, lines


def _concat(parts: list[dict], kind: type) -> dict:
    names = kind.__dataclass_fields__
    if not parts:
        return {name: np.zeros(0, dtype=np.int64) for name in names}
    return {name: np.concatenate([p[name] for p in parts]) for name in names}
