"""The GA4 property's view of the app and website: one row per session, as a report source.

The same sessions as the Segment events (the site and app carry both tags), with GA4's own
vocabulary: a client id per browser (or app instance id per install) as user_pseudo_id, the
session's source / medium / campaign with GA4's '(direct)' / '(none)' / '(organic)' labels,
device category, region in GA4's English names, engagement and purchases. Dates are in the
property's time zone (Asia/Jakarta). A fake GA4 Data API aggregates this file for runReport.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from simulator.model.catalog import PROVINCES
from simulator.model.clock import HOUR_US
from simulator.model.devices import APP_DEVICES, BROWSERS
from simulator.model.funnel import VIEW
from simulator.model.rand import Stream, counter_uniform
from simulator.model.sessions import DIRECT, EMAIL, GOOGLE_CPC, ORGANIC, PAID_SOCIAL, REFERRAL
from simulator.model.timeline import Timeline
from simulator.model.web import WebWorld, ad_platforms, utm_values

PROPERTY_UTC_OFFSET_HOURS = 7  # Asia/Jakarta
ENGAGED_SECONDS = 10.0
GA4_REGIONS = {
    "DKI Jakarta": "Jakarta",
    "Jawa Barat": "West Java",
    "Bali": "Bali",
    "Jawa Timur": "East Java",
    "Banten": "Banten",
    "DI Yogyakarta": "Special Region of Yogyakarta",
    "Jawa Tengah": "Central Java",
    "Sumatera Utara": "North Sumatra",
    "Sulawesi Selatan": "South Sulawesi",
    "Kalimantan Timur": "East Kalimantan",
}
# Per source: (session_source, session_medium, campaign when untagged). An ad click's
# session_source is its utm_source, the publisher platform (web.ad_platforms).
SOURCE_LABELS = {
    DIRECT: ("(direct)", "(none)", "(direct)"),
    ORGANIC: ("google", "organic", "(organic)"),
    GOOGLE_CPC: ("google", "cpc", "(not set)"),
    PAID_SOCIAL: (None, "paid_social", "(not set)"),
    EMAIL: ("newsletter", "email", "(not set)"),
    REFERRAL: ("referral", "referral", "(not set)"),
}
FILE = "sessions.parquet"


def ga4_table(tl: Timeline, w: WebWorld, until_us: int) -> pa.Table:
    s, d = w.s, w.devices
    rows = np.flatnonzero(w.start <= until_us)
    rows = rows[np.lexsort((s.key[rows], w.start[rows]))]
    start = w.start[rows]
    dev = w.dev[rows]
    # The device's first session makes its user new, and dates its web client id.
    first_seen = np.full(d.key.size, np.iinfo(np.int64).max)
    np.minimum.at(first_seen, w.dev, w.start)
    is_new = first_seen[dev] == start
    web_id = (
        d.client_number[dev].astype(str).astype(object)
        + "."
        + (first_seen[dev] // 1_000_000).astype(str).astype(object)
    )
    app_id = np.asarray(d.app_instance_id.take(pa.array(dev)).to_numpy(zero_copy_only=False))
    is_app = s.is_app[rows]
    pseudo_id = np.where(is_app, app_id, web_id)
    source = s.source[rows]
    labels = np.array([SOURCE_LABELS[k] for k in range(len(SOURCE_LABELS))], dtype=object)
    campaign, _, _ = utm_values(w, rows)
    campaign = np.where(campaign == None, labels[source, 2], campaign)  # noqa: E711
    model = d.model[dev]
    category = np.where(
        is_app,
        np.take([m[5] for m in APP_DEVICES], np.where(is_app, model, 0)),
        np.take([b[0] for b in BROWSERS], np.where(is_app, 0, model)),
    )
    os_name = np.take([m[0] for m in APP_DEVICES], np.where(is_app, model, 0))
    platform = np.where(is_app, os_name, "web")
    region = np.take([GA4_REGIONS[p.name] for p in PROVINCES], s.province[rows])
    ev = w.ev
    views = np.bincount(ev.sess[ev.kind == VIEW], minlength=len(s))[rows]
    order_row = s.order_row[rows]
    purchases = (order_row >= 0).astype(np.int64)
    revenue = np.where(order_row >= 0, tl.orders.total[np.maximum(order_row, 0)], 0)
    # Time on the last page, which no event marks: exponential, mean 8 s.
    u = counter_uniform(tl.config.seed, Stream.WEB_SESSIONS, s.key[rows], 0, 60)
    dwell = -np.log(u) * 8.0
    engagement = (w.end[rows] - start) / 1e6 + dwell
    engaged = (engagement > ENGAGED_SECONDS) | (views >= 2) | (purchases > 0)
    local = (start + PROPERTY_UTC_OFFSET_HOURS * HOUR_US).astype("datetime64[us]")
    dates = np.char.replace(np.datetime_as_string(local.astype("datetime64[D]")), "-", "")
    return pa.table(
        {
            "date": pa.array(dates.astype(object), pa.string()),
            "user_pseudo_id": pa.array(pseudo_id.astype(object), pa.string()),
            "ga_session_id": pa.array(start // 1_000_000, pa.int64()),
            "session_source": pa.array(
                np.where(source == PAID_SOCIAL, ad_platforms(w, rows), labels[source, 0]),
                pa.string(),
            ),
            "session_medium": pa.array(labels[source, 1], pa.string()),
            "session_campaign_name": pa.array(campaign, pa.string()),
            "device_category": pa.array(category.astype(object), pa.string()),
            "region": pa.array(region.astype(object), pa.string()),
            "platform": pa.array(platform.astype(object), pa.string()),
            "is_new_user": pa.array(is_new),
            "is_engaged": pa.array(engaged),
            "engagement_time_s": pa.array(np.round(engagement, 3)),
            "screen_page_views": pa.array(views, pa.int64()),
            "key_events": pa.array(purchases, pa.int64()),
            "purchase_revenue": pa.array(revenue.astype(np.float64)),
        }
    )


def write_ga4(tl: Timeline, w: WebWorld, out: Path, until_us: int) -> dict[str, Any]:
    """Rewrite <out>/sessions.parquet with every session started by until_us."""
    table = ga4_table(tl, w, until_us)
    out.mkdir(parents=True, exist_ok=True)
    tmp = out / (FILE + ".tmp")
    pq.write_table(table, tmp, compression="zstd")
    tmp.replace(out / FILE)
    return {
        "sessions": table.num_rows,
        "engaged_sessions": int(np.sum(table.column("is_engaged").to_numpy())),
        "new_users": int(np.sum(table.column("is_new_user").to_numpy())),
        "key_events": int(np.sum(table.column("key_events").to_numpy())),
        "purchase_revenue": float(np.sum(table.column("purchase_revenue").to_numpy())),
    }
