"""The latent guest population: who signs up when, through which channel, and how they behave.

One array per attribute, one row per guest in sign-up order (customer_id = row + 1). Every
channel of the simulated chain (ordering today; app events, email, ads later) reads this one
population, so a guest is the same person everywhere.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np

from simulator.config import WorldConfig
from simulator.model.catalog import (
    EMAIL_DOMAIN_SHARE,
    EMAIL_DOMAINS,
    FIRST_NAMES,
    LAST_NAMES,
    MOBILE_PREFIXES,
)
from simulator.model.chain import Stores
from simulator.model.clock import DAY_US, MINUTE_US, day_part_hours, day_start_us, local_hours_to_us
from simulator.model.rand import Stream, keyed_rng

CHANNELS = ("organic", "instagram_ads", "google_search", "referral", "email_sms")
CHANNEL_SHARE = (0.35, 0.25, 0.15, 0.15, 0.10)
# Planted: guests from referrals buy more often and stay longer; paid-social guests the opposite.
CHANNEL_RATE_MULTIPLIER = (1.0, 0.8, 1.0, 1.3, 1.1)
CHANNEL_DROPOUT_MULTIPLIER = (1.0, 1.3, 1.0, 0.75, 0.9)
WEEKEND_SIGNUP_LIFT = 1.25
FIRST_ORDER_SAME_DAY_SHARE = 0.6  # the rest order 1, 2, ... days later (geometric, mean 5)
PHONE_SHARE = 0.92
MONONYM_SHARE = 0.1  # many Indonesians go by one name


@dataclass(frozen=True)
class Population:
    customer_id: np.ndarray
    signup_day: np.ndarray
    signup_us: np.ndarray
    home_store: np.ndarray  # index into Stores
    channel: np.ndarray  # index into CHANNELS
    prefers_app: np.ndarray
    lam: np.ndarray  # purchases per day while alive
    p_drop: np.ndarray  # chance of dropping out after each repeat purchase
    repeats: np.ndarray  # repeat purchases until dropout (latent; geometric in p_drop)
    nu: np.ndarray  # Gamma-Gamma rate: the guest's mean order value is spend_p / nu
    never_orders: np.ndarray
    first_lag_days: np.ndarray
    first_delay_us: np.ndarray  # sign-up to first order when it is the same day
    accepts_email: np.ndarray
    accepts_sms: np.ndarray
    closes: np.ndarray  # closes the account some weeks after dropping out
    closure_delay_us: np.ndarray
    given_name: np.ndarray
    full_name: np.ndarray
    email: np.ndarray
    phone: np.ndarray  # None if not given

    def __len__(self) -> int:
        return self.customer_id.size


def signup_rate(config: WorldConfig, stores: Stores, last_day: int) -> np.ndarray:
    """Expected sign-ups per day for days 0..last_day: growth x weekday x open store capacity.

    Normalised on the first `acquisition_days` days, so the rate never depends on the horizon.
    """
    span = max(last_day + 1, config.acquisition_days)
    days = np.arange(span)
    growth = np.exp(np.log1p(config.monthly_growth) / 30.4375 * days)
    weekday = (config.start_date.weekday() + days) % 7
    lift = np.where(weekday >= 5, WEEKEND_SIGNUP_LIFT, 1.0)
    open_weight = (stores.weight[:, None] * (stores.opened_day[:, None] <= days)).sum(axis=0)
    shape = growth * lift * open_weight / open_weight[0]
    return (config.customers / shape[: config.acquisition_days].sum() * shape)[: last_day + 1]


def _cohort(config: WorldConfig, stores: Stores, day: int, expected: float) -> dict:
    """The guests who sign up on `day`, in sign-up order."""
    rng = keyed_rng(config.seed, Stream.COHORT, day)
    n = int(rng.poisson(expected))
    open_idx = stores.open_on(day)
    weight = stores.weight[open_idx]
    home = rng.choice(open_idx, size=n, p=weight / weight.sum())
    hours = day_part_hours(rng, n)  # guests sign up at checkout, so when they order
    signup_us = local_hours_to_us(
        day_start_us(config.start_date, day), hours, stores.utc_offset[home]
    ) + rng.integers(0, 1_000_000, size=n)
    channel = rng.choice(len(CHANNELS), size=n, p=CHANNEL_SHARE)
    lam = rng.gamma(config.r, 1 / config.alpha, size=n) * np.take(CHANNEL_RATE_MULTIPLIER, channel)
    p_drop = rng.beta(config.a, config.b, size=n) * np.take(CHANNEL_DROPOUT_MULTIPLIER, channel)
    p_drop = np.clip(p_drop, 1e-9, 1.0)
    cols = {
        "signup_day": np.full(n, day, dtype=np.int64),
        "signup_us": signup_us,
        "home_store": home,
        "channel": channel,
        "prefers_app": rng.random(n) < config.app_share,
        "lam": lam,
        "p_drop": p_drop,
        "repeats": rng.geometric(p_drop),
        "nu": rng.gamma(config.spend_q, 1 / config.spend_gamma, size=n),
        "never_orders": rng.random(n) < config.never_order_share,
        "first_lag_days": np.where(
            rng.random(n) < FIRST_ORDER_SAME_DAY_SHARE, 0, rng.geometric(0.2, size=n)
        ),
        "first_delay_us": rng.integers(3 * MINUTE_US, 25 * MINUTE_US, size=n),
        # Guests who came through an email/SMS partner opted in to email on the way.
        "accepts_email": (rng.random(n) < config.email_consent_share)
        | (channel == CHANNELS.index("email_sms")),
        "accepts_sms": rng.random(n) < config.sms_consent_share,
        "closes": rng.random(n) < config.closure_share,
        "closure_delay_us": ((14 + rng.exponential(45, size=n)) * DAY_US).astype(np.int64),
        "first_name": rng.integers(len(FIRST_NAMES), size=n),
        "last_name": rng.integers(len(LAST_NAMES), size=n),
        "mononym": rng.random(n) < MONONYM_SHARE,
        "email_domain": rng.choice(len(EMAIL_DOMAINS), size=n, p=EMAIL_DOMAIN_SHARE),
        "has_phone": rng.random(n) < PHONE_SHARE,
        "phone_prefix": rng.integers(len(MOBILE_PREFIXES), size=n),
        "phone_number": rng.integers(10_000_000, 100_000_000, size=n),
    }
    order = np.argsort(signup_us, kind="stable")
    return {name: values[order] for name, values in cols.items()}


def full_names(first: np.ndarray, last: np.ndarray, mononym: np.ndarray) -> np.ndarray:
    given = np.take(np.array(FIRST_NAMES, dtype=object), first)
    family = np.take(np.array(LAST_NAMES, dtype=object), last)
    return np.where(mononym, given, given + " " + family)


def phone_numbers(prefix: np.ndarray, number: np.ndarray) -> np.ndarray:
    return (
        "+62"
        + np.take(np.array(MOBILE_PREFIXES, dtype=object), prefix)
        + number.astype(str).astype(object)
    )


def make_population(config: WorldConfig, stores: Stores, last_day: int) -> Population:
    """Every guest who signs up on days 0..last_day, one cohort (and one generator) per day."""
    rate = signup_rate(config, stores, last_day)
    cohorts = [_cohort(config, stores, day, rate[day]) for day in range(last_day + 1)]
    cols = {name: np.concatenate([c[name] for c in cohorts]) for name in cohorts[0]}
    n = cols["signup_us"].size
    customer_id = np.arange(1, n + 1, dtype=np.int64)
    first = np.take(np.array(FIRST_NAMES, dtype=object), cols["first_name"])
    family = np.take(np.array(LAST_NAMES, dtype=object), cols["last_name"])
    local_part = np.where(cols["mononym"], first, first + "." + family)
    email = (
        np.char.lower(local_part.astype(str)).astype(object)
        + customer_id.astype(str).astype(object)
        + "@"
        + np.take(np.array(EMAIL_DOMAINS, dtype=object), cols["email_domain"])
    )
    phone = phone_numbers(cols["phone_prefix"], cols["phone_number"])
    phone[~cols["has_phone"]] = None
    fields = {f.name for f in dataclasses.fields(Population)}
    return Population(
        customer_id=customer_id,
        given_name=first,
        full_name=full_names(cols["first_name"], cols["last_name"], cols["mononym"]),
        email=email,
        phone=phone,
        **{name: values for name, values in cols.items() if name in fields},
    )
