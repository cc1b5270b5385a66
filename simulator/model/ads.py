"""The chain's Meta ads (on Instagram mostly): one ad account, its campaigns, ad sets and ads, and
what they delivered each day on each publisher platform.

The plan is a fixed calendar (always-on acquisition by half-year, Ramadan, Independence Day, a
traffic push for every seasonal dish, always-on retargeting), so a campaign running on a day is
the same whatever the horizon. Delivery is derived from the sessions that ad clicks opened: link
clicks are those sessions plus the clicks that bounced before the page loaded; impressions,
reach and spend follow from per-ad click-through rates and costs per click; pixel purchases are
the orders placed within 7 days of a guest's last ad click.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import date, timedelta

import numpy as np

from simulator.config import WorldConfig
from simulator.model.catalog import SEASONAL
from simulator.model.chain import SEASONAL_EVERY, SEASONAL_FIRST_DAY, Stores
from simulator.model.clock import DAY_US, HOUR_US, MINUTE_US, day_start_us
from simulator.model.population import CHANNEL_SHARE, CHANNELS, signup_rate
from simulator.model.rand import Stream, counter_uniform, keyed_rng

ACCOUNT_ID = "1234567890"  # the ad account node is act_1234567890
ACCOUNT_UTC_OFFSET_HOURS = 7  # the account reports in Asia/Jakarta
PUBLISHER_PLATFORMS = ("instagram", "facebook", "audience_network")
PUBLISHER_SHARE = (0.86, 0.11, 0.03)
CTR = (0.011, 0.008, 0.004)  # link clicks per impression, by publisher platform
FREQUENCY = (1.6, 1.3, 1.1)  # impressions per person reached in a day
LANDING_RATE = (0.70, 0.85)  # share of link clicks that open a session, per ad
CPC_IDR = (1_800, 3_400)  # cost per link click, per ad
ATTRIBUTION_DAYS = 7  # pixel purchases: 7-day click window
PLAN_YEARS = 6  # the calendar is laid out for this many years from the start date
VISITOR_RATIO_FOR_BUDGET = 1.0  # anonymous visitors per sign-up (sessions.VISITOR_RATIO)

ACQUISITION, TRAFFIC, RETARGETING = range(3)
OBJECTIVES = ("OUTCOME_SALES", "OUTCOME_TRAFFIC", "OUTCOME_SALES")
BUDGET_HEADROOM = (2.5, 2.5, 5.0)  # by audience
OPTIMIZATION_GOAL = ("OFFSITE_CONVERSIONS", "LINK_CLICKS", "OFFSITE_CONVERSIONS")

# Start and end (inclusive) of Ramadan, by year.
RAMADAN = {
    2023: ((3, 23), (4, 21)),
    2024: ((3, 11), (4, 9)),
    2025: ((3, 1), (3, 30)),
    2026: ((2, 18), (3, 19)),
    2027: ((2, 8), (3, 9)),
    2028: ((1, 28), (2, 26)),
    2029: ((1, 16), (2, 14)),
    2030: ((1, 6), (2, 4)),
    2031: ((12, 26), (12, 31)),
}

CREATIVES = {
    "AlwaysOn": ("Reel_NasiGoreng_15s", "Carousel_MenuFavorit", "Static_WELCOME20"),
    "Ramadan": ("Reel_Bukber_15s", "Carousel_Takjil", "Static_PaketBukber"),
    "HUTRI": ("Reel_17an_15s", "Static_Merdeka"),
    "MenuBaru": ("Reel_MenuBaru_10s", "Static_MenuBaru"),
    "Retarget": ("Carousel_PesanLagi", "Static_GRATISONGKIR"),
}


@dataclass(frozen=True)
class AdPlan:
    """Campaigns, ad sets and ads, each in a fixed order (by start date, then name)."""

    campaign_id: np.ndarray
    campaign_name: np.ndarray
    audience: np.ndarray  # ACQUISITION | TRAFFIC | RETARGETING
    start_day: np.ndarray  # days since start_date (may be negative)
    stop_day: np.ndarray  # exclusive
    weight: np.ndarray  # share of clicks among the campaigns running on a day
    daily_budget: np.ndarray  # whole rupiah
    created_us: np.ndarray
    adset_id: np.ndarray
    adset_name: np.ndarray
    adset_campaign: np.ndarray
    adset_province: np.ndarray  # index into config.chosen_provinces
    adset_created_us: np.ndarray
    ad_id: np.ndarray
    ad_name: np.ndarray
    ad_adset: np.ndarray
    ad_weight: np.ndarray
    ad_landing_rate: np.ndarray
    ad_cpc: np.ndarray
    ad_created_us: np.ndarray
    # adset_of[campaign, province] and the ads of each ad set (padded with -1).
    adset_of: np.ndarray
    ads_of: np.ndarray


def _meta_id(seed: int, *parts: object) -> str:
    """An 18-digit Graph API id, stable for the object's name."""
    digest = hashlib.blake2b(repr((seed, *parts)).encode(), digest_size=8).digest()
    return str(120_200_000_000_000_000 + int.from_bytes(digest, "big") % 10**14)


def _slug(text: str) -> str:
    return "".join(ch for ch in text.title() if ch.isalnum())


def _calendar(config: WorldConfig) -> list[tuple[str, int, date, date, float, str]]:
    """(name, audience, first day, day after the last, weight, creative set) for every campaign."""
    start = config.start_date
    out = []
    for year in range(start.year, start.year + PLAN_YEARS):
        out.append((f"ID_Acq_AlwaysOn_{year}H1", ACQUISITION, date(year, 1, 1),
                    date(year, 7, 1), 1.0, "AlwaysOn"))  # fmt: skip
        out.append((f"ID_Acq_AlwaysOn_{year}H2", ACQUISITION, date(year, 7, 1),
                    date(year + 1, 1, 1), 1.0, "AlwaysOn"))  # fmt: skip
        if year in RAMADAN:
            (m0, d0), (m1, d1) = RAMADAN[year]
            out.append((f"ID_Acq_Ramadan_{year}", ACQUISITION, date(year, m0, d0),
                        date(year, m1, d1) + timedelta(days=1), 1.6, "Ramadan"))  # fmt: skip
        out.append((f"ID_Acq_HUTRI_{year}", ACQUISITION, date(year, 8, 10), date(year, 8, 21),
                    1.3, "HUTRI"))  # fmt: skip
        # Retargeting needs an audience: it starts two weeks into the platform's life.
        first = max(date(year, 1, 1), start + timedelta(days=14))
        out.append((f"ID_Retarget_Regulars_{year}", RETARGETING, first, date(year + 1, 1, 1),
                    1.0, "Retarget"))  # fmt: skip
    n_launches = PLAN_YEARS * 365 // SEASONAL_EVERY + 1
    for k in range(n_launches):
        launch = start + timedelta(days=SEASONAL_FIRST_DAY + SEASONAL_EVERY * k)
        dish = SEASONAL[k % len(SEASONAL)].name
        name = f"ID_Traffic_MenuBaru_{_slug(dish)}_{launch:%b%Y}"
        out.append((name, TRAFFIC, launch, launch + timedelta(days=21), 0.7, "MenuBaru"))
    out = [c for c in out if c[3] > start]
    return sorted(out, key=lambda c: (c[2], c[0]))


def _budgets(
    config: WorldConfig,
    stores: Stores,
    c_start: np.ndarray,
    c_stop: np.ndarray,
    weight: np.ndarray,
    audience: np.ndarray,
) -> list[int]:
    """Each campaign's daily budget: the plan's expected daily clicks at the typical cost per
    click, with headroom."""
    span = int(c_stop.max()) + 1
    rate = signup_rate(config, stores, span)
    insta = CHANNEL_SHARE[CHANNELS.index("instagram_ads")]
    daily_clicks = rate * (insta + 0.3 * VISITOR_RATIO_FOR_BUDGET) / np.mean(LANDING_RATE)
    budgets = []
    for i in range(c_start.size):
        lo, hi = max(c_start[i], 0), max(c_stop[i], 1)
        expected = daily_clicks[lo:hi].mean() * weight[i] / 2.0
        # Headroom so the mean day spends under budget (retargeting reaches past guests too).
        headroom = BUDGET_HEADROOM[audience[i]]
        budgets.append(
            max(50_000, int(np.ceil(expected * np.mean(CPC_IDR) * headroom / 10_000)) * 10_000)
        )
    return budgets


def _structure(config: WorldConfig, cal: list) -> tuple[list, list]:
    """One ad set per (campaign, province), named for the province; its ads, one per creative."""
    adset_rows, ad_rows = [], []
    for c in range(len(cal)):
        creatives = CREATIVES[cal[c][5]]
        for p, province in enumerate(config.chosen_provinces):
            a = len(adset_rows)
            adset_rows.append((c, p, f"{province.code}_18-44_{cal[c][5]}"))
            for creative in creatives:
                ad_rows.append((a, f"{creative}_{province.code}"))
    return adset_rows, ad_rows


def make_plan(config: WorldConfig, stores: Stores) -> AdPlan:
    """The account's whole calendar of campaigns, ad sets and ads (horizon-independent)."""
    seed = config.seed
    cal = _calendar(config)
    n_c = len(cal)
    start = config.start_date
    c_start = np.array([(c[2] - start).days for c in cal], dtype=np.int64)
    c_stop = np.array([(c[3] - start).days for c in cal], dtype=np.int64)
    weight = np.array([c[4] for c in cal])
    audience = np.array([c[1] for c in cal], dtype=np.int64)
    names = [c[0] for c in cal]
    keys = np.arange(n_c, dtype=np.int64)
    lead_days = 3 + np.floor(counter_uniform(seed, Stream.WEB_ADS, keys, 0, lane=1) * 8)
    office = (2 + 7 * counter_uniform(seed, Stream.WEB_ADS, keys, 0, lane=2)) * HOUR_US
    created_us = day_start_us(start, c_start - lead_days.astype(np.int64)) + office.astype(np.int64)

    budgets = _budgets(config, stores, c_start, c_stop, weight, audience)
    provinces = config.chosen_provinces
    adset_rows, ad_rows = _structure(config, cal)
    adset_campaign = np.array([r[0] for r in adset_rows], dtype=np.int64)
    adset_province = np.array([r[1] for r in adset_rows], dtype=np.int64)
    ad_adset = np.array([r[0] for r in ad_rows], dtype=np.int64)
    ad_keys = np.arange(len(ad_rows), dtype=np.int64)
    ad_weight = np.exp(0.5 * np.log(counter_uniform(seed, Stream.WEB_ADS, ad_keys, 1, lane=3)))
    landing = LANDING_RATE[0] + (LANDING_RATE[1] - LANDING_RATE[0]) * counter_uniform(
        seed, Stream.WEB_ADS, ad_keys, 1, lane=4
    )
    cpc = CPC_IDR[0] + (CPC_IDR[1] - CPC_IDR[0]) * counter_uniform(
        seed, Stream.WEB_ADS, ad_keys, 1, lane=5
    )
    adset_created = created_us[adset_campaign] + 10 * MINUTE_US
    adset_of = np.full((n_c, len(provinces)), -1, dtype=np.int64)
    adset_of[adset_campaign, adset_province] = np.arange(adset_campaign.size)
    width = max(len(v) for v in CREATIVES.values())
    ads_of = np.full((adset_campaign.size, width), -1, dtype=np.int64)
    slot = np.arange(ad_adset.size) - np.searchsorted(ad_adset, ad_adset)
    ads_of[ad_adset, slot] = np.arange(ad_adset.size)
    campaign_ids = [_meta_id(seed, "campaign", n) for n in names]
    return AdPlan(
        campaign_id=np.array(campaign_ids, dtype=object),
        campaign_name=np.array(names, dtype=object),
        audience=audience,
        start_day=c_start,
        stop_day=c_stop,
        weight=weight,
        daily_budget=np.array(budgets, dtype=np.int64),
        created_us=created_us.astype(np.int64),
        adset_id=np.array(
            [_meta_id(seed, "adset", names[c], n) for c, _, n in adset_rows], dtype=object
        ),
        adset_name=np.array([n for *_, n in adset_rows], dtype=object),
        adset_campaign=adset_campaign,
        adset_province=adset_province,
        adset_created_us=adset_created.astype(np.int64),
        ad_id=np.array(
            [
                _meta_id(seed, "ad", names[adset_campaign[a]], adset_rows[a][2], n)
                for a, n in ad_rows
            ],
            dtype=object,
        ),
        ad_name=np.array([n for _, n in ad_rows], dtype=object),
        ad_adset=ad_adset,
        ad_weight=ad_weight,
        ad_landing_rate=landing,
        ad_cpc=cpc,
        ad_created_us=adset_created[ad_adset] + 5 * MINUTE_US,
        adset_of=adset_of,
        ads_of=ads_of,
    )


def pick_ads(
    plan: AdPlan,
    day: np.ndarray,
    province: np.ndarray,
    retargeting: np.ndarray,
    u_campaign: np.ndarray,
    u_ad: np.ndarray,
) -> np.ndarray:
    """The ad each ad-click session came from: a campaign running that day (retargeting clicks
    prefer retargeting campaigns, the others prospecting ones), its ad set for the guest's
    province, and one of its ads by weight."""
    running = (plan.start_day[None, :] <= day[:, None]) & (day[:, None] < plan.stop_day[None, :])
    is_retarget = plan.audience[None, :] == RETARGETING
    wanted = running & (is_retarget == retargeting[:, None])
    eligible = np.where(wanted.any(axis=1)[:, None], wanted, running)
    w = np.where(eligible, plan.weight[None, :], 0.0)
    cum = np.cumsum(w, axis=1)
    campaign = (cum < (u_campaign * cum[:, -1])[:, None]).sum(axis=1)
    campaign = np.minimum(campaign, plan.campaign_id.size - 1)
    adset = plan.adset_of[campaign, province]
    ads = plan.ads_of[adset]
    aw = np.where(ads >= 0, plan.ad_weight[np.maximum(ads, 0)], 0.0)
    acum = np.cumsum(aw, axis=1)
    slot = np.minimum((acum < (u_ad * acum[:, -1])[:, None]).sum(axis=1), ads.shape[1] - 1)
    return ads[np.arange(ads.shape[0]), slot]


@dataclass(frozen=True)
class Delivery:
    """Daily delivery per (ad, day, publisher platform), in that order; days since start_date."""

    ad: np.ndarray
    day: np.ndarray
    platform: np.ndarray
    impressions: np.ndarray
    reach: np.ndarray
    clicks: np.ndarray
    landed: np.ndarray  # link clicks that opened a session
    spend: np.ndarray  # whole rupiah
    purchases: np.ndarray
    purchase_value: np.ndarray


def attribute_orders(
    click_cust: np.ndarray,
    click_us: np.ndarray,
    click_ad: np.ndarray,
    click_platform: np.ndarray,
    order_cust: np.ndarray,
    order_us: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Each order's last ad click by the same guest in the 7 days before it (pixel purchases,
    last click): (click row or -1) per order, as (row, ad, publisher platform)."""
    if click_us.size == 0:  # no click yet (a world of a day or two)
        unattributed = np.full(order_us.size, -1)
        return unattributed, unattributed, unattributed
    t0 = min(int(click_us.min(initial=0)), int(order_us.min(initial=0)))
    scale = 10**10  # seconds since t0 stay below this for centuries
    ck = click_cust * scale + (click_us - t0) // 1_000_000
    order = np.argsort(ck, kind="stable")
    ck_sorted = ck[order]
    ok = order_cust * scale + (order_us - t0) // 1_000_000
    pos = np.searchsorted(ck_sorted, ok, side="right") - 1
    valid = pos >= 0
    row = np.where(valid, order[np.maximum(pos, 0)], -1)
    valid &= click_cust[np.maximum(row, 0)] == order_cust
    valid &= order_us - click_us[np.maximum(row, 0)] <= ATTRIBUTION_DAYS * DAY_US
    valid &= click_us[np.maximum(row, 0)] <= order_us
    row = np.where(valid, row, -1)
    return (
        row,
        np.where(valid, click_ad[np.maximum(row, 0)], -1),
        np.where(valid, click_platform[np.maximum(row, 0)], -1),
    )


def _day_delivery(
    rng: np.random.Generator,
    plan: AdPlan,
    day: int,
    ads: np.ndarray,
    cell,
    landed: np.ndarray,
    purchases: np.ndarray,
    value: np.ndarray,
) -> tuple[np.ndarray, ...]:
    """One day's delivery of the running ads, per publisher platform, in Delivery's columns."""
    n_pf = len(PUBLISHER_PLATFORMS)
    ad = np.repeat(ads, n_pf)
    pf = np.tile(np.arange(n_pf), ads.size)
    cells = cell(ad, day, pf)
    got = landed[cells]
    rate = plan.ad_landing_rate[ad]
    # Clicks that bounced: failures before `got` landings, plus a trickle on quiet days.
    share = np.take(PUBLISHER_SHARE, pf)
    bounced = rng.negative_binomial(got + 0.2 * share, rate)
    clicks = got + bounced
    ctr = np.take(CTR, pf) * np.exp(rng.normal(0, 0.15, size=ad.size))
    # Impressions that drew no click yet follow the platform's share too: Meta spreads an
    # ad's budget over its placements, so a quiet day shows it mostly on Instagram.
    impressions = np.rint((clicks + share * rng.random(ad.size)) / ctr).astype(np.int64)
    freq = np.take(FREQUENCY, pf) * np.exp(rng.normal(0, 0.1, size=ad.size))
    reach = np.maximum(np.minimum(impressions, np.rint(impressions / freq)), 0)
    cpm_part = impressions * 2.5  # a little spend for impressions without clicks
    spend = np.rint(clicks * plan.ad_cpc[ad] * np.exp(rng.normal(0, 0.1, size=ad.size)))
    spend = spend + np.rint(cpm_part)
    return (
        ad,
        np.full(ad.size, day),
        pf,
        impressions,
        reach.astype(np.int64),
        clicks,
        got,
        spend,
        purchases[cells],
        value[cells],
    )


def deliver(
    config: WorldConfig,
    plan: AdPlan,
    last_day: int,
    landed_ad: np.ndarray,
    landed_day: np.ndarray,
    landed_platform: np.ndarray,
    purchase_ad: np.ndarray,
    purchase_day: np.ndarray,
    purchase_platform: np.ndarray,
    purchase_value: np.ndarray,
) -> Delivery:
    """Delivery of every ad on each day it ran up to last_day, per publisher platform.

    One generator per day draws that day's bounced clicks, rates and reach for the ads running
    then, so a day's delivery never depends on the horizon (its purchases do: they are reported
    on the click's day and keep arriving for 7 days).
    """
    n_ads = plan.ad_id.size
    n_pf = len(PUBLISHER_PLATFORMS)
    cell = lambda ad, day, pf: (day * n_ads + ad) * n_pf + pf  # noqa: E731
    n_days = last_day + 1
    landed = np.bincount(
        cell(landed_ad, landed_day, landed_platform), minlength=n_days * n_ads * n_pf
    )
    purchases = np.bincount(
        cell(purchase_ad, purchase_day, purchase_platform), minlength=n_days * n_ads * n_pf
    )
    value = np.bincount(
        cell(purchase_ad, purchase_day, purchase_platform),
        weights=purchase_value,
        minlength=n_days * n_ads * n_pf,
    )
    ad_campaign = plan.adset_campaign[plan.ad_adset]
    parts = []
    for day in range(max(0, int(plan.start_day.min())), n_days):
        ads = np.flatnonzero(
            (plan.start_day[ad_campaign] <= day) & (day < plan.stop_day[ad_campaign])
        )
        if ads.size == 0:
            continue
        rng = keyed_rng(config.seed, Stream.WEB_ADS, day)
        parts.append(_day_delivery(rng, plan, day, ads, cell, landed, purchases, value))
    if not parts:
        z = np.zeros(0, dtype=np.int64)
        return Delivery(z, z, z, z, z, z, z, z.astype(float), z, z.astype(float))
    cols = [np.concatenate(c) for c in zip(*parts, strict=True)]
    return Delivery(
        ad=cols[0],
        day=cols[1],
        platform=cols[2],
        impressions=cols[3],
        reach=cols[4],
        clicks=cols[5],
        landed=cols[6],
        spend=cols[7].astype(np.float64),
        purchases=cols[8],
        purchase_value=cols[9].astype(np.float64),
    )


def account_day_us(start_date: date, day: int | np.ndarray):
    """Midnight opening `day` in the account's time zone, as UTC microseconds."""
    return day_start_us(start_date, day) - ACCOUNT_UTC_OFFSET_HOURS * HOUR_US
