"""The latent timeline of the whole world up to a horizon: one call that runs every generator.

Everything later (snapshots of the ordering DB, the truth file, future channels) reads this.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from simulator.config import WorldConfig
from simulator.model.accounts import AccountEvents, simulate_accounts
from simulator.model.chain import Menu, Stores, make_menu, make_stores
from simulator.model.clock import end_of_day_us
from simulator.model.ordering import OrderLines, Orders, simulate_orders
from simulator.model.population import Population, make_population
from simulator.model.purchases import Purchases, simulate_purchases


@dataclass(frozen=True)
class Timeline:
    config: WorldConfig
    horizon: date  # last date generated
    stores: Stores
    menu: Menu
    population: Population
    purchases: Purchases
    accounts: AccountEvents
    orders: Orders
    lines: OrderLines


def simulate(config: WorldConfig, horizon: date) -> Timeline:
    """Generate everything that happens from start_date up to the end of `horizon` (UTC).

    Events of later days are only generated when they belong to something already there (an
    order's refund, a store's opening day); each generator is keyed so that a longer horizon
    reproduces a shorter one exactly.
    """
    last_day = (horizon - config.start_date).days
    if last_day < 0:
        raise ValueError(f"horizon {horizon} is before start_date {config.start_date}")
    stores = make_stores(config)
    menu = make_menu(config, last_day)
    population = make_population(config, stores, last_day)
    purchases = simulate_purchases(config.seed, population, last_day)
    accounts = simulate_accounts(config, population, purchases, end_of_day_us(horizon))
    orders, lines = simulate_orders(config, stores, menu, population, purchases)
    return Timeline(
        config=config,
        horizon=horizon,
        stores=stores,
        menu=menu,
        population=population,
        purchases=purchases,
        accounts=accounts,
        orders=orders,
        lines=lines,
    )
