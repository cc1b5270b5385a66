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

import importlib
import json
import pkgutil
from collections.abc import Iterator
from contextlib import contextmanager
from types import ModuleType

from ingestion.source_spec import token_configured
from regulars.settings import Settings, chain_setting, environment


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
    # Its stores in Bali and the other WITA provinces keep Makassar time, an hour ahead.
    other_zones = {
        province.name: province.timezone
        for province in config.chosen_provinces
        if province.timezone != SIMULATED_CHAIN["timezone"]
    }
    own = SIMULATED_CHAIN | {
        "partitions_start": config.start_date.isoformat(),
        "today": as_of.isoformat(),
        "province_timezones": json.dumps(other_zones),
    }
    return {
        f"CHAIN__{key.upper()}": value for key, value in own.items() if chain_setting(key) is None
    }


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


def api_fakes() -> list[ModuleType]:
    """The simulator's API fakes: each module of simulator/fakes that says which source it
    stands in for, so a new API's fake needs no entry here."""
    import simulator.fakes as package

    modules = [
        importlib.import_module(f"{package.__name__}.{module.name}")
        for module in pkgutil.iter_modules(package.__path__)
    ]
    return [module for module in modules if hasattr(module, "STANDS_IN_FOR")]


@contextmanager
def _api_fakes(settings: Settings) -> Iterator[dict[str, str]]:
    # No world file, no channel in this world, no fake; a configured token means the real API.
    wanted = [
        fake
        for fake in api_fakes()
        if not token_configured(fake.STANDS_IN_FOR)
        and (settings.data_dir / fake.DATA_FILE).exists()
    ]
    if not wanted:
        yield {}
        return
    from simulator import read_state
    from simulator.fakes import FakeServer

    config, as_of = read_state(settings.data_dir)
    names = [fake.__name__.rsplit(".", 1)[1] for fake in wanted]
    with FakeServer(settings.data_dir, names, today=as_of) as server:
        env = {}
        for fake in wanted:
            account_key, account = fake.ACCOUNT_SETTING
            settings_for_fake = {
                "base_url": server.base_url,
                "access_token": fake.DEFAULT_TOKEN,
                account_key: account,
                "start_date": config.start_date.isoformat(),
                "today": as_of.isoformat(),
            }
            prefix = f"SOURCES__{fake.STANDS_IN_FOR.upper()}__"
            env |= {prefix + key.upper(): value for key, value in settings_for_fake.items()}
        with environment(env):
            yield env
