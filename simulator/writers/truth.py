"""The truth file: the generative parameters, what was planted, and figures computed from the
generated data as of the snapshot, so tests can check that the marts measure what happened."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

import numpy as np

from simulator.model.accounts import EDIT_KINDS, EDIT_SHARE
from simulator.model.catalog import PROMOS
from simulator.model.chain import (
    PRICE_REVIEW_EVERY,
    PRICE_REVIEW_FIRST_DAY,
    SEASONAL_AVAILABLE_DAYS,
    SEASONAL_DELETED_AFTER_DAYS,
)
from simulator.model.clock import DAY_PARTS, day_start_us, end_of_day_us
from simulator.model.ordering import FULFILMENT_SHARE, PLATFORM_LOYALTY
from simulator.model.population import (
    CHANNEL_DROPOUT_MULTIPLIER,
    CHANNEL_RATE_MULTIPLIER,
    CHANNEL_SHARE,
    CHANNELS,
)
from simulator.model.snapshot import Table
from simulator.model.timeline import Timeline


def _counts(labels: np.ndarray) -> dict[str, int]:
    values, counts = np.unique(np.asarray(labels, dtype=str), return_counts=True)
    return {str(v): int(c) for v, c in zip(values, counts, strict=True)}


def _months(us: np.ndarray) -> np.ndarray:
    return np.datetime_as_string(us.astype("datetime64[us]").astype("datetime64[M]"))


def _planted(tl: Timeline, as_of: date) -> dict[str, Any]:
    start, menu = tl.config.start_date, tl.menu
    end_us = end_of_day_us(as_of)
    done = menu.change_us <= end_us
    price_changes = [
        {
            "date": (start + timedelta(days=int(d))).isoformat(),
            "sku": str(s),
            "new_price": int(p),
        }
        for d, s, p in zip(
            menu.change_day[done],
            menu.sku[menu.change_item[done]],
            menu.change_price[done],
            strict=True,
        )
    ]
    seasonal = [
        {
            "sku": str(menu.sku[i]),
            "name": str(menu.name[i]),
            "launched_on": (start + timedelta(days=int(menu.created_day[i]))).isoformat(),
            "sold_out_on": (start + timedelta(days=int(menu.retired_day[i]))).isoformat(),
            "deleted_on": (start + timedelta(days=int(menu.deleted_day[i]))).isoformat(),
        }
        for i in np.flatnonzero((menu.created_day >= 0) & (menu.created_us <= end_us))
    ]
    stores = tl.stores
    return {
        "store_openings": {
            str(code): str(opened)
            for code, opened in zip(stores.store_code, stores.opened_on, strict=True)
        },
        "channels": {
            c: {
                "share": CHANNEL_SHARE[i],
                "rate_multiplier": CHANNEL_RATE_MULTIPLIER[i],
                "dropout_multiplier": CHANNEL_DROPOUT_MULTIPLIER[i],
            }
            for i, c in enumerate(CHANNELS)
        },
        "promos": [p._asdict() for p in PROMOS],
        "price_reviews": {
            "first_day": PRICE_REVIEW_FIRST_DAY,
            "every_days": PRICE_REVIEW_EVERY,
            "changes": price_changes,
        },
        "seasonal_items": {
            "available_days": SEASONAL_AVAILABLE_DAYS,
            "deleted_after_days": SEASONAL_DELETED_AFTER_DAYS,
            "items": seasonal,
        },
        "day_parts_local": [{"weight": w, "mean_hour": m, "sd_hours": s} for w, m, s in DAY_PARTS],
        "fulfilment_share": {k: list(v) for k, v in FULFILMENT_SHARE.items()},
        "platform_loyalty": PLATFORM_LOYALTY,
        "profile_edit_share": dict(zip(EDIT_KINDS, EDIT_SHARE, strict=True)),
    }


def _figures(tl: Timeline, tables: dict[str, Table], as_of: date) -> dict[str, Any]:
    pop, purchases = tl.population, tl.purchases
    end_us = end_of_day_us(as_of)
    last_day = (as_of - tl.config.start_date).days
    orders = tables["orders"].columns
    live = ~orders["deleted_at"].present
    completed = live & (orders["status"] == "completed")
    n = len(tables["customers"])
    ordered = np.zeros(n, dtype=bool)
    ordered[orders["customer_id"] - 1] = True
    dropped = purchases.dropout_day[:n] <= last_day
    churn_us = day_start_us(tl.config.start_date, np.where(dropped, purchases.dropout_day[:n], 0))
    stores = tables["stores"].columns
    return {
        "rows": {name: len(table) for name, table in tables.items()},
        "completed_revenue": int(orders["total_idr"][completed].sum()),
        "orders_by_status": _counts(orders["status"]),
        "live_orders_by_status": _counts(orders["status"][live]),
        "orders_deleted": int((~live).sum()),
        "customers_acquired_by_month": _counts(_months(pop.signup_us[:n])),
        "customers_churned_by_month": _counts(_months(churn_us[dropped])),
        "customers_by_channel": _counts(np.take(CHANNELS, pop.channel[:n])),
        "customers_ordered": int(ordered.sum()),
        "customers_alive": int((ordered & ~dropped).sum()),
        "customers_closed": int((tl.accounts.closed_us[:n] <= end_us).sum()),
        "latent_mean_lambda_per_day": float(pop.lam[:n].mean()) if n else 0.0,
        "latent_mean_dropout_p": float(pop.p_drop[:n].mean()) if n else 0.0,
        "stores": [
            {
                "store_id": int(stores["store_id"][i]),
                "store_code": stores["store_code"][i],
                "province": stores["province"][i],
                "city": stores["city"][i],
                "opened_on": stores["opened_on"][i],
            }
            for i in range(len(tables["stores"]))
        ],
    }


def truth(tl: Timeline, tables: dict[str, Table], as_of: date) -> dict[str, Any]:
    """Everything a test may want to compare the pipeline's output with, as of `as_of`."""
    parameters = tl.config.to_json()
    del parameters["days"]  # only decides the first snapshot, not the world
    return {
        "as_of": as_of.isoformat(),
        "parameters": parameters,
        "planted": _planted(tl, as_of),
        "figures": _figures(tl, tables, as_of),
    }
