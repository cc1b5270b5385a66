"""Marketing marts against the simulator's planted truths: ad spend, GA4, email and SMS sends, and
the uplift a campaign's delivered guests show over its holdout."""

from __future__ import annotations

from decimal import Decimal

import duckdb
import pytest

# fct_messages flag -> the webhook metric the simulator counts per campaign.
FLAGS = {
    "is_sent": "sent",
    "is_delivered": "delivered",
    "is_opened": "opened",
    "is_clicked": "clicked",
    "is_bounced": "bounced",
    "is_dropped": "dropped",
    "is_unsubscribed": "unsubscribed",
    "is_failed": "failed",
}


def _rows(con: duckdb.DuckDBPyConnection, sql: str) -> dict:
    return {row[0]: row[1:] for row in con.sql(sql).fetchall()}


# Meta's publisher platforms and the channel the mart counts each on.
PLATFORM_CHANNELS = {
    "instagram": "instagram_ads",
    "facebook": "facebook_ads",
    "audience_network": "meta_audience_network",
}
META_CHANNELS = "('instagram_ads', 'facebook_ads', 'meta_audience_network', 'meta_other_ads')"
CHANNEL_OF_PLATFORM = (
    "case publisher_platform "
    + " ".join(f"when '{p}' then '{c}'" for p, c in PLATFORM_CHANNELS.items())
    + " end"
)


def _pairs(con: duckdb.DuckDBPyConnection, sql: str) -> dict:
    """{(first, second column): the other columns} of a query's rows."""
    return {tuple(row[:2]): row[2:] for row in con.sql(sql).fetchall()}


def test_spend_per_campaign_and_platform_equals_the_meta_insights(warehouse):
    mart = _pairs(
        warehouse,
        f"""
        select channel, campaign_key, sum(spend), sum(clicks), sum(impressions)
        from marts.fct_campaign_performance
        where channel in {META_CHANNELS}
        group by channel, campaign_key
        """,
    )
    source = _pairs(
        warehouse,
        f"""
        select {CHANNEL_OF_PLATFORM}, campaign_id, sum(spend), sum(clicks), sum(impressions)
        from raw_meta_ads.insights
        group by all
        """,
    )
    assert mart == source
    # Every platform is there, each with its own spend: Facebook's is not Instagram's.
    spend = dict(
        warehouse.sql(
            f"select channel, sum(spend) from marts.fct_campaign_performance "
            f"where channel in {META_CHANNELS} group by channel"
        ).fetchall()
    )
    assert set(spend) == set(PLATFORM_CHANNELS.values())
    assert spend["instagram_ads"] > spend["facebook_ads"] > spend["meta_audience_network"] > 0
    # Spend lands on Meta's channels only: no channel borrows Meta's cost.
    other = warehouse.sql(
        "select count(*) from marts.fct_campaign_performance "
        f"where channel not in {META_CHANNELS} and spend is not null"
    ).fetchone()[0]
    assert other == 0


def test_ads_per_campaign_and_platform_equal_the_truth(warehouse, truth):
    mart = _pairs(
        warehouse,
        f"""
        select channel, campaign_key, sum(spend), sum(clicks), sum(impressions),
            max(campaign_id), max(campaign_name)
        from marts.fct_campaign_performance
        where channel in {META_CHANNELS} and spend > 0
        group by channel, campaign_key
        """,
    )
    expected = {
        (PLATFORM_CHANNELS[platform], c["campaign_id"]): (
            Decimal(str(f["spend"])),
            f["clicks"],
            f["impressions"],
            c["campaign_id"],
            name,
        )
        for name, c in truth["ads"]["by_campaign"].items()
        for platform, f in c["by_platform"].items()
        if f["spend"] > 0
    }
    assert mart == expected
    per_channel = dict(
        warehouse.sql(
            "select channel, sum(spend) from marts.fct_campaign_performance "
            "where spend is not null group by channel"
        ).fetchall()
    )
    assert per_channel == {
        PLATFORM_CHANNELS[platform]: Decimal(str(f["spend"]))
        for platform, f in truth["ads"]["by_platform"].items()
    }
    # The Meta channels together spent what the account spent.
    total = warehouse.sql("select sum(spend) from marts.fct_campaign_performance").fetchone()
    assert total[0] == Decimal(str(truth["ads"]["spend"]))


def test_ad_sessions_match_the_landed_clicks(warehouse, truth):
    # Every ad click that opened a session is one session tagged with its platform (utm_source)
    # and its campaign, on the platform (Segment) and in GA4 alike; the ad id (Segment) or the
    # campaign name (GA4) ties it to the campaign id, the key that joins it to the spend.
    mart = _pairs(
        warehouse,
        f"""
        select channel, campaign_key, sum(sessions), sum(ga4_sessions)
        from marts.fct_campaign_performance
        where channel in {META_CHANNELS}
        group by channel, campaign_key
        """,
    )
    expected = {
        (PLATFORM_CHANNELS[platform], c["campaign_id"]): (
            f["landed_sessions"],
            f["landed_sessions"],
        )
        for c in truth["ads"]["by_campaign"].values()
        for platform, f in c["by_platform"].items()
    }
    assert mart == expected
    assert sum(n for n, _ in mart.values()) == truth["ads"]["landed_sessions"]


def test_ga4_figures_equal_the_truth(warehouse, truth):
    got = warehouse.sql(
        """
        select
            sum(ga4_sessions), sum(ga4_engaged_sessions), sum(ga4_new_users),
            sum(ga4_key_events), sum(ga4_purchase_revenue)
        from marts.fct_campaign_performance
        """
    ).fetchone()
    ga4 = truth["ga4"]
    assert got == (
        ga4["sessions"],
        ga4["engaged_sessions"],
        ga4["new_users"],
        ga4["key_events"],
        Decimal(str(ga4["purchase_revenue"])),
    )


def test_message_outcomes_per_campaign_equal_the_truth(warehouse, truth):
    flags = ", ".join(f"count(case when {flag} then 1 end)" for flag in FLAGS)
    mart = _rows(
        warehouse,
        f"""
        select campaign_id, count(case when not is_holdout then 1 end), {flags}
        from marts.fct_messages
        group by campaign_id
        """,
    )
    campaigns = truth["messaging"]["campaigns"]
    expected = {
        c["campaign_id"]: (c["messages"], *(c["events"][metric] for metric in FLAGS.values()))
        for c in campaigns
    }
    assert len(campaigns) > 10
    assert mart == expected


def test_rebuilt_holdout_is_part_of_the_true_holdout(warehouse, marts_world, truth):
    """Every guest the mart calls held out was held out; most of the holdout is found."""
    from simulator.model.campaigns import simulate_campaigns
    from simulator.model.timeline import simulate
    from simulator.world import read_state

    config, as_of = read_state(marts_world.data_dir)
    timeline = simulate(config, as_of)
    run = simulate_campaigns(config, timeline.population, timeline.purchases, timeline.accounts)
    customer_id = timeline.population.customer_id
    true_holdout = {
        (int(run.campaigns.campaign_id[c]), int(customer_id[g]))
        for c, g in zip(run.holdout_campaign, run.holdout_customer, strict=True)
    }
    rebuilt = set(
        warehouse.sql(
            "select campaign_id, customer_id from marts.fct_messages where is_holdout"
        ).fetchall()
    )
    assert rebuilt <= true_holdout
    assert len(true_holdout) == sum(c["holdout"] for c in truth["messaging"]["campaigns"])
    # Guests whose profile changed after a send drop out of its rebuilt audience (their consent
    # then is unknown): about 1 in 5 over this 150-day world, more for early campaigns.
    assert len(rebuilt) >= 0.6 * len(true_holdout)


def test_treated_minus_holdout_matches_the_truth_within_sampling_error(warehouse, truth):
    """Pooled over campaigns whose window has closed, the treated-minus-holdout gap in orders per
    guest within the window is the truth's, within three standard errors of the mart's own gap.

    The planted uplift is a few points of order probability against a holdout of a few hundred
    guests, so the gap's sign is not a stable fact of a simulated world (one standard error of
    the holdout mean alone is ~0.03); its size against the truth's is. The mart compares the
    comparable part of the audience (about 80% of it) and counts completed orders only (about 94%
    of orders), hence the 0.05 tolerance on each mean. Swapping the treated and holdout flags
    fails the group sizes below.
    """
    uplift = truth["messaging"]["uplift"]
    treated, holdout, treated_n, holdout_n, treated_var, holdout_var = warehouse.sql(
        """
        select
            avg(case when is_delivered and is_comparable then orders_in_window end),
            avg(case when is_holdout then orders_in_window end),
            count(case when is_delivered and is_comparable then 1 end),
            count(case when is_holdout then 1 end),
            var_samp(case when is_delivered and is_comparable then orders_in_window end),
            var_samp(case when is_holdout then orders_in_window end)
        from marts.fct_messages
        where is_window_closed
        """
    ).fetchone()
    standard_error = (treated_var / treated_n + holdout_var / holdout_n) ** 0.5
    truth_gap = uplift["treated_orders_per_guest_7d"] - uplift["holdout_orders_per_guest_7d"]
    assert (treated - holdout) == pytest.approx(truth_gap, abs=3 * standard_error)
    assert treated == pytest.approx(uplift["treated_orders_per_guest_7d"], abs=0.05)
    assert holdout == pytest.approx(uplift["holdout_orders_per_guest_7d"], abs=0.05)
    assert 0.6 * uplift["holdout_guests"] <= holdout_n <= uplift["holdout_guests"]
    assert 0.6 * uplift["treated_guests"] <= treated_n <= uplift["treated_guests"]


def test_campaign_treated_order_rates_follow_the_truth(warehouse, truth):
    """Per campaign with a closed window, the delivered guests' order rate within 7 days is the
    truth's, less the orders that were not completed (cancelled, refunded, deleted: ~6% of
    orders), so never above it and at most 0.05 below."""
    mart = _rows(
        warehouse,
        """
        select campaign_id, avg(case when has_ordered_in_window then 1.0 else 0.0 end), count(*)
        from marts.fct_messages
        where is_delivered and is_window_closed
        group by campaign_id
        """,
    )
    closed = [c for c in truth["messaging"]["campaigns"] if c["window_closed"]]
    assert {c["campaign_id"] for c in closed} == set(mart)
    for c in closed:
        rate, guests = mart[c["campaign_id"]]
        assert guests == c["treated_guests"]
        assert c["treated_order_rate_7d"] - 0.05 <= rate <= c["treated_order_rate_7d"] + 1e-6, c
