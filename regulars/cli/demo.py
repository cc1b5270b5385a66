"""The simulated world as a chain: its `[chain]` settings, and stand-ins for its HTTP APIs.

The ordering DB, the order-history files and the landing zone of the demo are plain files under
data/, which the sources read as they would read production ones. GA4 and Meta are HTTP APIs:
for them the simulator serves local fakes on 127.0.0.1, and this module starts them for the
length of a command and points the sources at them through dlt's own environment variables, the
same way an operator configures production. When a real GA4 or Meta is configured (a token in
.dlt/secrets.toml or the environment), nothing is started for it. The world's time zone, currency,
first day and today are set the same way (CHAIN__*), unless the operator set them.

Only the CLI uses this; the pipelines, the gate and the Dagster definitions never import the
simulator.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

from ingestion.registry import token_configured
from regulars.settings import Settings, chain_setting

# The simulator's file behind each API fake: no file, no channel in this world, no fake.
API_SOURCES = {"ga4": "ga4/sessions.parquet", "meta_ads": "meta/campaigns.json"}


def is_simulated_world(settings: Settings) -> bool:
    return (settings.data_dir / "world.json").exists()


# The simulated chain as a real one would write it in `[chain]`: its stores keep Jakarta time and
# trade in rupiah.
SIMULATED_CHAIN = {"timezone": "Asia/Jakarta", "currency": "IDR", "country": "ID"}


def simulated_chain(settings: Settings) -> dict[str, str]:
    """CHAIN__* for the simulated world, for every key the operator has not set.

    Its partitions start on the world's first day and its today is the world's day: a world built
    for 2025 is a chain living in 2025, not one closed since (and a run over all its days plans
    those days, not every day to the wall clock's).
    """
    from simulator import read_state

    config, as_of = read_state(settings.data_dir)
    own = SIMULATED_CHAIN | {
        "partitions_start": config.start_date.isoformat(),
        "today": as_of.isoformat(),
    }
    return {
        f"CHAIN__{key.upper()}": value for key, value in own.items() if chain_setting(key) is None
    }


@contextmanager
def environment(env: dict[str, str]) -> Iterator[dict[str, str]]:
    """`env` set in this process (and the processes it starts) for the length of the block."""
    previous = {name: os.environ.get(name) for name in env}
    os.environ.update(env)
    try:
        yield env
    finally:
        for name, value in previous.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


@contextmanager
def demo_chain(settings: Settings) -> Iterator[dict[str, str]]:
    """The simulated chain's `[chain]` settings for the block, when the data is the demo world."""
    if not is_simulated_world(settings):
        yield {}
        return
    with environment(simulated_chain(settings)) as chain:
        yield chain


@contextmanager
def demo_apis(settings: Settings) -> Iterator[dict[str, str]]:
    """The simulated chain's settings, and the GA4 and Meta fakes for its unconfigured APIs."""
    if not is_simulated_world(settings):
        yield {}
        return
    with demo_chain(settings) as chain, _api_fakes(settings) as apis:
        yield chain | apis


@contextmanager
def _api_fakes(settings: Settings) -> Iterator[dict[str, str]]:
    wanted = [
        name
        for name, data_file in API_SOURCES.items()
        if not token_configured(name) and (settings.data_dir / data_file).exists()
    ]
    if not wanted:
        yield {}
        return
    from simulator import read_state
    from simulator.ads import ACCOUNT_ID
    from simulator.fakes import FakeServer, ga4, meta

    config, as_of = read_state(settings.data_dir)
    fakes = [{"ga4": "ga4", "meta_ads": "meta"}[name] for name in wanted]
    with FakeServer(settings.data_dir, fakes, today=as_of) as server:
        start = config.start_date.isoformat()
        env = {}
        if "ga4" in wanted:
            env |= {
                "SOURCES__GA4__BASE_URL": server.base_url,
                "SOURCES__GA4__ACCESS_TOKEN": ga4.DEFAULT_TOKEN,
                "SOURCES__GA4__PROPERTY_ID": ga4.DEFAULT_PROPERTY_ID,
                "SOURCES__GA4__START_DATE": start,
                "SOURCES__GA4__TODAY": as_of.isoformat(),
            }
        if "meta_ads" in wanted:
            env |= {
                "SOURCES__META_ADS__BASE_URL": server.base_url,
                "SOURCES__META_ADS__ACCESS_TOKEN": meta.DEFAULT_TOKEN,
                "SOURCES__META_ADS__AD_ACCOUNT_ID": ACCOUNT_ID,
                "SOURCES__META_ADS__START_DATE": start,
                "SOURCES__META_ADS__TODAY": as_of.isoformat(),
            }
        with environment(env):
            yield env
