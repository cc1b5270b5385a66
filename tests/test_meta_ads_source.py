"""The Meta ads source against the local Marketing API fake over real HTTP, into a temporary
DuckDB."""

from __future__ import annotations

import json
from datetime import date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

import duckdb
import numpy as np
import pytest
from dlt.pipeline.exceptions import PipelineStepFailed

import simulator.fakes.meta
from expectations.gate import suite_expectations
from expectations.promote import promote
from expectations.suite_runner import ROW_NUMBER, SuiteRunner
from expectations.suites.meta_ads import table_suites
from ingestion.meta_ads import SOURCE_NAME, meta_ads_source
from ingestion.meta_ads.helpers import (
    MetaAdsRateLimitError,
    MetaAdsTokenError,
    budget_offset,
    date_slices,
    typed_insight,
    typed_object,
)
from ingestion.pipelines import landing_pipeline
from regulars.settings import Settings
from simulator.fakes import FakeServer
from simulator.fakes.meta import DEFAULT_TOKEN, PURCHASE_ACTION_TYPES
from tests.conftest import run_dbt
from tests.test_simulator.fakes_helpers import (
    ACCOUNT,
    FIRST_DAY,
    SHARED_NAME,
    TODAY,
    recorded,
    served_world,
    write_meta,
)

API = f"/v21.0/act_{ACCOUNT}"
PAGE_SIZE, INSIGHTS_PAGE_SIZE, DAYS_PER_REQUEST = 2, 25, 4
OBJECTS = {"campaigns": 3, "adsets": 6, "ads": 12}  # ACCOUNT's, the archived ad included
# Meta leaves rows without delivery out; the source lands the rest, one per ad x day x platform.
DELIVERED = "impressions > 0 or spend > 0 or purchases > 0"
# fct_campaign_performance's channel for each publisher platform the fake reports.
PLATFORM_CHANNELS = {"instagram": "instagram_ads", "facebook": "facebook_ads"}


class Fake:
    """The Meta fake with the query of every request it was sent."""

    def __init__(self, server: FakeServer):
        self.server = server
        self.queries: list[tuple[str, dict]] = []
        handle = server.meta.handle

        def recording(request):
            self.queries.append((request.path, dict(request.query)))
            return handle(request)

        server.meta.handle = recording

    def reset(self) -> None:
        self.server.meta.faults.clear()
        self.server.reset_requests()
        self.queries.clear()

    def calls(self, edge: str) -> int:
        return self.server.request_counts()[f"{API}/{edge}"]

    def time_ranges(self) -> list[tuple[str, str]]:
        ranges = [
            json.loads(query["time_range"])
            for path, query in self.queries
            if path.endswith("/insights") and "after" not in query
        ]
        return [(r["since"], r["until"]) for r in ranges]


data_dir, server = served_world("meta", write_meta)


fake = recorded(Fake)


def load(settings: Settings, fake: Fake, **overrides):
    arguments = {
        "ad_account_id": ACCOUNT,
        "access_token": DEFAULT_TOKEN,
        "start_date": FIRST_DAY.isoformat(),
        "base_url": fake.server.base_url,
        "page_size": PAGE_SIZE,
        "insights_page_size": INSIGHTS_PAGE_SIZE,
        "insights_days_per_request": DAYS_PER_REQUEST,
        "today": TODAY.isoformat(),
        "request_max_attempts": 3,
        "request_backoff_factor": 0.01,  # waits of 10 ms, 20 ms: tests stay fast
        "request_max_retry_delay": 0.05,
    }
    source = meta_ads_source(**(arguments | overrides))
    return landing_pipeline(SOURCE_NAME, settings).run(source)


def query(settings: Settings, sql: str) -> list[tuple]:
    with duckdb.connect(str(settings.warehouse_path), read_only=True) as connection:
        return connection.execute(sql).fetchall()


def parquet(data_dir: Path, sql: str) -> list[tuple]:
    path = data_dir / "meta" / "insights.parquet"
    return duckdb.sql(sql.replace("insights", f"read_parquet('{path}')")).fetchall()


def cause(error: BaseException, kind: type[BaseException]) -> BaseException:
    """The `kind` error somewhere in the chain dlt wraps around a resource's exception."""
    seen = error
    while seen is not None:
        if isinstance(seen, kind):
            return seen
        seen = seen.__cause__ or seen.__context__
    raise AssertionError(f"no {kind.__name__} behind {error!r}")


def delivered_rows(data_dir: Path) -> int:
    return parquet(
        data_dir, f"select count(*) from insights where account_id = '{ACCOUNT}' and ({DELIVERED})"
    )[0][0]


# --- pure functions -----------------------------------------------------------------------------


def test_purchases_come_from_one_action_type_never_their_sum():
    row = {
        "date_start": "2025-03-02",
        "date_stop": "2025-03-02",
        "ad_id": "1",
        "publisher_platform": "instagram",
        "impressions": "1200",
        "clicks": "30",
        "spend": "45000.5",
        "actions": [{"action_type": t, "value": "3"} for t in PURCHASE_ACTION_TYPES],
        "action_values": [{"action_type": t, "value": "210000"} for t in PURCHASE_ACTION_TYPES],
    }
    typed = typed_insight(row)
    assert (typed["purchases"], typed["purchase_value"]) == (3, Decimal("210000.00"))
    assert (typed["impressions"], typed["spend"], typed["reach"]) == (1200, Decimal("45000.50"), 0)
    assert typed["date_start"] == date(2025, 3, 2)
    assert typed["campaign_id"] is None  # kept, for the gate to quarantine if it spent
    assert typed_insight({**row, "actions": None, "action_values": None})["purchases"] == 0
    assert date_slices(FIRST_DAY, TODAY, 4)[-1] == (date(2025, 3, 9), TODAY)
    assert date_slices(TODAY, FIRST_DAY, 4) == []


@pytest.mark.parametrize(
    ("currency", "budget"),
    [
        ("USD", Decimal("50.00")),  # cents
        ("idr", Decimal("5000.00")),  # Meta counts rupiah whole
        ("JPY", Decimal("5000.00")),
        # Meta's offsets, not ISO 4217's minor units: BHD has three digits, Meta counts
        # hundredths; TWD has two, Meta counts it whole.
        ("BHD", Decimal("50.00")),
        ("TWD", Decimal("5000.00")),
    ],
)
def test_budgets_land_in_major_units_of_the_account_currency(currency, budget):
    obj = {"id": "1", "daily_budget": "5000", "lifetime_budget": ""}
    typed = typed_object("campaigns", obj, budget_offset(currency))
    assert (typed["daily_budget"], typed["lifetime_budget"]) == (budget, None)


@pytest.mark.parametrize(
    ("reported", "purchases", "value"),
    [
        # Meta's de-duplicated total wins over the pixel's own count, never summed with it.
        (
            {"offsite_conversion.fb_pixel_purchase": (2, "90000"), "omni_purchase": (5, "400000")},
            5,
            Decimal("400000.00"),
        ),
        # An account that reports only the standard event name.
        ({"purchase": (4, "300000")}, 4, Decimal("300000.00")),
        (
            {"purchase": (4, "300000"), "offsite_conversion.fb_pixel_purchase": (3, "1")},
            4,
            Decimal("300000.00"),
        ),
        # Only the app's purchases tracked.
        ({"app_custom_event.fb_mobile_purchase": (1, "75000")}, 1, Decimal("75000.00")),
        # Actions that are not purchases count for nothing.
        ({"link_click": (30, "0"), "add_to_cart": (6, "0")}, 0, Decimal("0.00")),
    ],
    ids=["omni_over_pixel", "purchase_only", "purchase_over_pixel", "app_only", "no_purchase"],
)
def test_purchases_follow_one_documented_precedence_of_action_types(reported, purchases, value):
    row = {
        "date_start": "2025-03-02",
        "ad_id": "1",
        "publisher_platform": "facebook",
        "actions": [{"action_type": t, "value": str(n)} for t, (n, _) in reported.items()],
        "action_values": [{"action_type": t, "value": v} for t, (_, v) in reported.items()],
    }
    typed = typed_insight(row)
    assert (typed["purchases"], typed["purchase_value"]) == (purchases, value)


# --- against the fake ---------------------------------------------------------------------------


def test_every_object_and_insight_lands_once_and_adds_up(
    regulars_env: Settings, fake: Fake, data_dir: Path
):
    load(regulars_env, fake)

    for edge, count in OBJECTS.items():
        on_file = json.loads((data_dir / "meta" / f"{edge}.json").read_text())
        wanted = sorted(o["id"] for o in on_file if o["account_id"] == ACCOUNT)
        ids = query(regulars_env, f"select id from landing_meta_ads.{edge} order by 1")
        assert [r[0] for r in ids] == wanted
        assert len(wanted) == count and fake.calls(edge) == -(-count // PAGE_SIZE)

    # Three slices of at most four days, each paged.
    assert fake.time_ranges() == [
        ("2025-03-01", "2025-03-04"),
        ("2025-03-05", "2025-03-08"),
        ("2025-03-09", "2025-03-10"),
    ]
    assert fake.calls("insights") > len(fake.time_ranges())

    n_rows = delivered_rows(data_dir)
    landed = query(
        regulars_env,
        "select count(*), count(distinct insight_id), sum(spend), sum(purchases), "
        "sum(purchase_value), sum(impressions), sum(clicks) from landing_meta_ads.insights",
    )
    on_file = parquet(
        data_dir,
        "select round(sum(spend), 2), sum(purchases), round(sum(purchase_value), 2), "
        f"sum(impressions), sum(clicks) from insights where account_id = '{ACCOUNT}'",
    )
    ((rows, keys, spend, purchases, value, impressions, clicks),) = landed
    ((file_spend, file_purchases, file_value, file_impressions, file_clicks),) = on_file
    assert rows == keys == n_rows
    assert float(spend) == pytest.approx(file_spend, abs=0.005)
    assert purchases == file_purchases > 0  # one action type, not three summed
    assert float(value) == pytest.approx(file_value, abs=0.005)
    assert (impressions, clicks) == (file_impressions, file_clicks)

    # The fake's account bills in rupiah, which Meta counts whole: budgets land as on file.
    budgets = {}
    for edge in ("campaigns", "adsets"):
        on_file = json.loads((data_dir / "meta" / f"{edge}.json").read_text())
        mine = [o for o in on_file if o["account_id"] == ACCOUNT and o.get("daily_budget")]
        ((landed_budget,),) = query(
            regulars_env, f"select coalesce(sum(daily_budget), 0) from landing_meta_ads.{edge}"
        )
        budgets[edge] = (landed_budget, sum(Decimal(o["daily_budget"]) for o in mine))
    assert all(landed == on_file for landed, on_file in budgets.values()), budgets
    assert sum(on_file for _, on_file in budgets.values()) > 0

    gate = promote(SOURCE_NAME, regulars_env).report.tables
    assert {name: (t.promoted_rows, t.quarantined_rows) for name, t in gate.items()} == {
        **{edge: (count, 0) for edge, count in OBJECTS.items()},
        "insights": (n_rows, 0),
    }


def test_the_mart_splits_spend_by_publisher_platform_and_keys_campaigns_by_id(
    regulars_env: Settings, fake: Fake, data_dir: Path, tmp_path: Path
):
    """Instagram and Facebook rows of one ad and day both land, and the mart counts each on its
    own channel: instagram_ads is exactly the Instagram rows, facebook_ads the Facebook rows.
    Two campaigns with one name stay two rows, keyed by their ids."""
    load(regulars_env, fake, page_size=100, insights_page_size=100)
    promote(SOURCE_NAME, regulars_env)
    run_dbt(
        regulars_env.warehouse_path,
        tmp_path / "target",
        "build",
        *("--select", "+fct_campaign_performance", "--indirect-selection", "cautious"),
        *("--exclude-resource-type", "unit_test"),
    )

    landed = query(
        regulars_env,
        "select publisher_platform, count(distinct ad_id || date_start) "
        "from landing_meta_ads.insights group by 1 order by 1",
    )
    days_and_ads = query(
        regulars_env, "select count(distinct ad_id || date_start) from landing_meta_ads.insights"
    )[0][0]
    assert [platform for platform, _ in landed] == ["facebook", "instagram"]
    assert all(n > days_and_ads / 2 for _, n in landed)  # most ad-days on both platforms

    mart = {
        (channel, key): (name, spend, impressions, clicks, purchases)
        for channel, key, name, spend, impressions, clicks, purchases in query(
            regulars_env,
            "select channel, campaign_key, max(campaign_name), sum(spend), "
            "sum(impressions), sum(clicks), sum(meta_purchases) "
            "from marts.fct_campaign_performance group by all",
        )
    }
    rows = {
        (PLATFORM_CHANNELS[platform], campaign): (spend, impressions, clicks, purchases)
        for platform, campaign, spend, impressions, clicks, purchases in query(
            regulars_env,
            "select publisher_platform, campaign_id, sum(spend), sum(impressions), sum(clicks), "
            "sum(purchases) from raw_meta_ads.insights group by all",
        )
    }
    assert {key: figures[1:] for key, figures in mart.items()} == rows
    on_file = parquet(
        data_dir,
        "select publisher_platform, round(sum(spend), 2), sum(clicks) from insights "
        f"where account_id = '{ACCOUNT}' and ({DELIVERED}) group by 1",
    )
    for platform, spend, clicks in on_file:
        channel = PLATFORM_CHANNELS[platform]
        in_mart = [figures for (c, _), figures in mart.items() if c == channel]
        assert float(sum(f[1] for f in in_mart)) == pytest.approx(spend, abs=0.01)
        assert sum(f[3] for f in in_mart) == clicks
    instagram, facebook = (
        sum(f[1] for (c, _), f in mart.items() if c == channel)
        for channel in ("instagram_ads", "facebook_ads")
    )
    assert instagram > 0 and facebook > 0 and instagram != facebook

    campaigns = json.loads((data_dir / "meta" / "campaigns.json").read_text())
    twins = sorted(c["id"] for c in campaigns if c["name"] == SHARED_NAME)
    assert len(twins) == 2
    for channel in PLATFORM_CHANNELS.values():
        for campaign_id in twins:
            name, spend, *_ = mart[(channel, campaign_id)]
            assert name == SHARED_NAME
            assert spend == rows[(channel, campaign_id)][0] > 0


def test_rate_limits_are_retried_and_the_load_completes(
    regulars_env: Settings, fake: Fake, data_dir: Path
):
    fake.server.meta.faults.add("rate_limit", count=1, path_contains="/campaigns")  # code 17
    fake.server.meta.faults.add("account_rate_limit", count=1, after=1, path_contains="/insights")
    load(regulars_env, fake, page_size=100)

    assert fake.calls("campaigns") == 1 + 1
    statuses = [e["status"] for e in fake.server.requests if e["path"].endswith("/insights")]
    assert statuses.count(400) == 1 and statuses[1] == 400  # the second insights page, once
    ((rows, campaigns),) = query(
        regulars_env,
        "select (select count(*) from landing_meta_ads.insights), "
        "(select count(*) from landing_meta_ads.campaigns)",
    )
    assert (rows, campaigns) == (delivered_rows(data_dir), OBJECTS["campaigns"])


def test_a_throttle_that_outlasts_the_retries_says_when_to_come_back(
    regulars_env: Settings, fake: Fake
):
    fake.server.meta.faults.add("account_rate_limit", count=10, path_contains="/insights")
    with pytest.raises(PipelineStepFailed) as failed:
        load(regulars_env, fake)
    error = str(cause(failed.value, MetaAdsRateLimitError))
    assert error.startswith(f"Meta ads account act_{ACCOUNT}: still rate limited after 3")
    assert "code 80000/2446079" in error and "about 1 minute(s)" in error
    assert fake.calls("insights") == 3


def test_an_expired_token_names_the_account_and_the_setting(regulars_env: Settings, fake: Fake):
    fake.server.meta.faults.add("expired_token", count=1)
    with pytest.raises(PipelineStepFailed) as failed:
        load(regulars_env, fake)
    error = str(cause(failed.value, MetaAdsTokenError))
    assert error.startswith(f"Meta ads account act_{ACCOUNT}: the access token was refused")
    assert "code 190/463: Error validating access token: Session has expired" in error
    assert "Renew sources.meta_ads.access_token in .dlt/secrets.toml" in error
    assert sum(fake.server.request_counts().values()) == 1  # not retried


def test_a_second_run_re_pulls_only_the_attribution_window(
    regulars_env: Settings, fake: Fake, data_dir: Path
):
    load(regulars_env, fake, page_size=100, insights_page_size=100)
    counts_sql = (
        "select (select count(*) from landing_meta_ads.insights), "
        "(select sum(spend) from landing_meta_ads.insights), "
        "(select count(*) from landing_meta_ads.ads)"
    )
    first = query(regulars_env, counts_sql)
    fake.reset()

    load(regulars_env, fake, page_size=100, insights_page_size=100, insights_days_per_request=30)

    window_start = TODAY - timedelta(days=7)  # newest loaded day minus attribution_window_days
    assert fake.time_ranges() == [(window_start.isoformat(), TODAY.isoformat())]
    assert query(regulars_env, counts_sql) == first
    assert query(
        regulars_env,
        f"select date_start >= '{window_start}', count(distinct _dlt_load_id) "
        "from landing_meta_ads.insights group by 1 order by 1",
    ) == [(False, 1), (True, 1)]


@pytest.mark.parametrize("zone", ["Pacific/Kiritimati", "Pacific/Pago_Pago"])
def test_insights_run_to_today_in_the_ad_accounts_time_zone(
    regulars_env: Settings, fake: Fake, zone: str, monkeypatch: pytest.MonkeyPatch
):
    # UTC+14 and UTC-11 are a day apart at every hour: a source that took this machine's date
    # for the last day asked one of these two accounts for the wrong one.
    monkeypatch.setattr(simulator.fakes.meta, "TIME_ZONE", zone)
    before = datetime.now(ZoneInfo(zone)).date()
    load(regulars_env, fake, today=None, start_date=(before - timedelta(days=2)).isoformat())
    after = datetime.now(ZoneInfo(zone)).date()
    (requested,) = fake.time_ranges()
    assert requested[1] in (before.isoformat(), after.isoformat())


def test_the_insights_suite_holds_back_impossible_rows(data_dir: Path):
    path = data_dir / "meta" / "insights.parquet"
    # Arrow to pandas, as the gate reads a landed batch: dates and Decimals stay objects.
    frame = (
        duckdb.sql(
            "select date_start::date as date_start, 'IDR' as account_currency, campaign_id, "
            "ad_id, publisher_platform, "
            "impressions, reach, clicks, purchases, spend::decimal(18, 2) as spend, "
            "purchase_value::decimal(18, 2) as purchase_value "
            f"from read_parquet('{path}') where impressions > 100 and clicks > 0 "
            "order by all limit 6"
        )
        .to_arrow_table()
        .to_pandas()
    )
    frame["insight_id"] = [f"row-{i}" for i in range(len(frame))]
    frame.loc[0, "campaign_id"] = None  # spend with no campaign to charge it to
    frame.loc[1, "publisher_platform"] = "myspace"
    frame.loc[2, "clicks"] = frame.loc[2, "impressions"] + 1
    frame.loc[3, "spend"] = Decimal("-1.00")
    frame.loc[4, "insight_id"] = "row-5"  # a duplicate key: both rows held

    suite = table_suites()["insights"]
    frame = suite.derive(frame)
    frame[ROW_NUMBER] = np.arange(len(frame))
    verdict = SuiteRunner(suite.suite_name, suite_expectations(suite)).validate(frame)

    assert verdict.batch_passed, verdict.batch_failures
    reasons = {row: " ".join(found) for row, found in verdict.row_failures.items()}
    assert set(reasons) == {0, 1, 2, 3, 4, 5}
    assert "_spend_without_campaign" in reasons[0]
    assert "column=publisher_platform" in reasons[1]
    assert "_clicks_minus_impressions" in reasons[2]
    assert "column=_spend" in reasons[3]
    assert "be_unique(column=insight_id)" in reasons[4] and "be_unique" in reasons[5]
