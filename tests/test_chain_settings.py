"""The chain's `[chain]` settings: read once, checked with a message that says what to write,
and fed to the day partitions, the schedules and the gate."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from datetime import date, datetime
from zoneinfo import ZoneInfo

import dagster as dg
import pandas as pd
import pytest

from expectations.bounds import chain_opened_at
from orchestration.automation import todays_event_days
from orchestration.dbt import daily_partitions
from regulars.settings import Chain, ChainConfigError, load_chain


@pytest.fixture(autouse=True)
def no_chain_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for key in (
        "TIMEZONE",
        "CURRENCY",
        "COUNTRY",
        "OPENED_ON",
        "PARTITIONS_START",
        "TODAY",
        "PROVINCE_TIMEZONES",
    ):
        monkeypatch.delenv(f"CHAIN__{key}", raising=False)


def test_an_unconfigured_chain_keeps_utc_and_only_refuses_impossible_dates():
    chain = load_chain()
    assert (chain.timezone, chain.currency, chain.opened_on, chain.today) == (
        "UTC",
        None,
        None,
        None,
    )
    assert (chain.country, chain.phone_country_code) == (None, None)
    assert chain.dbt_vars() == {
        "chain_timezone": "UTC",
        "chain_phone_country_code": None,
        "chain_currency": None,
        "chain_province_timezones": {},
    }
    # A 1997 POS export passes; a zero date or an epoch does not.
    assert chain_opened_at() == pd.Timestamp("1990-01-01", tz="UTC")


def test_the_environment_sets_the_chain(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("CHAIN__TIMEZONE", "America/New_York")
    monkeypatch.setenv("CHAIN__CURRENCY", "usd")
    monkeypatch.setenv("CHAIN__OPENED_ON", "1997-01-01")
    monkeypatch.setenv("CHAIN__COUNTRY", "us")
    chain = load_chain()
    assert (chain.timezone, chain.currency, chain.opened_on) == (
        "America/New_York",
        "USD",
        date(1997, 1, 1),
    )
    assert (chain.country, chain.phone_country_code) == ("US", "1")
    assert chain.dbt_vars()["chain_phone_country_code"] == "1"
    assert chain.dbt_vars()["chain_currency"] == "USD"
    assert chain.first_partition_day == date(1997, 1, 1)
    # Local midnight of the opening day, in UTC: five hours later in New York's winter.
    assert chain_opened_at() == pd.Timestamp("1997-01-01 05:00", tz="UTC")


def test_the_projects_dlt_folder_is_read_wherever_a_command_runs(tmp_path):
    # dlt reads `.dlt/` from the working directory: a command run from another folder read no
    # `[chain]` and went on with the defaults (UTC, no currency) without a word.
    project, elsewhere = tmp_path / "chain", tmp_path / "elsewhere"
    (project / ".dlt").mkdir(parents=True)
    (project / ".dlt" / "config.toml").write_text(
        '[chain]\ntimezone = "America/New_York"\ncurrency = "USD"\n'
        '[chain.province_timezones]\n"Illinois" = "America/Chicago"\n'
        '"Côte d\'Or" = "Europe/Paris"\n',
        encoding="utf-8",
    )
    elsewhere.mkdir()
    env = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith("CHAIN__") and name != "DLT_PROJECT_DIR"
    }
    read = (
        "from regulars.settings import load_settings\n"
        "chain = load_settings().chain\n"
        "print(chain.timezone, chain.currency)\n"
        "print(chain.province_timezones)"
    )
    printed = subprocess.run(
        [sys.executable, "-c", read],
        cwd=elsewhere,
        env={**env, "REGULARS_PROJECT_DIR": str(project)},
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    chain_line, zones_line = printed.splitlines()
    assert chain_line.split() == ["America/New_York", "USD"]
    assert zones_line == str((("Côte d'Or", "Europe/Paris"), ("Illinois", "America/Chicago")))


def test_stores_in_other_zones_are_read_from_json_in_the_environment(monkeypatch):
    # The TOML table is read in test_the_projects_dlt_folder_is_read_wherever_a_command_runs.
    monkeypatch.setenv("CHAIN__PROVINCE_TIMEZONES", '{"Bali": "Asia/Makassar"}')
    assert load_chain().dbt_vars()["chain_province_timezones"] == {"Bali": "Asia/Makassar"}


@pytest.mark.parametrize(
    ("value", "says"),
    [
        ('{"Bali": "WITA"}', "province_timezones: Bali = 'WITA' is not an IANA time zone"),
        ("Bali=Asia/Makassar", "province_timezones is not a table"),
    ],
)
def test_a_bad_province_zone_says_how_to_write_the_table(
    value: str, says: str, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setenv("CHAIN__PROVINCE_TIMEZONES", value)
    with pytest.raises(ChainConfigError, match=re.escape(says)) as raised:
        load_chain()
    assert "[chain.province_timezones]" in str(raised.value)


@pytest.mark.parametrize(
    ("key", "value", "says"),
    [
        ("TIMEZONE", "Jakarta", "is not an IANA time zone"),
        ("CURRENCY", "rupiah", "is not an ISO 4217 code"),
        ("COUNTRY", "Indonesia", "is not an ISO 3166-1 country code"),
        ("OPENED_ON", "01/03/2024", "is not a date: write it as YYYY-MM-DD"),
        ("PARTITIONS_START", "2999-01-01", "is after the chain's today"),
    ],
)
def test_a_bad_value_names_the_key_and_what_to_write(
    key: str, value: str, says: str, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setenv(f"CHAIN__{key}", value)
    with pytest.raises(ChainConfigError, match=re.escape(says)) as raised:
        load_chain()
    assert f"[chain] {key.lower()}" in str(raised.value)


def test_partitions_run_from_the_chains_first_day_to_its_today_in_its_time_zone():
    chain = Chain(
        timezone="Asia/Jakarta", partitions_start=date(2025, 3, 1), today=date(2025, 4, 29)
    )
    partitions = daily_partitions(chain)
    keys = partitions.get_partition_keys()
    assert (keys[0], keys[-1], len(keys)) == ("2025-03-01", "2025-04-29", 60)
    window = partitions.time_window_for_partition_key("2025-03-01")
    assert window.start == datetime(2025, 3, 1, tzinfo=ZoneInfo("Asia/Jakarta"))


def test_an_open_chain_has_a_partition_for_its_local_today():
    chain = Chain(timezone="Pacific/Kiritimati", partitions_start=date(2026, 1, 1))  # UTC+14
    keys = daily_partitions(chain).get_partition_keys()
    assert keys[-1] == datetime.now(ZoneInfo("Pacific/Kiritimati")).date().isoformat()


@pytest.mark.parametrize(
    ("local_time", "days"),
    [("2025-04-29 00:20", ["2025-04-28", "2025-04-29"]), ("2025-04-29 07:20", ["2025-04-29"])],
)
def test_the_hourly_partition_schedule_closes_the_chains_local_day(local_time: str, days: list):
    # 00:20 in Jakarta is 17:20 UTC the day before: the local day is the one to close.
    scheduled = pd.Timestamp(local_time, tz="Asia/Jakarta").to_pydatetime()
    context = dg.build_schedule_context(scheduled_execution_time=scheduled)
    assert [request.partition_key for request in todays_event_days(context)] == days


def test_the_demo_chain_keeps_its_wita_stores_on_makassar_time(tiny_world):
    # Its Bali stores open at 09:00 WITA, 08:00 in Jakarta: read in the chain's zone, an hour of
    # every Bali order moved a day-part early.
    from regulars.cli.demo import demo_chain
    from regulars.settings import load_settings

    with demo_chain(tiny_world):
        chain = load_settings().chain
    assert chain.timezone == "Asia/Jakarta"
    assert chain.province_timezones == (("Bali", "Asia/Makassar"),)
