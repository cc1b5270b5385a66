"""The `messaging` stream: Customer.io's reporting webhooks for every campaign send, one event
per line, and the truth of what the campaigns did.

A webhook arrives seconds after its event; some arrive late (a retry) or twice (same event_id).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pyarrow as pa

from simulator.model.campaigns import (
    BAD_EMAIL_SHARE,
    BAD_PHONE_SHARE,
    CHANNEL_NAMES,
    EMAIL,
    FAILURES,
    HARD_BOUNCE,
    HOLDOUT_SHARE,
    KINDS,
    METRICS,
    SEND_EVENTS,
    SHORT_SITE,
    SITE,
    SMS,
    SMS_FAIL_SHARE,
    SOFT_BOUNCE_SHARE,
    UNSUBSCRIBE_GIVEN_OPEN,
    UPLIFT_DAYS,
    WINDOW_US,
    CampaignRun,
    between_us,
)
from simulator.model.clock import DAY_US, HOUR_US, MINUTE_US, NEVER
from simulator.model.rand import Stream, counter_uniform
from simulator.model.timeline import Timeline
from simulator.writers.landing import HourFiles, write_hours
from simulator.writers.text import (
    base64_chars,
    digits,
    fixed,
    hex_chars,
    join,
    pieces,
    random_bits,
    strings,
    ulid_chars,
)

# --- The provider's reporting webhooks ----------------------------------------------------

CHUNK_DAYS = 7  # a week of arrivals at a time keeps a year of JSON text out of memory
LATE_SHARE = 0.01  # events the webhook delivers late (a retry minutes to hours later)
DUPLICATE_SHARE = 0.005  # events delivered twice (same event_id): a retry after a timeout


def _event_rows(tl: Timeline, run: CampaignRun) -> dict[str, np.ndarray]:
    """Every webhook delivery of the run, numeric: one row per (event, copy); a retried event
    appears twice with the same event key. Includes events after the horizon."""
    seed, cid = tl.config.seed, tl.population.customer_id
    parts = [(np.flatnonzero(getattr(run, name) != NEVER), j) for j, name in enumerate(SEND_EVENTS)]
    send_row = np.concatenate([rows for rows, _ in parts])
    metric = np.concatenate([np.full(rows.size, j, dtype=np.int64) for rows, j in parts])
    occurred = np.concatenate([getattr(run, SEND_EVENTS[j])[rows] for rows, j in parts])
    key = cid[run.send_customer[send_row]]
    index = run.campaigns.campaign_id[run.send_campaign[send_row]] * 16 + metric

    def draw(lane: int) -> np.ndarray:
        return counter_uniform(seed, Stream.WEBHOOK, key, index, lane=lane)

    arrival = occurred + between_us(draw(20), 1e6, 6e6)
    late = draw(21) < LATE_SHARE
    backoff = np.minimum(-40 * MINUTE_US * np.log(draw(22)), 12 * HOUR_US).astype(np.int64)
    arrival = arrival + np.where(late, backoff, 0)
    twice = np.flatnonzero(draw(23) < DUPLICATE_SHARE)
    retry = (
        arrival[twice] + 4_000_000 + (-30 * MINUTE_US * np.log(draw(24)[twice])).astype(np.int64)
    )
    event = np.concatenate([np.arange(send_row.size), twice])
    return {
        "send_row": send_row[event],
        "metric": metric[event],
        "occurred_us": occurred[event],
        "key": key[event],
        "index": index[event],
        "copy": np.concatenate([np.zeros(send_row.size, np.int64), np.ones(twice.size, np.int64)]),
        "arrival_us": np.concatenate([arrival, retry]),
    }


def guest_pieces(tl: Timeline) -> pa.Array:
    """Per guest: the identity part of an event's data, up to the recipient's value."""
    seed, cid = tl.config.seed, tl.population.customer_id
    cio = hex_chars(random_bits(seed, Stream.WEBHOOK, cid, 0, lane=40), 12).view("S12").ravel()
    texts = [
        f'"customer_id":"{c}","identifiers":{{"id":"{c}","email":"{e}",'
        f'"cio_id":"{i.decode()}"}},"recipient":"'
        for c, e, i in zip(cid.tolist(), tl.population.email.tolist(), cio.tolist(), strict=True)
    ]
    return pa.array(texts, pa.string())


def webhook_deliveries(
    tl: Timeline, run: CampaignRun, since_us: int | None, until_us: int
) -> dict[str, np.ndarray] | None:
    """The webhook deliveries arriving in (since_us, until_us], numeric, in arrival order (a
    retried event appears twice with the same event key); None if there are none."""
    rows = _event_rows(tl, run)
    keep = rows["arrival_us"] <= until_us
    if since_us is not None:
        keep &= rows["arrival_us"] > since_us
    if not keep.any():
        return None
    seed = tl.config.seed
    rows = {name: values[keep] for name, values in rows.items()}
    rows["id_hi"] = random_bits(seed, Stream.WEBHOOK, rows["key"], rows["index"], lane=25)
    rows["id_lo"] = random_bits(seed, Stream.WEBHOOK, rows["key"], rows["index"], lane=27)
    order = np.lexsort((rows["copy"], rows["id_lo"], rows["arrival_us"]))
    return {name: values[order] for name, values in rows.items()}


def webhook_lines(
    tl: Timeline, run: CampaignRun, rows: dict[str, np.ndarray], guests: pa.Array
) -> pa.Array:
    """JSON lines of webhook deliveries (rows from webhook_deliveries, any slice), shaped as
    Customer.io's reporting webhooks send them: the fields a metric carries and no others.
    `guests` is guest_pieces(tl)."""
    seed, cal = tl.config.seed, run.campaigns
    key, send_row, metric = rows["key"], rows["send_row"], rows["metric"]
    n = send_row.size
    campaign = run.send_campaign[send_row]
    channel = cal.channel[campaign]
    delivery = base64_chars(
        [
            random_bits(seed, Stream.WEBHOOK, key, cal.campaign_id[campaign], lane=30 + 2 * i)
            for i in range(3)
        ]
    )
    event_id = ulid_chars(rows["occurred_us"] // 1000, rows["id_hi"], rows["id_lo"])
    kind = [
        f'"object_type":"{CHANNEL_NAMES[c]}","metric":"{m}","timestamp":'
        for c in range(len(CHANNEL_NAMES))
        for m in METRICS
    ]
    newsletter = [f'{i},"delivery_id":"' for i in cal.campaign_id.tolist()]
    subject = [
        f'","subject":"{cal.subject[c]}"' if cal.channel[c] == EMAIL else '"'
        for c in range(len(cal))
    ]
    # Email clicks say whether a machine (a link scanner) made them; SMS clicks do not.
    links = [
        f',"href":"{href}","link_id":{link_id}' + (',"machine":false' if email else "")
        for href, link_id, email in zip(*_link_table(run), strict=True)
    ]
    link = run.link[send_row]
    failure = run.failure[send_row]
    reported = np.isin(metric, [METRICS.index(m) for m in ("bounced", "dropped", "failed")])
    clicked = metric == METRICS.index("clicked")
    cust = run.send_customer[send_row]
    line = join(
        strings(fixed(n, '{"event_id":"', event_id, '",')),
        pieces(channel * len(METRICS) + metric, kind),
        strings(
            fixed(n, digits(rows["occurred_us"] // 1_000_000, 10), ',"data":{"newsletter_id":')
        ),
        pieces(campaign, newsletter),
        strings(fixed(n, delivery, '",')),
        guests.take(pa.array(cust)),
        pa.array(run.recipient[send_row].tolist(), pa.string()),
        pieces(campaign, subject),
        pieces(campaign * _MAX_LINKS + np.maximum(link, 1) - 1, links, mask=~clicked),
        pieces(
            np.maximum(failure, 0),
            [f',"failure_message":"{f}"' for f in FAILURES],
            mask=~reported | (failure < 0),
        ),
        strings(fixed(n, "}}")),
    )
    return line.combine_chunks() if isinstance(line, pa.ChunkedArray) else line


_MAX_LINKS = max(len(k.links) for k in KINDS)


def _link_table(run: CampaignRun) -> tuple[list[str], list[int], list[bool]]:
    """Tracked link URLs per (campaign, link_id), at index campaign * _MAX_LINKS + link_id - 1,
    with the link id and whether the campaign is an email."""
    cal = run.campaigns
    hrefs, ids, emails = [], [], []
    for c in range(len(cal)):
        spec = KINDS[cal.kind[c]]
        day = str(cal.name[c]).rsplit(" ", 1)[-1]
        for link_id in range(1, _MAX_LINKS + 1):
            path = spec.links[min(link_id, len(spec.links)) - 1]
            if spec.channel == SMS:
                hrefs.append(f"{SHORT_SITE}{path}/{cal.campaign_id[c]}")
            else:
                hrefs.append(
                    f"{SITE}{path}?utm_source=customerio&utm_medium=email"
                    f"&utm_campaign={spec.key}-{day}"
                )
            ids.append(link_id)
            emails.append(spec.channel == EMAIL)
    return hrefs, ids, emails


def delivery_counts(tl: Timeline, run: CampaignRun, until_us: int) -> dict[str, Any]:
    """Webhook deliveries that arrived by until_us: per metric (distinct events) and retries."""
    rows = _event_rows(tl, run)
    arrived = rows["arrival_us"] <= until_us
    first = arrived & (rows["copy"] == 0)
    counts = np.bincount(rows["metric"][first], minlength=len(METRICS))
    return {
        "deliveries": int(arrived.sum()),
        "duplicate_deliveries": int((arrived & (rows["copy"] == 1)).sum()),
        "events_by_metric": {m: int(c) for m, c in zip(METRICS, counts, strict=True)},
    }


# --- Truth ----------------------------------------------------------------------------------


def _rate(values: np.ndarray) -> float | None:
    return round(float(values.mean()), 6) if values.size else None


def _planted() -> dict[str, Any]:
    return {
        "provider": "Customer.io reporting webhooks",
        "holdout_share": HOLDOUT_SHARE,
        "uplift_window_days": UPLIFT_DAYS + 1,
        "kinds": {
            k.key: {
                "channel": CHANNEL_NAMES[k.channel],
                "uplift": k.uplift,
                "open_share": k.open_share,
                "click_share": k.click_share,
            }
            for k in KINDS
        },
        "bad_email_share": BAD_EMAIL_SHARE,
        "soft_bounce_share": SOFT_BOUNCE_SHARE,
        "bad_phone_share": BAD_PHONE_SHARE,
        "sms_fail_share": SMS_FAIL_SHARE,
        "unsubscribe_given_open": UNSUBSCRIBE_GIVEN_OPEN,
        "late_share": LATE_SHARE,
        "duplicate_share": DUPLICATE_SHARE,
    }


def messaging_truth(tl: Timeline, run: CampaignRun, end_us: int) -> dict[str, Any]:
    """Per campaign as of end_us: audience, holdout, provider outcomes that have happened, and
    the orders placed within 7 days of the send by delivered guests and by the holdout."""
    cal, orders = run.campaigns, tl.orders
    n_orders = int(np.searchsorted(orders.placed_us, end_us, side="right"))
    n_guests = len(tl.population)
    pooled = {"treated": [0, 0], "holdout": [0, 0], "planted": 0.0}
    campaigns = []
    for c in np.flatnonzero(cal.send_us <= end_us):
        spec = KINDS[cal.kind[c]]
        mine = run.send_campaign == c
        delivered = mine & (run.delivered_us != NEVER)
        counts = {
            name.removesuffix("_us"): int((getattr(run, name)[mine] <= end_us).sum())
            for name in SEND_EVENTS
        }
        entry = {
            "campaign_id": int(cal.campaign_id[c]),
            "name": str(cal.name[c]),
            "kind": spec.key,
            "channel": CHANNEL_NAMES[spec.channel],
            "sent_at": str(np.datetime64(int(cal.send_us[c]), "us")) + "Z",
            "subject": cal.subject[c],
            "eligible": int(run.eligible[c]),
            "holdout": int((run.holdout_campaign == c).sum()),
            "messages": int(mine.sum()),
            "events": counts,
            "hard_bounced": int(((run.failure == HARD_BOUNCE) & mine).sum()),
            "planted_uplift": spec.uplift,
            "induced_orders": int((orders.campaign[:n_orders] == c).sum()),
        }
        window_end = int(cal.send_us[c]) + WINDOW_US
        entry["window_closed"] = window_end <= end_us
        if entry["window_closed"]:
            lo, hi = np.searchsorted(orders.placed_us, [cal.send_us[c], window_end], side="right")
            per_guest = np.bincount(orders.customer_idx[lo:hi], minlength=n_guests)
            treated = per_guest[run.send_customer[delivered]]
            held = per_guest[run.holdout_customer[run.holdout_campaign == c]]
            entry["treated_guests"] = int(treated.size)
            entry["treated_order_rate_7d"] = _rate(treated > 0)
            entry["treated_orders_per_guest_7d"] = _rate(treated)
            entry["holdout_order_rate_7d"] = _rate(held > 0)
            entry["holdout_orders_per_guest_7d"] = _rate(held)
            pooled["treated"][0] += int(treated.sum())
            pooled["treated"][1] += int(treated.size)
            pooled["holdout"][0] += int(held.sum())
            pooled["holdout"][1] += int(held.size)
            pooled["planted"] += spec.uplift * treated.size
        campaigns.append(entry)
    treated_n, holdout_n = pooled["treated"][1], pooled["holdout"][1]
    summary = {
        "campaigns_with_closed_window": sum(e["window_closed"] for e in campaigns),
        "treated_guests": treated_n,
        "holdout_guests": holdout_n,
        "treated_orders_per_guest_7d": (
            round(pooled["treated"][0] / treated_n, 6) if treated_n else None
        ),
        "holdout_orders_per_guest_7d": (
            round(pooled["holdout"][0] / holdout_n, 6) if holdout_n else None
        ),
        "planted_uplift_weighted": round(pooled["planted"] / treated_n, 6) if treated_n else None,
    }
    return {
        "planted": _planted(),
        "campaigns": campaigns,
        "uplift": summary,
    }


def write_messaging(
    tl: Timeline, run: CampaignRun, files: HourFiles, since_us: int | None, until_us: int
) -> int:
    rows = webhook_deliveries(tl, run, since_us, until_us)
    if rows is None:
        return 0
    guests = guest_pieces(tl)
    arrival = rows["arrival_us"]
    written = 0
    week = CHUNK_DAYS * DAY_US
    for lo in range(int(arrival[0] // week), int(arrival[-1] // week) + 1):
        a, b = np.searchsorted(arrival, [lo * week, (lo + 1) * week])
        if b > a:
            part = {name: values[a:b] for name, values in rows.items()}
            lines = webhook_lines(tl, run, part, guests)
            written += write_hours(files, "messaging", arrival[a:b], lines)
    return written
