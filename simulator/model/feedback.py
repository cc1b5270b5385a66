"""In-app feedback after completed orders: ratings of the food, the price and the service, an NPS
answer and sometimes a short comment, landing in the ordering DB's `order_feedback` table.

Everything about an order's feedback is drawn from keys (order_id, n), so it is the same whatever
the horizon; a snapshot holds the rows submitted by its as-of instant. Planted: one dish and one
store are rated clearly worse.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from simulator.model.clock import DAY_US, MINUTE_US, NEVER
from simulator.model.ordering import DELIVERY
from simulator.model.rand import Stream, counter_uniform
from simulator.model.timeline import Timeline

RESPONSE_SHARE = 0.15  # completed orders whose guest rates them
PLANTED_ITEM = "Nasi Goreng Seafood"  # the dish guests like least ...
PLANTED_ITEM_FOOD_EFFECT = -1.2  # ... on the food rating of orders containing it
PLANTED_STORE = "JBR-02"  # the store with slow, unfriendly service ...
PLANTED_STORE_SERVICE_EFFECT = -1.0  # ... on the service rating
ASPECTS = ("food", "price", "service")
FOOD, PRICE, SERVICE = range(3)
BASE_MEAN = (4.25, 3.75, 4.15)  # latent means before rounding to 1-5
ASPECT_SD = (0.75, 0.8, 0.75)
MOOD_SD = 0.45  # a guest's overall mood moves all three ratings together
DELIVERY_SERVICE_EFFECT = -0.25
PROMO_PRICE_EFFECT = 0.4
NPS_WEIGHTS = (0.45, 0.2, 0.35)  # food, price, service
INDONESIAN_SHARE = 0.7
MAX_DELAY_US = 7 * DAY_US

# Comment templates: (aspect, sentiment) -> Indonesian, English. "{item}" is a dish of the order.
NEGATIVE, NEUTRAL, POSITIVE = range(3)
COMMENTS: dict[tuple[int, int], tuple[tuple[str, ...], tuple[str, ...]]] = {
    (FOOD, NEGATIVE): (
        (
            "{item} kurang enak, rasanya hambar.",
            "{item} terlalu asin, tidak seperti biasanya.",
            "Porsi {item} kecil sekali untuk harganya.",
            "{item} datang sudah dingin.",
        ),
        (
            "The {item} was bland.",
            "The {item} was far too salty.",
            "Tiny portion of {item}.",
            "The {item} arrived cold.",
        ),
    ),
    (FOOD, NEUTRAL): (
        ("{item} lumayan, tapi bisa lebih pedas.", "{item} oke, standar."),
        ("The {item} was okay.", "{item} was fine, could be spicier."),
    ),
    (FOOD, POSITIVE): (
        (
            "{item} enak banget, bumbunya pas!",
            "Porsi {item} besar dan mengenyangkan.",
            "{item} juara, pasti pesan lagi.",
        ),
        (
            "The {item} was delicious!",
            "Generous portion of {item}, loved it.",
            "Best {item} in town.",
        ),
    ),
    (PRICE, NEGATIVE): (
        ("Harganya kemahalan untuk porsinya.", "Mahal, apalagi ongkirnya."),
        ("Too expensive for what you get.", "Pricey, and the delivery fee is steep."),
    ),
    (PRICE, NEUTRAL): (
        ("Harga standar.", "Harga wajar."),
        ("Prices are fair.", "Reasonable prices."),
    ),
    (PRICE, POSITIVE): (
        ("Harga terjangkau, puas.", "Murah dan enak."),
        ("Great value.", "Good value for money."),
    ),
    (SERVICE, NEGATIVE): (
        (
            "Nunggu lama sekali, pesanan telat.",
            "Pelayannya kurang ramah.",
            "Pesanan saya salah dan lama diganti.",
        ),
        (
            "Waited far too long for my order.",
            "Staff were rude.",
            "My order was wrong and took ages to fix.",
        ),
    ),
    (SERVICE, NEUTRAL): (
        ("Pelayanan cukup.", "Pengantaran sesuai perkiraan."),
        ("Service was okay.", "Delivery on time."),
    ),
    (SERVICE, POSITIVE): (
        ("Pelayanannya cepat dan ramah!", "Pengantaran cepat, masih panas."),
        ("Fast and friendly service!", "Quick delivery, food still hot."),
    ),
}


def _round_rating(latent: np.ndarray) -> np.ndarray:
    return np.clip(np.rint(latent), 1, 5).astype(np.int64)


def _normal(u1: np.ndarray, u2: np.ndarray) -> np.ndarray:
    return np.sqrt(-2.0 * np.log(u1)) * np.cos(2.0 * np.pi * u2)


def _planted_item(tl: Timeline) -> int:
    return int(np.flatnonzero(tl.menu.name == PLANTED_ITEM)[0])


def _planted_store(tl: Timeline) -> int:
    """The planted store, or the second store when the chain is too small to have it."""
    found = np.flatnonzero(tl.stores.store_code == PLANTED_STORE)
    return int(found[0]) if found.size else min(1, tl.stores.store_id.size - 1)


def responses(tl: Timeline) -> dict[str, np.ndarray]:
    """Every feedback response of the timeline (submitted or not yet), in submission order."""
    o, lines, seed = tl.orders, tl.lines, tl.config.seed
    order_id = np.arange(1, o.placed_us.size + 1, dtype=np.int64)

    def u(index: int, keys: np.ndarray) -> np.ndarray:
        return counter_uniform(seed, Stream.FEEDBACK, keys, index)

    eligible = (o.completed_us != NEVER) & (o.deleted_us == NEVER)
    rows = np.flatnonzero(eligible & (u(0, order_id) < RESPONSE_SHARE))
    key = order_id[rows]
    # Submitted minutes to days after completion; most guests answer the prompt right away.
    delay = 3 * MINUTE_US + 40 * MINUTE_US * np.exp(1.7 * _normal(u(1, key), u(2, key)))
    created = o.completed_us[rows] + np.minimum(delay, MAX_DELAY_US).astype(np.int64)
    submitted = created - (0.2e6 + 2.8e6 * u(3, key)).astype(np.int64)  # the device's clock

    # Which orders hold the planted dish, and a random dish of each order for comments.
    item = _planted_item(tl)
    has_item = np.zeros(o.placed_us.size, dtype=bool)
    has_item[lines.order_row[lines.menu_idx == item]] = True
    first_line = np.searchsorted(lines.order_row, rows)
    n_lines = np.searchsorted(lines.order_row, rows, side="right") - first_line
    any_line = lines.menu_idx[first_line + (u(4, key) * n_lines).astype(np.int64)]
    contains = has_item[rows]
    at_store = o.store_idx[rows] == _planted_store(tl)

    mood = MOOD_SD * _normal(u(5, key), u(6, key))
    latent = np.stack(
        [
            BASE_MEAN[a] + mood + ASPECT_SD[a] * _normal(u(7 + 2 * a, key), u(8 + 2 * a, key))
            for a in range(3)
        ]
    )
    latent[FOOD] += np.where(contains, PLANTED_ITEM_FOOD_EFFECT, 0.0)
    latent[PRICE] += np.where(o.discount[rows] > 0, PROMO_PRICE_EFFECT, 0.0)
    latent[SERVICE] += np.where(at_store, PLANTED_STORE_SERVICE_EFFECT, 0.0)
    latent[SERVICE] += np.where(o.fulfilment[rows] == DELIVERY, DELIVERY_SERVICE_EFFECT, 0.0)
    ratings = _round_rating(latent)
    weighted = sum(w * ratings[a] for a, w in enumerate(NPS_WEIGHTS))
    noise = 1.4 * _normal(u(13, key), u(14, key))
    nps = np.clip(np.rint(10.8 - 2.2 * (5 - weighted) + noise), 0, 10)

    # A comment is likelier after a bad or a great experience; it is about the most extreme
    # aspect, and a food comment names the dish (the planted one when it disappointed).
    low, high = ratings.min(axis=0), ratings.max(axis=0)
    comment_share = np.where(low <= 2, 0.55, np.where(high == 5, 0.35, 0.2))
    commented = u(15, key) < comment_share
    sentiment = np.where(low <= 2, NEGATIVE, np.where(high == 5, POSITIVE, NEUTRAL))
    aspect = np.where(
        sentiment == NEGATIVE,
        ratings.argmin(axis=0),
        np.where(sentiment == POSITIVE, ratings.argmax(axis=0), FOOD),
    )
    about = np.where(contains & (ratings[FOOD] <= 3), item, any_line)
    english = u(16, key) >= INDONESIAN_SHARE
    comment = _comments(tl, aspect, sentiment, english, about, u(17, key), commented)
    menu_item_id = np.where(commented & (aspect == FOOD), tl.menu.menu_item_id[about], -1)

    order = np.lexsort((key, created))
    cols = {
        "order_row": rows,
        "food": ratings[FOOD],
        "price": ratings[PRICE],
        "service": ratings[SERVICE],
        "nps": nps.astype(np.int64),
        "comment": comment,
        "menu_item_id": menu_item_id,
        "submitted_us": submitted,
        "created_us": created,
        "contains_item": contains,
        "at_store": at_store,
    }
    return {name: values[order] for name, values in cols.items()}


def _comments(
    tl: Timeline,
    aspect: np.ndarray,
    sentiment: np.ndarray,
    english: np.ndarray,
    about: np.ndarray,
    pick: np.ndarray,
    commented: np.ndarray,
) -> np.ndarray:
    out = np.full(aspect.size, None, dtype=object)
    for (a, s), languages in COMMENTS.items():
        for lang, templates in enumerate(languages):
            rows = np.flatnonzero(
                commented & (aspect == a) & (sentiment == s) & (english == bool(lang))
            )
            if not rows.size:
                continue
            choice = (pick[rows] * len(templates)).astype(np.int64)
            for t, template in enumerate(templates):
                chosen = rows[choice == t]
                head, _, tail = template.partition("{item}")
                if "{item}" in template:
                    out[chosen] = head + tl.menu.name[about[chosen]] + tail
                else:
                    out[chosen] = template
    return out


def submitted(tl: Timeline, end_us: int) -> dict[str, np.ndarray]:
    """The responses submitted by end_us (created_at), in feedback_id order; a response never
    changes after it is submitted."""
    r = responses(tl)
    n = int(np.searchsorted(r["created_us"], end_us, side="right"))
    return {name: values[:n] for name, values in r.items()}


def _mean(values: np.ndarray) -> float | None:
    return round(float(values.mean()), 4) if values.size else None


def _worst(
    tl: Timeline, rows: np.ndarray, food: np.ndarray, service: np.ndarray, min_responses: int
) -> tuple[int | None, int | None]:
    """The dish with the lowest mean food rating over the orders holding it, and the store with
    the lowest mean service rating, among those with at least min_responses responses."""
    n = rows.size
    line_rows = np.isin(tl.lines.order_row, rows)
    feedback_of = np.full(tl.orders.placed_us.size, -1, dtype=np.int64)
    feedback_of[rows] = np.arange(n)
    line_fb = feedback_of[tl.lines.order_row[line_rows]]
    dish = tl.lines.menu_idx[line_rows]
    dish_count = np.bincount(dish, minlength=tl.menu.sku.size)
    dish_sum = np.bincount(dish, weights=food[line_fb], minlength=tl.menu.sku.size)
    supported = np.flatnonzero(dish_count >= min_responses)
    worst_dish = (
        int(supported[np.argmin(dish_sum[supported] / dish_count[supported])])
        if supported.size
        else None
    )
    store_idx = tl.orders.store_idx[rows]
    store_count = np.bincount(store_idx, minlength=tl.stores.store_id.size)
    store_sum = np.bincount(store_idx, weights=service, minlength=store_count.size)
    supported = np.flatnonzero(store_count >= min_responses)
    worst_store = (
        int(supported[np.argmin(store_sum[supported] / store_count[supported])])
        if supported.size
        else None
    )
    return worst_dish, worst_store


def _planted(tl: Timeline, item: int, store: int) -> dict[str, Any]:
    return {
        "response_share": RESPONSE_SHARE,
        "worst_item": {
            "name": PLANTED_ITEM,
            "sku": str(tl.menu.sku[item]),
            "menu_item_id": int(tl.menu.menu_item_id[item]),
            "food_effect": PLANTED_ITEM_FOOD_EFFECT,
        },
        "worst_store": {
            "store_code": str(tl.stores.store_code[store]),
            "store_id": int(tl.stores.store_id[store]),
            "service_effect": PLANTED_STORE_SERVICE_EFFECT,
        },
        "latent_mean": dict(zip(ASPECTS, BASE_MEAN, strict=True)),
    }


def feedback_truth(tl: Timeline, end_us: int, min_responses: int = 30) -> dict[str, Any]:
    """What was planted and the mean ratings of the responses submitted by end_us."""
    r = submitted(tl, end_us)
    c = {
        "food_rating": r["food"],
        "price_rating": r["price"],
        "service_rating": r["service"],
        "nps_score": r["nps"],
        "comment": r["comment"],
    }
    rows = r["order_row"]
    n = rows.size
    item = _planted_item(tl)
    store = _planted_store(tl)
    has = np.zeros(tl.orders.placed_us.size, dtype=bool)
    has[tl.lines.order_row[tl.lines.menu_idx == item]] = True
    contains = has[rows]
    at_store = tl.orders.store_idx[rows] == store

    worst_dish, worst_store = _worst(tl, rows, c["food_rating"], c["service_rating"], min_responses)
    return {
        "planted": _planted(tl, item, store),
        "responses": n,
        "comments": int((c["comment"] != None).sum()),  # noqa: E711
        "mean_rating": {
            "food": _mean(c["food_rating"]),
            "price": _mean(c["price_rating"]),
            "service": _mean(c["service_rating"]),
            "nps_score": _mean(c["nps_score"]),
        },
        "nps": (
            round(float(((c["nps_score"] >= 9).mean() - (c["nps_score"] <= 6).mean()) * 100), 2)
            if n
            else None
        ),
        "planted_item_food": {
            "responses": int(contains.sum()),
            "mean": _mean(c["food_rating"][contains]),
            "mean_other_orders": _mean(c["food_rating"][~contains]),
        },
        "planted_store_service": {
            "responses": int(at_store.sum()),
            "mean": _mean(c["service_rating"][at_store]),
            "mean_other_stores": _mean(c["service_rating"][~at_store]),
        },
        "worst_item_by_mean_food": (
            str(tl.menu.name[worst_dish]) if worst_dish is not None else None
        ),
        "worst_store_by_mean_service": (
            str(tl.stores.store_code[worst_store]) if worst_store is not None else None
        ),
        "min_responses_for_worst": min_responses,
    }
