"""The ordering database as of a date: each row that exists by then, in the state it had then.

A row's updated_at is the latest of its events up to the as-of instant, so a row changes between
two snapshots exactly when its updated_at moves; increments rely on that.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date

import numpy as np

from simulator.model.accounts import EMAIL_CONSENT, NAME, PHONE, SMS_CONSENT
from simulator.model.catalog import LAST_NAMES, MOBILE_PREFIXES, PROMOS
from simulator.model.chain import last_per_key
from simulator.model.clock import NEVER, end_of_day_us, format_timestamps
from simulator.model.feedback import submitted
from simulator.model.ordering import FULFILMENTS, PLATFORMS, Orders
from simulator.model.population import CHANNELS, phone_numbers
from simulator.model.timeline import Timeline

# Parents first.
TABLE_ORDER = ("stores", "menu_items", "customers", "orders", "order_items", "order_feedback")
ROW_CHUNK = 50_000


@dataclass(frozen=True)
class Stamps:
    """A timestamp column held as microseconds (NEVER for NULL) and formatted only when rows are
    written, so a large snapshot does not carry millions of strings, and an increment formats
    only the rows it writes."""

    us: np.ndarray

    def __getitem__(self, index) -> Stamps:
        return Stamps(self.us[index])

    @property
    def size(self) -> int:
        return self.us.size

    @property
    def present(self) -> np.ndarray:
        return self.us != NEVER

    def tolist(self) -> list[str | None]:
        return format_timestamps(self.us).tolist()


@dataclass(frozen=True)
class Table:
    """One table's rows: columns in DDL order (ints, objects holding str/None, or Stamps), plus
    the raw creation and update instants that increments are computed from."""

    name: str
    primary_key: str
    columns: dict[str, np.ndarray | Stamps]
    created_us: np.ndarray
    updated_us: np.ndarray

    def __len__(self) -> int:
        return self.created_us.size

    def rows(
        self, mask: np.ndarray | None = None, columns: list[str] | None = None
    ) -> Iterator[tuple]:
        """Rows as tuples of plain Python values for sqlite3, converted a chunk at a time so a
        million-row table never sits in memory twice."""
        names = list(self.columns) if columns is None else columns
        cols = [self.columns[name] if mask is None else self.columns[name][mask] for name in names]
        size = cols[0].size if cols else 0
        for start in range(0, size, ROW_CHUNK):
            chunk = [c[start : start + ROW_CHUNK].tolist() for c in cols]
            yield from zip(*chunk, strict=True)


def _latest(base: np.ndarray, end_us: int, *events: np.ndarray) -> np.ndarray:
    """Per row, the latest of `base` and the events that happened by end_us."""
    latest = base.copy()
    for at in events:
        latest = np.maximum(latest, np.where(at <= end_us, at, base))
    return latest


def _ts(us: np.ndarray, end_us: int) -> Stamps:
    """A timestamp column, NULL for events that have not happened by end_us."""
    return Stamps(np.where(us <= end_us, us, NEVER))


def stores_table(tl: Timeline, end_us: int) -> Table:
    s = tl.stores
    keep = s.created_us <= end_us
    created = s.created_us[keep]
    return Table(
        "stores",
        "store_id",
        {
            "store_id": s.store_id[keep],
            "store_code": s.store_code[keep],
            "name": s.name[keep],
            "province": s.province[keep],
            "city": s.city[keep],
            "opened_on": s.opened_on[keep],
            "created_at": _ts(created, end_us),
            "updated_at": _ts(created, end_us),
            "deleted_at": Stamps(np.full(created.size, NEVER)),
        },
        created,
        created,
    )


def menu_items_table(tl: Timeline, end_us: int) -> Table:
    m = tl.menu
    keep = m.created_us <= end_us
    done = m.change_us <= end_us
    items, last = last_per_key(m.change_item[done])
    last_change = np.full(m.sku.size, NEVER)
    last_change[items] = m.change_us[done][last]
    updated = _latest(m.created_us, end_us, last_change, m.retired_us, m.deleted_us)
    return Table(
        "menu_items",
        "menu_item_id",
        {
            "menu_item_id": m.menu_item_id[keep],
            "sku": m.sku[keep],
            "name": m.name[keep],
            "category": m.category[keep],
            "price_idr": m.prices_at(end_us)[keep],
            "is_available": (m.retired_us > end_us)[keep].astype(np.int64),
            "created_at": _ts(m.created_us[keep], end_us),
            "updated_at": _ts(updated[keep], end_us),
            "deleted_at": _ts(m.deleted_us[keep], end_us),
        },
        m.created_us[keep],
        updated[keep],
    )


def customers_table(tl: Timeline, end_us: int) -> Table:
    pop, acc = tl.population, tl.accounts
    n = int(np.searchsorted(pop.signup_us, end_us, side="right"))  # guests are in sign-up order
    done = acc.edit_us <= end_us
    cust, at, kind, value = (
        acc.edit_customer_idx[done],
        acc.edit_us[done],
        acc.edit_kind[done],
        acc.edit_value[done],
    )
    email_ok = pop.accepts_email[:n] ^ (
        np.bincount(cust[kind == EMAIL_CONSENT], minlength=n) % 2 == 1
    )
    sms_ok = pop.accepts_sms[:n] ^ (np.bincount(cust[kind == SMS_CONSENT], minlength=n) % 2 == 1)
    phone = pop.phone[:n].copy()
    who, last = last_per_key(cust[kind == PHONE])
    new_value = value[kind == PHONE][last]
    n_prefixes = len(MOBILE_PREFIXES)
    phone[who] = phone_numbers(
        new_value % n_prefixes, 10_000_000 + (new_value // n_prefixes) % 90_000_000
    )
    name = pop.full_name[:n].copy()
    who, last = last_per_key(cust[kind == NAME])
    family = np.take(
        np.array(LAST_NAMES, dtype=object), value[kind == NAME][last] % len(LAST_NAMES)
    )
    name[who] = pop.given_name[who] + " " + family
    email = pop.email[:n].copy()

    closed = acc.closed_us[:n] <= end_us  # closing scrubs personal data and all consent
    for column in (email, phone, name):
        column[closed] = None
    email_ok &= ~closed
    sms_ok &= ~closed

    who, last = last_per_key(cust)
    last_edit = np.full(n, NEVER)
    last_edit[who] = at[last]
    created = pop.signup_us[:n]
    updated = _latest(created, end_us, last_edit, acc.closed_us[:n])
    signed_up = _ts(created, end_us)
    return Table(
        "customers",
        "customer_id",
        {
            "customer_id": pop.customer_id[:n],
            "email": email,
            "phone": phone,
            "full_name": name,
            "home_store_id": tl.stores.store_id[pop.home_store[:n]],
            "preferred_platform": np.where(pop.prefers_app[:n], "app", "web").astype(object),
            "acquisition_channel": np.take(np.array(CHANNELS, dtype=object), pop.channel[:n]),
            "accepts_email_marketing": email_ok.astype(np.int64),
            "accepts_sms_marketing": sms_ok.astype(np.int64),
            "signed_up_at": signed_up,
            "created_at": signed_up,
            "updated_at": _ts(updated, end_us),
            "deleted_at": _ts(acc.closed_us[:n], end_us),
        },
        created,
        updated,
    )


def order_status(o: Orders, end_us: int, n: int) -> np.ndarray:
    """Status of the first n orders at end_us: the latest lifecycle step reached by then."""
    return np.select(
        [
            o.refunded_us[:n] <= end_us,
            o.completed_us[:n] <= end_us,
            o.cancelled_us[:n] <= end_us,
            o.preparing_us[:n] <= end_us,
        ],
        ["refunded", "completed", "cancelled", "preparing"],
        "placed",
    ).astype(object)


def orders_table(tl: Timeline, end_us: int) -> Table:
    o, pop = tl.orders, tl.population
    n = int(np.searchsorted(o.placed_us, end_us, side="right"))  # orders are in placement order
    events = [o.preparing_us, o.completed_us, o.cancelled_us, o.refunded_us, o.deleted_us]
    created = o.placed_us[:n]
    updated = _latest(created, end_us, *(e[:n] for e in events))
    placed = _ts(created, end_us)
    codes = np.array([p.code for p in PROMOS] + [None], dtype=object)
    return Table(
        "orders",
        "order_id",
        {
            "order_id": np.arange(1, n + 1, dtype=np.int64),
            "customer_id": pop.customer_id[o.customer_idx[:n]],
            "store_id": tl.stores.store_id[o.store_idx[:n]],
            "platform": np.where(o.is_app[:n], PLATFORMS[0], PLATFORMS[1]).astype(object),
            "fulfilment_type": np.take(np.array(FULFILMENTS, dtype=object), o.fulfilment[:n]),
            "status": order_status(o, end_us, n),
            "currency": np.full(n, "IDR", dtype=object),
            "subtotal_idr": o.subtotal[:n],
            "discount_idr": o.discount[:n],
            "delivery_fee_idr": o.delivery_fee[:n],
            "total_idr": o.total[:n],
            "promo_code": codes[o.promo[:n]],
            "placed_at": placed,
            "completed_at": _ts(o.completed_us[:n], end_us),
            "cancelled_at": _ts(o.cancelled_us[:n], end_us),
            "refunded_at": _ts(o.refunded_us[:n], end_us),
            "created_at": placed,
            "updated_at": _ts(updated, end_us),
            "deleted_at": _ts(o.deleted_us[:n], end_us),
        },
        created,
        updated,
    )


def order_items_table(tl: Timeline, end_us: int, n_orders: int) -> Table:
    lines = tl.lines
    n = int(np.searchsorted(lines.order_row, n_orders))  # lines are in order_id order
    created = tl.orders.placed_us[lines.order_row[:n]]
    stamp = _ts(created, end_us)
    return Table(
        "order_items",
        "order_item_id",
        {
            "order_item_id": np.arange(1, n + 1, dtype=np.int64),
            "order_id": lines.order_row[:n] + 1,
            "menu_item_id": tl.menu.menu_item_id[lines.menu_idx[:n]],
            "quantity": lines.quantity[:n],
            "unit_price_idr": lines.unit_price[:n],
            "line_total_idr": lines.line_total[:n],
            "created_at": stamp,
            "updated_at": stamp,
        },
        created,
        created,
    )


def order_feedback_table(tl: Timeline, end_us: int) -> Table:
    """The order_feedback rows submitted by end_us (created_at), in feedback_id order; rows never
    change after they are created."""
    r = submitted(tl, end_us)
    n = r["order_row"].size
    o = tl.orders
    rows = r["order_row"]
    created = r["created_us"]
    stamp = Stamps(created)
    menu_item = r["menu_item_id"].astype(object)
    menu_item[menu_item == -1] = None
    return Table(
        "order_feedback",
        "feedback_id",
        {
            "feedback_id": np.arange(1, n + 1, dtype=np.int64),
            "order_id": rows + 1,
            "customer_id": tl.population.customer_id[o.customer_idx[rows]],
            "store_id": tl.stores.store_id[o.store_idx[rows]],
            "menu_item_id": menu_item,
            "food_rating": r["food"],
            "price_rating": r["price"],
            "service_rating": r["service"],
            "nps_score": r["nps"],
            "comment": r["comment"],
            "submitted_at": Stamps(r["submitted_us"]),
            "created_at": stamp,
            "updated_at": stamp,
        },
        created,
        created,
    )


def ordering_tables(tl: Timeline, as_of: date) -> dict[str, Table]:
    """All ordering tables as of the end of `as_of` (UTC), parents first."""
    if as_of > tl.horizon:
        raise ValueError(f"as_of {as_of} is beyond the generated horizon {tl.horizon}")
    end_us = end_of_day_us(as_of)
    orders = orders_table(tl, end_us)
    tables = {
        "stores": stores_table(tl, end_us),
        "menu_items": menu_items_table(tl, end_us),
        "customers": customers_table(tl, end_us),
        "orders": orders,
        "order_items": order_items_table(tl, end_us, len(orders)),
        "order_feedback": order_feedback_table(tl, end_us),
    }
    return {name: tables[name] for name in TABLE_ORDER}
