"""Email and SMS campaigns: the calendar, who receives each send, what the provider reports back,
and the extra orders the sends bring (the planted uplift).

The chain sends through Customer.io; its reporting webhooks land one event per line in the
`messaging` stream. Everything is decided at send time from what was known then, send by send in
time order, and every draw is keyed by (guest, campaign), so a longer horizon reproduces a shorter
one exactly.

Who is sent to: guests who signed up before the send, whose account is not closed and who consent
to the channel at that instant (SMS also needs a phone number). The monthly win-back email also
needs the guest to be lapsed, judged on orders placed on days strictly before the send day
(campaign-induced orders included). A keyed 10% holdout per campaign receives nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import NamedTuple

import numpy as np

from simulator.config import WorldConfig
from simulator.model.accounts import (
    EMAIL_CONSENT,
    PHONE,
    SMS_CONSENT,
    AccountEvents,
    simulate_accounts,
)
from simulator.model.catalog import MOBILE_PREFIXES
from simulator.model.chain import last_per_key
from simulator.model.clock import DAY_US, HOUR_US, MINUTE_US, NEVER, day_start_us, end_of_day_us
from simulator.model.population import Population, phone_numbers
from simulator.model.purchases import DAY_KEY, Purchases, day_keys, settle_extra_purchases
from simulator.model.rand import Stream, counter_uniform

EMAIL, SMS = range(2)
CHANNEL_NAMES = ("email", "sms")
HOLDOUT_SHARE = 0.10
UPLIFT_DAYS = 6  # an induced order falls 1-6 days after the send day: inside 7 x 24 h of the send
WINDOW_US = 7 * DAY_US  # the attribution window of the truth figures
NEWSLETTER_FIRST_DAY = 7  # the first Thursday on or after day 7, then every 14 days
WINBACK_FIRST_DAY = 40
LAPSED_AFTER_DAYS = 30  # win-back: no order in the 30 days before the send day ...
LAPSED_WITHIN_DAYS = 120  # ... but one in the 120 before
BAD_EMAIL_SHARE = 0.015  # addresses that hard-bounce (then the provider suppresses them)
SOFT_BOUNCE_SHARE = 0.01
BAD_PHONE_SHARE = 0.02
SMS_FAIL_SHARE = 0.015
UNSUBSCRIBE_GIVEN_OPEN = 0.008
EMAIL_BLAST_US = 15 * MINUTE_US  # a send goes out over its first minutes
SMS_BLAST_US = 30 * MINUTE_US
MAX_EVENT_DELAY_US = 7 * DAY_US
SITE = "https://kedainusantara.co.id"
SHORT_SITE = "https://kdnus.id"


class CampaignKind(NamedTuple):
    key: str
    channel: int
    name: str
    uplift: float  # planted: extra order probability within the window for a delivered send
    open_share: float  # email: opened | delivered
    click_share: float  # email: clicked | opened; SMS: clicked | delivered
    utc_hour: float  # send time
    subjects: tuple[str, ...]
    links: tuple[str, ...]


KINDS = (
    CampaignKind(
        "newsletter",
        EMAIL,
        "Kabar Kedai",
        0.02,
        0.30,
        0.12,
        3.0,  # 10:00 WIB, Thursday
        (
            "Kabar Kedai: menu spesial minggu ini",
            "Sudah coba Rendang Sapi kami?",
            "Makan siang hemat bareng Kedai Nusantara",
            "Rahasia sambal matah ala dapur kami",
            "Akhir pekan seru di Kedai Nusantara",
            "Cerita dari dapur Kedai Nusantara",
        ),
        ("/menu", "/promo", "/stores"),
    ),
    CampaignKind(
        "payday_promo",
        SMS,
        "Promo Gajian",
        0.04,
        0.0,
        0.07,
        4.5,  # 11:30 WIB on the 25th
        (),
        ("/p",),
    ),
    CampaignKind(
        "winback",
        EMAIL,
        "Kangen Kedai",
        0.03,
        0.22,
        0.18,
        9.0,  # 16:00 WIB on the 10th
        (
            "Kami kangen kamu! Diskon 20% untuk pesanan berikutnya",
            "Sudah lama nggak mampir? Ada menu baru nih",
        ),
        ("/promo/kangen", "/menu"),
    ),
)
NEWSLETTER, PAYDAY, WINBACK = range(len(KINDS))

FAILURES = (
    "550 5.1.1 The email account that you tried to reach does not exist",
    "452 4.2.2 The email account that you tried to reach is over quota",
    "Recipient is suppressed after a hard bounce",
    "Recipient has unsubscribed",
    "30005: Unknown destination handset",
    "30003: Unreachable destination handset",
)
HARD_BOUNCE, SOFT_BOUNCE, SUPPRESSED, UNSUBSCRIBED, BAD_NUMBER, UNREACHABLE = range(len(FAILURES))
METRICS = ("sent", "delivered", "opened", "clicked", "bounced", "dropped", "unsubscribed", "failed")


@dataclass(frozen=True)
class Campaigns:
    """The campaign calendar up to the horizon, in send order."""

    campaign_id: np.ndarray  # Customer.io newsletter_id
    kind: np.ndarray  # index into KINDS
    channel: np.ndarray
    send_day: np.ndarray
    send_us: np.ndarray
    name: np.ndarray
    subject: np.ndarray  # None for SMS

    def __len__(self) -> int:
        return self.campaign_id.size


def campaign_calendar(config: WorldConfig, last_day: int) -> Campaigns:
    """A fortnightly newsletter (Thursdays), a payday SMS on the 25th and a win-back email on the
    10th of each month: a fixed schedule, so a longer horizon only appends campaigns."""
    days = np.arange(last_day + 1)
    dates = np.datetime64(config.start_date) + days
    day_of_month = (dates - dates.astype("datetime64[M]")).astype(np.int64) + 1
    weekday = (config.start_date.weekday() + days) % 7
    first = NEWSLETTER_FIRST_DAY + (3 - (config.start_date.weekday() + NEWSLETTER_FIRST_DAY)) % 7
    rules = [
        (NEWSLETTER, (weekday == 3) & (days >= first) & ((days - first) % 14 == 0)),
        (PAYDAY, day_of_month == 25),
        (WINBACK, (day_of_month == 10) & (days >= WINBACK_FIRST_DAY)),
    ]
    kind = np.concatenate([np.full(int(on.sum()), k) for k, on in rules]).astype(np.int64)
    send_day = np.concatenate([days[on] for _, on in rules]).astype(np.int64)
    hours = np.array([KINDS[k].utc_hour for k in kind])
    send_us = day_start_us(config.start_date, send_day) + (hours * HOUR_US).astype(np.int64)
    order = np.argsort(send_us, kind="stable")
    kind, send_day, send_us = kind[order], send_day[order], send_us[order]
    names, subjects = [], []
    seen = [0] * len(KINDS)
    for k, d in zip(kind, send_day, strict=True):
        spec = KINDS[k]
        names.append(f"{spec.name} {config.start_date + timedelta(days=int(d))}")
        subjects.append(spec.subjects[seen[k] % len(spec.subjects)] if spec.subjects else None)
        seen[k] += 1
    return Campaigns(
        campaign_id=101 + np.arange(kind.size, dtype=np.int64),
        kind=kind,
        channel=np.array([KINDS[k].channel for k in kind], dtype=np.int64),
        send_day=send_day,
        send_us=send_us,
        name=np.array(names, dtype=object),
        subject=np.array(subjects, dtype=object),
    )


@dataclass(frozen=True)
class CampaignRun:
    """What every campaign up to the horizon did.

    Sends: one row per message the provider handled (holdout excluded), campaign by campaign.
    Event instants are NEVER when the event does not happen; some lie after the horizon (an open
    three days later), and the `messaging` stream only writes those that have arrived.
    """

    campaigns: Campaigns
    eligible: np.ndarray  # per campaign: audience before the holdout
    send_campaign: np.ndarray  # index into campaigns
    send_customer: np.ndarray  # customer_idx
    recipient: np.ndarray  # email address or phone number at send time
    sent_us: np.ndarray
    delivered_us: np.ndarray
    opened_us: np.ndarray
    clicked_us: np.ndarray
    bounced_us: np.ndarray
    dropped_us: np.ndarray
    unsubscribed_us: np.ndarray
    failed_us: np.ndarray
    failure: np.ndarray  # index into FAILURES, -1 for none
    link: np.ndarray  # clicked link (1-based link_id), 0 for none
    holdout_campaign: np.ndarray
    holdout_customer: np.ndarray
    # Orders the campaigns bring: guest, day, campaign (days settled, up to the horizon).
    extra_customer: np.ndarray
    extra_day: np.ndarray
    extra_campaign: np.ndarray


def _normal(u1: np.ndarray, u2: np.ndarray) -> np.ndarray:
    return np.sqrt(-2.0 * np.log(u1)) * np.cos(2.0 * np.pi * u2)


def between_us(u: np.ndarray, low_us: float, high_us: float) -> np.ndarray:
    return (low_us + u * (high_us - low_us)).astype(np.int64)


def _lognormal_us(u1: np.ndarray, u2: np.ndarray, median_us: float, sigma: float) -> np.ndarray:
    delay = median_us * np.exp(sigma * _normal(u1, u2))
    return np.minimum(delay, MAX_EVENT_DELAY_US).astype(np.int64)


def _consent_at(initial: np.ndarray, acc: AccountEvents, kind: int, n: int, at_us: int):
    """Consent of the first n guests at `at_us`: the initial choice, flipped by each edit."""
    done = int(np.searchsorted(acc.edit_us, at_us, side="right"))
    cust = acc.edit_customer_idx[:done][acc.edit_kind[:done] == kind]
    flips = np.bincount(cust[cust < n], minlength=n) % 2 == 1
    return initial[:n] ^ flips


def _phones_at(pop: Population, acc: AccountEvents, n: int, at_us: int) -> np.ndarray:
    """Phone numbers of the first n guests at `at_us` (the snapshot's rule for phone edits)."""
    done = int(np.searchsorted(acc.edit_us, at_us, side="right"))
    sel = acc.edit_kind[:done] == PHONE
    cust, value = acc.edit_customer_idx[:done][sel], acc.edit_value[:done][sel]
    keep = cust < n
    who, last = last_per_key(cust[keep])
    value = value[keep][last]
    phone = pop.phone[:n].copy()
    n_prefixes = len(MOBILE_PREFIXES)
    phone[who] = phone_numbers(value % n_prefixes, 10_000_000 + (value // n_prefixes) % 90_000_000)
    return phone


class _Draws:
    """Keyed uniforms for one campaign's recipients: the same whatever the horizon."""

    def __init__(self, seed: int, customer_id: np.ndarray, campaign_id: int):
        self.seed, self.key, self.index = seed, customer_id, campaign_id

    def __call__(self, stream: Stream, lane: int) -> np.ndarray:
        return counter_uniform(self.seed, stream, self.key, self.index, lane=lane)


def _last_order_day(
    base_keys: np.ndarray, base_days: np.ndarray, cust: np.ndarray, before_day: int
) -> np.ndarray:
    """Per guest, the last base purchase day strictly before `before_day` (-1 if none)."""
    if base_keys.size == 0:
        return np.full(cust.size, -1, dtype=np.int64)
    pos = np.searchsorted(base_keys, day_keys(cust, np.full(cust.size, before_day))) - 1
    found = (pos >= 0) & (base_keys[np.maximum(pos, 0)] // DAY_KEY == cust)
    return np.where(found, base_days[np.maximum(pos, 0)], -1)


class _Guests:
    """What every send needs to know about the guests, fixed for the whole run."""

    def __init__(
        self, config: WorldConfig, pop: Population, purchases: Purchases, accounts: AccountEvents
    ):
        self.seed, self.pop, self.accounts = config.seed, pop, accounts
        self.last_day = purchases.last_day
        cid = pop.customer_id
        order = np.argsort(day_keys(purchases.customer_idx, purchases.day), kind="stable")
        self.base_keys = day_keys(purchases.customer_idx, purchases.day)[order]
        self.base_days = purchases.day[order]
        first_day = int(day_start_us(config.start_date, 0))
        self.closed_day = np.where(
            accounts.closed_us == NEVER, NEVER, (accounts.closed_us - first_day) // DAY_US
        )
        guest_u = counter_uniform(self.seed, Stream.MESSAGE_OUTCOME, cid, 0, lane=0)
        self.bad_email = guest_u < BAD_EMAIL_SHARE
        self.bad_phone = (
            counter_uniform(self.seed, Stream.MESSAGE_OUTCOME, cid, 0, lane=1) < BAD_PHONE_SHARE
        )


class _History:
    """What carries from one send to the next: the provider's suppression list, and the orders
    the sends brought so far (a win-back judges lapse on them too)."""

    def __init__(self, n_guests: int):
        self.suppressed_from = np.full(n_guests, NEVER, dtype=np.int64)  # email, at the provider
        self.suppressed_why = np.full(n_guests, -1, dtype=np.int64)
        self.extras: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
        self.extra_keys = np.zeros(0, dtype=np.int64)


def _audience(
    g: _Guests, hist: _History, cal: Campaigns, c: int
) -> tuple[np.ndarray, np.ndarray | None]:
    """Who campaign c may reach (before the holdout), and for SMS the phone numbers then."""
    pop, accounts, send_us, send_day = g.pop, g.accounts, int(cal.send_us[c]), int(cal.send_day[c])
    n = int(np.searchsorted(pop.signup_us, send_us, side="left"))  # signed up before the send
    ok = accounts.closed_us[:n] > send_us
    phones = None
    if KINDS[cal.kind[c]].channel == EMAIL:
        ok &= _consent_at(pop.accepts_email, accounts, EMAIL_CONSENT, n, send_us)
    else:
        ok &= _consent_at(pop.accepts_sms, accounts, SMS_CONSENT, n, send_us)
        phones = _phones_at(pop, accounts, n, send_us)
        ok &= phones != None  # noqa: E711 (elementwise on an object array)
    cust = np.flatnonzero(ok)
    if cal.kind[c] == WINBACK:
        last = _last_order_day(g.base_keys, g.base_days, cust, send_day)
        if hist.extras:
            e_cust = np.concatenate([e[0] for e in hist.extras])
            e_day = np.concatenate([e[1] for e in hist.extras])
            before = e_day < send_day
            latest = np.full(len(pop), -1, dtype=np.int64)
            np.maximum.at(latest, e_cust[before], e_day[before])
            last = np.maximum(last, latest[cust])
        lapsed = (
            (last >= 0)
            & (last >= send_day - LAPSED_WITHIN_DAYS)
            & (last < send_day - LAPSED_AFTER_DAYS)
        )
        cust = cust[lapsed]
    return cust, phones


def _email_sends(
    g: _Guests, hist: _History, spec: CampaignKind, u: _Draws, cust: np.ndarray, send_us: int
) -> dict[str, np.ndarray]:
    """What the provider reports for each email of a send; it stops sending to hard-bounced
    and unsubscribed addresses, so each send updates the suppression list."""
    start = send_us + between_us(u(Stream.WEBHOOK, 0), 0, EMAIL_BLAST_US)
    failure = np.full(cust.size, -1, dtype=np.int64)
    dropped = hist.suppressed_from[cust] <= send_us
    failure[dropped] = np.where(
        hist.suppressed_why[cust[dropped]] == UNSUBSCRIBED, UNSUBSCRIBED, SUPPRESSED
    )
    hard = ~dropped & g.bad_email[cust]
    soft = ~dropped & ~hard & (u(Stream.MESSAGE_OUTCOME, 2) < SOFT_BOUNCE_SHARE)
    failure[hard], failure[soft] = HARD_BOUNCE, SOFT_BOUNCE
    delivered = ~dropped & ~hard & ~soft
    opened = delivered & (u(Stream.MESSAGE_OUTCOME, 3) < spec.open_share)
    clicked = opened & (u(Stream.MESSAGE_OUTCOME, 4) < spec.click_share)
    unsub = opened & (u(Stream.MESSAGE_OUTCOME, 5) < UNSUBSCRIBE_GIVEN_OPEN)
    delivered_us = np.where(delivered, start + between_us(u(Stream.WEBHOOK, 1), 1e6, 20e6), NEVER)
    bounce_delay = np.where(
        hard,
        between_us(u(Stream.WEBHOOK, 5), 1e6, 30e6),
        between_us(u(Stream.WEBHOOK, 5), 10 * MINUTE_US, 8 * HOUR_US),
    )
    bounced_us = np.where(hard | soft, start + bounce_delay, NEVER)
    opened_us = np.where(
        opened,
        delivered_us
        + _lognormal_us(u(Stream.WEBHOOK, 2), u(Stream.WEBHOOK, 3), 100 * MINUTE_US, 1.4),
        NEVER,
    )
    clicked_us = np.where(
        clicked,
        opened_us + 5_000_000 - (90e6 * np.log(u(Stream.WEBHOOK, 4))).astype(np.int64),
        NEVER,
    )
    unsub_us = np.where(unsub, opened_us + between_us(u(Stream.WEBHOOK, 6), 20e6, 180e6), NEVER)
    stop = np.minimum(np.where(hard, bounced_us, NEVER), unsub_us)
    newly = stop < hist.suppressed_from[cust]
    hist.suppressed_from[cust[newly]] = stop[newly]
    hist.suppressed_why[cust[newly]] = np.where(hard[newly], HARD_BOUNCE, UNSUBSCRIBED)
    return {
        "recipient": g.pop.email[cust],
        "sent_us": np.where(dropped, NEVER, start),
        "delivered_us": delivered_us,
        "opened_us": opened_us,
        "clicked_us": clicked_us,
        "bounced_us": bounced_us,
        "dropped_us": np.where(dropped, start, NEVER),
        "unsubscribed_us": unsub_us,
        "failed_us": np.full(cust.size, NEVER, dtype=np.int64),
        "failure": failure,
        "clicked": clicked,
        "delivered": delivered,
    }


def _sms_sends(
    g: _Guests, spec: CampaignKind, u: _Draws, cust: np.ndarray, phones: np.ndarray, send_us: int
) -> dict[str, np.ndarray]:
    """What the provider reports for each SMS of a send."""
    start = send_us + between_us(u(Stream.WEBHOOK, 0), 0, SMS_BLAST_US)
    never = np.full(cust.size, NEVER, dtype=np.int64)
    failure = np.full(cust.size, -1, dtype=np.int64)
    failed = g.bad_phone[cust] | (u(Stream.MESSAGE_OUTCOME, 2) < SMS_FAIL_SHARE)
    failure[failed] = np.where(g.bad_phone[cust[failed]], BAD_NUMBER, UNREACHABLE)
    delivered = ~failed
    clicked = delivered & (u(Stream.MESSAGE_OUTCOME, 4) < spec.click_share)
    delivered_us = np.where(delivered, start + between_us(u(Stream.WEBHOOK, 1), 3e6, 30e6), NEVER)
    clicked_us = np.where(
        clicked,
        delivered_us
        + _lognormal_us(u(Stream.WEBHOOK, 2), u(Stream.WEBHOOK, 3), 12 * MINUTE_US, 1.2),
        NEVER,
    )
    return {
        "recipient": phones[cust],
        "sent_us": start,
        "delivered_us": delivered_us,
        "opened_us": never,
        "clicked_us": clicked_us,
        "bounced_us": never,
        "dropped_us": never,
        "unsubscribed_us": never,
        "failed_us": np.where(failed, start + between_us(u(Stream.WEBHOOK, 5), 5e6, 90e6), NEVER),
        "failure": failure,
        "clicked": clicked,
        "delivered": delivered,
    }


def _uplift(
    g: _Guests, hist: _History, spec: CampaignKind, u: _Draws, cust, delivered, c: int, send_day
) -> None:
    """Planted: a delivered send brings an extra order with probability `uplift`, on a day the
    guest has no other order and the account is still open."""
    brings = delivered & (u(Stream.CAMPAIGN_UPLIFT, 0) < spec.uplift)
    who = cust[brings]
    offset = 1 + (u(Stream.CAMPAIGN_UPLIFT, 1)[brings] * UPLIFT_DAYS).astype(np.int64)
    last_allowed = np.minimum(send_day + UPLIFT_DAYS, g.closed_day[who] - 1)
    day = settle_extra_purchases(
        [g.base_keys, hist.extra_keys], who, send_day + offset, last_allowed
    )
    placed = (day >= 0) & (day <= g.last_day)
    hist.extras.append((who[placed], day[placed], np.full(int(placed.sum()), c, dtype=np.int64)))
    hist.extra_keys = np.sort(np.concatenate([hist.extra_keys, day_keys(who[placed], day[placed])]))


def simulate_campaigns(
    config: WorldConfig,
    pop: Population,
    purchases: Purchases,
    accounts: AccountEvents | None = None,
) -> CampaignRun:
    """Run the calendar up to the purchases' horizon, send by send in time order."""
    if accounts is None:
        horizon = config.start_date + timedelta(days=purchases.last_day)
        accounts = simulate_accounts(config, pop, purchases, end_of_day_us(horizon))
    cal = campaign_calendar(config, purchases.last_day)
    g, hist = _Guests(config, pop, purchases, accounts), _History(len(pop))
    cid = pop.customer_id
    sends: list[dict[str, np.ndarray]] = []
    holdouts: list[tuple[np.ndarray, np.ndarray]] = []
    eligible_counts = np.zeros(len(cal), dtype=np.int64)
    for c in range(len(cal)):
        spec, campaign_id = KINDS[cal.kind[c]], cal.campaign_id[c]
        cust, phones = _audience(g, hist, cal, c)
        eligible_counts[c] = cust.size
        held = (
            counter_uniform(config.seed, Stream.CAMPAIGN_HOLDOUT, cid[cust], campaign_id)
            < HOLDOUT_SHARE
        )
        holdouts.append((np.full(int(held.sum()), c, dtype=np.int64), cust[held]))
        cust = cust[~held]
        u = _Draws(config.seed, cid[cust], int(campaign_id))
        send_us = int(cal.send_us[c])
        if spec.channel == EMAIL:
            out = _email_sends(g, hist, spec, u, cust, send_us)
        else:
            out = _sms_sends(g, spec, u, cust, phones, send_us)
        clicked, delivered = out.pop("clicked"), out.pop("delivered")
        link = 1 + (u(Stream.WEBHOOK, 9) * len(spec.links)).astype(np.int64)
        sends.append(
            {"send_campaign": np.full(cust.size, c, dtype=np.int64), "send_customer": cust}
            | out
            | {"link": np.where(clicked, link, 0)}
        )
        _uplift(g, hist, spec, u, cust, delivered, c, int(cal.send_day[c]))
    return _run(cal, eligible_counts, sends, holdouts, hist.extras)


def _run(
    cal: Campaigns,
    eligible: np.ndarray,
    sends: list[dict[str, np.ndarray]],
    holdouts: list[tuple[np.ndarray, np.ndarray]],
    extras: list[tuple[np.ndarray, np.ndarray, np.ndarray]],
) -> CampaignRun:
    cols = {
        name: np.concatenate([s[name] for s in sends]) if sends else np.zeros(0, np.int64)
        for name in (sends[0] if sends else _SEND_COLUMNS)
    }
    if not sends:
        cols["recipient"] = np.zeros(0, dtype=object)
    empty = np.zeros(0, dtype=np.int64)
    return CampaignRun(
        campaigns=cal,
        eligible=eligible,
        holdout_campaign=np.concatenate([h[0] for h in holdouts]) if holdouts else empty,
        holdout_customer=np.concatenate([h[1] for h in holdouts]) if holdouts else empty,
        extra_customer=np.concatenate([e[0] for e in extras]) if extras else empty,
        extra_day=np.concatenate([e[1] for e in extras]) if extras else empty,
        extra_campaign=np.concatenate([e[2] for e in extras]) if extras else empty,
        **cols,
    )


# What can happen to a send, each a column of send times (NEVER when it did not happen), in the
# order the webhook writer numbers them.
SEND_EVENTS = (
    "sent_us",
    "delivered_us",
    "opened_us",
    "clicked_us",
    "bounced_us",
    "dropped_us",
    "unsubscribed_us",
    "failed_us",
)
_SEND_COLUMNS = ("send_campaign", "send_customer", "recipient", *SEND_EVENTS, "failure", "link")
