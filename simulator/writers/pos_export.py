"""The chain's old point-of-sale export: a year of in-store orders before the ordering platform.

A CSV as the old POS wrote it (Indonesian headers, day-first dates, the loyalty member's phone in
the local 08... form as the member number), so the order-history import must map columns and
parse types the way a chain's real file needs. It depends only on the guests who signed up in
the platform's first weeks (the regulars who moved over) plus members who never did, so the file
is the same whatever the as-of date: it is written by a build and never changed by an advance.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from simulator.config import WorldConfig
from simulator.model.chain import make_stores
from simulator.model.clock import MINUTE_US, day_start_us
from simulator.model.population import make_population
from simulator.model.rand import keyed_rng

HISTORY_DAYS = 365  # the export covers the year before the platform's start_date
MOVED_OVER_DAYS = 30  # POS regulars are among the guests who signed up in the first 30 days
REGULAR_SHARE = 0.45  # of those early guests with a phone
ORDERS_PER_REGULAR = 5.0  # Poisson mean over the year
WALK_IN_MEMBERS_SHARE = 0.3  # members who never joined the platform, relative to regulars
HEADER = ("No Nota", "Tanggal", "No HP", "Outlet", "Jml Item", "Total")
DATE_FORMAT = "%d/%m/%Y %H:%M"
POS_HISTORY_STREAM = 60  # how the POS writes Tanggal; the import's config says the same


def export_path(out_dir: Path, config: WorldConfig) -> Path:
    return Path(out_dir) / "pos_export" / f"pos_orders_until_{config.start_date:%Y%m%d}.csv"


def _local_phone(international: np.ndarray) -> np.ndarray:
    return np.array(["0" + str(p)[3:] for p in international], dtype=object)


def pos_orders(config: WorldConfig) -> pd.DataFrame:
    """The export's rows, exactly as the file holds them (a pure function of the config)."""
    stores = make_stores(config)
    early = make_population(config, stores, MOVED_OVER_DAYS - 1)
    rng = keyed_rng(config.seed, POS_HISTORY_STREAM)
    with_phone = np.flatnonzero(early.phone != None)  # noqa: E711 (object array)
    regulars = with_phone[rng.random(with_phone.size) < REGULAR_SHARE]
    walk_ins = round(regulars.size * WALK_IN_MEMBERS_SHARE)
    member_phone = np.concatenate(
        [
            _local_phone(early.phone[regulars]),
            np.array([f"08{n}" for n in rng.integers(10**9, 10**10, size=walk_ins)], dtype=object),
        ]
    )
    member_store = np.concatenate(
        [early.home_store[regulars], rng.integers(0, stores.store_id.size, size=walk_ins)]
    )
    member_mean_idr = np.concatenate(
        [config.spend_p / early.nu[regulars], rng.gamma(6.0, 10_000.0, size=walk_ins)]
    )
    orders_each = rng.poisson(ORDERS_PER_REGULAR, size=member_phone.size)
    member = np.repeat(np.arange(member_phone.size), orders_each)
    n = member.size
    days_before = rng.integers(1, HISTORY_DAYS + 1, size=n)
    local_minutes = rng.integers(10 * 60, 21 * 60 + 30, size=n)
    # Local time as the POS recorded it (WIB): no zone in the file, as real exports have none.
    placed_us = day_start_us(config.start_date, -days_before) + local_minutes * MINUTE_US
    quantity = 1 + rng.poisson(1.3, size=n)
    amount = np.round(rng.gamma(8.0, member_mean_idr[member] / 8.0) / 500.0) * 500.0
    order = np.lexsort((member, placed_us))
    store_codes = stores.store_code[member_store[member]][order]
    export = pd.DataFrame(
        {
            "No Nota": [f"{code}-{receipt:06d}" for receipt, code in enumerate(store_codes, 1)],
            "Tanggal": pd.to_datetime(placed_us[order], unit="us").strftime(DATE_FORMAT),
            "No HP": member_phone[member[order]],
            "Outlet": store_codes,
            "Jml Item": quantity[order],
            "Total": amount[order].astype(np.int64),
        },
        columns=list(HEADER),
    )
    return export.assign(
        _on_platform=np.repeat(np.arange(member_phone.size) < regulars.size, orders_each)[order]
    )


def write_pos_export(config: WorldConfig, out_dir: Path) -> dict[str, Any]:
    """Write the export (replacing any); a build calls this, an advance never does."""
    path = export_path(out_dir, config)
    path.parent.mkdir(parents=True, exist_ok=True)
    orders = pos_orders(config)
    orders[list(HEADER)].to_csv(path, index=False, lineterminator="\n")
    return pos_export_truth(config, orders)


def pos_export_truth(config: WorldConfig, orders: pd.DataFrame | None = None) -> dict[str, Any]:
    """Rows, members (and how many of them are platform guests) and revenue of the export."""
    orders = pos_orders(config) if orders is None else orders
    return {
        "pos_export": {
            "file": export_path(Path("."), config).name,
            "rows": len(orders),
            "members": int(orders["No HP"].nunique()),
            "members_on_platform": int(orders.loc[orders["_on_platform"], "No HP"].nunique()),
            "revenue": int(orders["Total"].sum()),
            "days_covered": HISTORY_DAYS,
        }
    }
