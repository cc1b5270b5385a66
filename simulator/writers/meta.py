"""The Meta ads account as the Marketing API would show it, as files a fake API server serves.

`campaigns.json`, `adsets.json`, `ads.json`: the Graph API objects created by the as-of instant,
with the Graph API's field names and its habit of sending numbers and times as strings.
`insights.parquet`: one row per (ad, day, publisher platform) with delivery (level=ad,
time_increment=1, breakdowns=publisher_platform), numbers as numbers (the fake server renders them
as strings). Dates and times are in the account's time zone (Asia/Jakarta). Rewritten whole.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from simulator.model.ads import (
    ACCOUNT_ID,
    ACCOUNT_UTC_OFFSET_HOURS,
    OBJECTIVES,
    OPTIMIZATION_GOAL,
    PUBLISHER_PLATFORMS,
    AdPlan,
    Delivery,
    account_day_us,
    attribute_orders,
    deliver,
)
from simulator.model.catalog import PROVINCES
from simulator.model.clock import DAY_US, HOUR_US, day_start_us
from simulator.model.timeline import Timeline
from simulator.model.web import WebWorld
from simulator.writers.ga4 import GA4_REGIONS

REGION_KEYS = {  # Meta's geo region keys for Indonesian provinces
    "DKI Jakarta": "1739",
    "Jawa Barat": "1741",
    "Bali": "1734",
    "Jawa Timur": "1743",
    "Banten": "1735",
    "DI Yogyakarta": "1738",
    "Jawa Tengah": "1742",
    "Sumatera Utara": "1758",
    "Sulawesi Selatan": "1754",
    "Kalimantan Timur": "1748",
}


def graph_time(us: int) -> str:
    """'2025-02-24T10:15:00+0700', as the Graph API writes times in the account's zone."""
    local = np.datetime64(int(us) + ACCOUNT_UTC_OFFSET_HOURS * HOUR_US, "us").astype(
        "datetime64[s]"
    )
    return f"{local.item():%Y-%m-%dT%H:%M:%S}+{ACCOUNT_UTC_OFFSET_HOURS:02d}00"


def delivery_until(tl: Timeline, w: WebWorld, until_us: int) -> Delivery:
    s, o = w.s, tl.orders
    last_day = int((until_us // DAY_US) - day_start_us(tl.config.start_date, 0) // DAY_US)
    clicks = np.flatnonzero((s.ad >= 0) & (w.start <= until_us))
    placed = np.flatnonzero(o.placed_us <= until_us)
    guest_clicks = clicks[s.cust[clicks] >= 0]
    row, ad, platform = attribute_orders(
        s.cust[guest_clicks],
        w.start[guest_clicks],
        s.ad[guest_clicks],
        s.ad_platform[guest_clicks],
        o.customer_idx[placed],
        o.placed_us[placed],
    )
    hit = row >= 0
    return deliver(
        tl.config,
        w.plan,
        last_day,
        s.ad[clicks],
        s.day[clicks],
        s.ad_platform[clicks],
        ad[hit],
        s.day[guest_clicks[row[hit]]],
        platform[hit],
        o.total[placed[hit]].astype(np.float64),
    )


def _status(ended: bool) -> tuple[str, str]:
    return ("PAUSED", "PAUSED") if ended else ("ACTIVE", "ACTIVE")


def _campaign(plan: AdPlan, c: int, start_us: int, stop_us: int, ended: bool) -> dict[str, Any]:
    status, effective = _status(ended)
    updated = stop_us if ended else int(plan.created_us[c]) + 15 * 60_000_000
    return {
        "account_id": ACCOUNT_ID,
        "buying_type": "AUCTION",
        "created_time": graph_time(plan.created_us[c]),
        "daily_budget": str(int(plan.daily_budget[c])),
        "effective_status": effective,
        "id": plan.campaign_id[c],
        "name": plan.campaign_name[c],
        "objective": OBJECTIVES[plan.audience[c]],
        "start_time": graph_time(start_us),
        "status": status,
        "stop_time": graph_time(stop_us),
        "updated_time": graph_time(updated),
    }


def _adset(plan: AdPlan, c: int, a: int, start_us: int, stop_us: int, effective: str) -> dict:
    province = PROVINCES[plan.adset_province[a]].name
    region = {"country": "ID", "key": REGION_KEYS[province], "name": GA4_REGIONS[province]}
    return {
        "account_id": ACCOUNT_ID,
        "billing_event": "IMPRESSIONS",
        "campaign_id": plan.campaign_id[c],
        "created_time": graph_time(plan.adset_created_us[a]),
        "effective_status": effective,
        "end_time": graph_time(stop_us),
        "id": plan.adset_id[a],
        "name": plan.adset_name[a],
        "optimization_goal": OPTIMIZATION_GOAL[plan.audience[c]],
        "start_time": graph_time(start_us),
        "status": "ACTIVE",
        "targeting": {
            "age_max": 44,
            "age_min": 18,
            "geo_locations": {"regions": [region]},
            "publisher_platforms": list(PUBLISHER_PLATFORMS),
        },
        "updated_time": graph_time(plan.adset_created_us[a]),
    }


def _ad(plan: AdPlan, c: int, a: int, ad: int, effective: str) -> dict[str, Any]:
    return {
        "account_id": ACCOUNT_ID,
        "adset_id": plan.adset_id[a],
        "campaign_id": plan.campaign_id[c],
        "created_time": graph_time(plan.ad_created_us[ad]),
        "creative": {"id": str(int(plan.ad_id[ad]) + 7)},
        "effective_status": effective,
        "id": plan.ad_id[ad],
        "name": plan.ad_name[ad],
        "status": "ACTIVE",
        "updated_time": graph_time(plan.ad_created_us[ad]),
    }


def graph_objects(tl: Timeline, plan: AdPlan, until_us: int) -> tuple[list, list, list]:
    """The campaigns, ad sets and ads created by until_us, as the Graph API returns them."""
    start = tl.config.start_date
    c_start_us = account_day_us(start, plan.start_day)
    c_stop_us = account_day_us(start, plan.stop_day)
    ended = c_stop_us <= until_us + 1
    campaigns, adsets, ads = [], [], []
    for c in np.flatnonzero(plan.created_us <= until_us):
        span = int(c_start_us[c]), int(c_stop_us[c])
        campaigns.append(_campaign(plan, c, *span, bool(ended[c])))
        for a in np.flatnonzero(plan.adset_campaign == c):
            effective = "CAMPAIGN_PAUSED" if ended[c] else "ACTIVE"
            adsets.append(_adset(plan, c, a, *span, effective))
            ads.extend(_ad(plan, c, a, ad, effective) for ad in np.flatnonzero(plan.ad_adset == a))
    return campaigns, adsets, ads


def write_meta(tl: Timeline, w: WebWorld, out: Path, until_us: int) -> dict[str, Any]:
    campaigns, adsets, ads = graph_objects(tl, w.plan, until_us)
    out.mkdir(parents=True, exist_ok=True)
    for name, rows in (("campaigns", campaigns), ("adsets", adsets), ("ads", ads)):
        tmp = out / f"{name}.json.tmp"
        tmp.write_text(json.dumps(rows, indent=2, sort_keys=True, ensure_ascii=False) + "\n")
        tmp.replace(out / f"{name}.json")

    dl = delivery_until(tl, w, until_us)
    table = insights_table(tl, w, dl)
    tmp = out / "insights.parquet.tmp"
    pq.write_table(table, tmp, compression="zstd")
    tmp.replace(out / "insights.parquet")
    return _truth(w, dl, len(campaigns))


def insights_table(tl: Timeline, w: WebWorld, dl: Delivery) -> pa.Table:
    plan = w.plan
    keep = (dl.impressions > 0) | (dl.clicks > 0)
    ad = dl.ad[keep]
    adset = plan.ad_adset[ad]
    campaign = plan.adset_campaign[adset]
    days = np.datetime64(tl.config.start_date, "D") + dl.day[keep]
    date_text = np.datetime_as_string(days).astype(object)
    return pa.table(
        {
            "date_start": pa.array(date_text, pa.string()),
            "date_stop": pa.array(date_text, pa.string()),
            "account_id": pa.array(np.full(ad.size, ACCOUNT_ID, dtype=object), pa.string()),
            "campaign_id": pa.array(plan.campaign_id[campaign], pa.string()),
            "campaign_name": pa.array(plan.campaign_name[campaign], pa.string()),
            "adset_id": pa.array(plan.adset_id[adset], pa.string()),
            "adset_name": pa.array(plan.adset_name[adset], pa.string()),
            "ad_id": pa.array(plan.ad_id[ad], pa.string()),
            "ad_name": pa.array(plan.ad_name[ad], pa.string()),
            "publisher_platform": pa.array(
                np.take(np.array(PUBLISHER_PLATFORMS, dtype=object), dl.platform[keep]),
                pa.string(),
            ),
            "impressions": pa.array(dl.impressions[keep], pa.int64()),
            "reach": pa.array(dl.reach[keep], pa.int64()),
            "clicks": pa.array(dl.clicks[keep], pa.int64()),
            "spend": pa.array(dl.spend[keep]),
            "purchases": pa.array(dl.purchases[keep], pa.int64()),
            "purchase_value": pa.array(dl.purchase_value[keep]),
        }
    )


def _figures(dl: Delivery, m: np.ndarray) -> dict[str, Any]:
    return {
        "spend": float(dl.spend[m].sum()),
        "impressions": int(dl.impressions[m].sum()),
        "clicks": int(dl.clicks[m].sum()),
        "landed_sessions": int(dl.landed[m].sum()),
        "purchases": int(dl.purchases[m].sum()),
        "purchase_value": float(dl.purchase_value[m].sum()),
    }


def _by_platform(dl: Delivery, m: np.ndarray) -> dict[str, dict[str, Any]]:
    """Figures per publisher platform that delivered (an ad click's utm_source is its platform,
    so landed_sessions are the sessions tagged with it)."""
    return {
        name: _figures(dl, m & (dl.platform == k))
        for k, name in enumerate(PUBLISHER_PLATFORMS)
        if (m & (dl.platform == k) & ((dl.impressions > 0) | (dl.clicks > 0))).any()
    }


def _truth(w: WebWorld, dl: Delivery, n_campaigns: int) -> dict[str, Any]:
    plan = w.plan
    campaign = plan.adset_campaign[plan.ad_adset[dl.ad]]
    per = {}
    for c in np.unique(campaign):
        m = campaign == c
        per[str(plan.campaign_name[c])] = {
            "campaign_id": str(plan.campaign_id[c]),
            **_figures(dl, m),
            "by_platform": _by_platform(dl, m),
        }
    everything = np.ones(dl.ad.size, dtype=bool)
    return {
        "account_id": ACCOUNT_ID,
        "campaigns_created": n_campaigns,
        "attribution": "7-day click, last ad click by the same guest, reported on the click day",
        "spend": float(dl.spend.sum()),
        "clicks": int(dl.clicks.sum()),
        "landed_sessions": int(dl.landed.sum()),
        "purchases": int(dl.purchases.sum()),
        "by_platform": _by_platform(dl, everything),
        "by_campaign": per,
    }
