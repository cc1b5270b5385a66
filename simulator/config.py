"""What a simulated world is made of: the configuration and where its files live."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from simulator.model.catalog import PROVINCES


@dataclass(frozen=True)
class WorldConfig:
    """Every knob of the simulated chain; the world is a pure function of this and an as-of date.

    `days` only places the first snapshot (as_of = start_date + days - 1). Nothing generated depends
    on it, so a build at days=60 advanced by 5 days equals a build at days=65. For the same reason
    `customers` is a rate, not a head count: the expected number of sign-ups over the first
    `acquisition_days` days; sign-ups keep arriving, and growing, after that.
    """

    seed: int = 7
    customers: int = 2000
    days: int = 180
    start_date: date = date(2025, 1, 1)
    provinces: int = 3
    stores_per_province: int = 3
    acquisition_days: int = 180
    monthly_growth: float = 0.08  # sign-up rate grows 8% a month
    # BG/NBD: purchase rate lambda ~ Gamma(shape r, rate alpha) per day; dropout p ~ Beta(a, b).
    r: float = 0.9
    alpha: float = 15.0
    a: float = 0.8
    b: float = 6.0
    # Gamma-Gamma: order value z ~ Gamma(spend_p, rate nu), nu ~ Gamma(spend_q, rate spend_gamma).
    spend_p: float = 6.0
    spend_q: float = 4.0
    spend_gamma: float = 47_500.0
    never_order_share: float = 0.12  # sign up and never order
    home_store_share: float = 0.8  # repeat orders at the home store
    app_share: float = 0.65  # guests who prefer the app over the web
    email_consent_share: float = 0.6
    sms_consent_share: float = 0.35
    cancel_share: float = 0.04
    refund_share: float = 0.015
    fraud_share: float = 0.004  # test/fraud orders, soft-deleted within two days
    profile_edit_days: float = 240.0  # mean days between a guest's profile edits
    closure_share: float = 0.1  # churned guests who later close their account

    def __post_init__(self) -> None:
        checks = {
            "seed must be >= 0": self.seed >= 0,
            "customers must be >= 1": self.customers >= 1,
            "days must be >= 1": self.days >= 1,
            "acquisition_days must be >= 1": self.acquisition_days >= 1,
            f"provinces must be 1..{len(PROVINCES)}": 1 <= self.provinces <= len(PROVINCES),
            "stores_per_province must be 1..the sites listed for each province": (
                self.stores_per_province >= 1
                and all(len(p.sites) >= self.stores_per_province for p in self.chosen_provinces)
            ),
            "r, alpha, a, b must be > 0": min(self.r, self.alpha, self.a, self.b) > 0,
            "spend_p, spend_gamma > 0 and spend_q > 1": (
                self.spend_p > 0 and self.spend_gamma > 0 and self.spend_q > 1
            ),
        }
        shares = [
            "never_order_share",
            "home_store_share",
            "app_share",
            "email_consent_share",
            "sms_consent_share",
            "cancel_share",
            "refund_share",
            "fraud_share",
            "closure_share",
        ]
        for name in shares:
            checks[f"{name} must be in [0, 1]"] = 0 <= getattr(self, name) <= 1
        checks["cancel_share + refund_share must be <= 1"] = (
            self.cancel_share + self.refund_share <= 1
        )
        failed = [message for message, ok in checks.items() if not ok]
        if failed:
            raise ValueError("invalid WorldConfig: " + "; ".join(failed))

    @property
    def chosen_provinces(self):
        return PROVINCES[: self.provinces]

    @property
    def first_as_of(self) -> date:
        """The as-of date of the snapshot `build_world` writes."""
        return self.start_date + timedelta(days=self.days - 1)

    def to_json(self) -> dict[str, Any]:
        values = dataclasses.asdict(self)
        values["start_date"] = self.start_date.isoformat()
        return values

    @classmethod
    def from_json(cls, values: dict[str, Any]) -> WorldConfig:
        values = dict(values)
        values["start_date"] = date.fromisoformat(values["start_date"])
        return cls(**values)


@dataclass(frozen=True)
class WorldPaths:
    """Files of a world in one directory."""

    out_dir: Path
    ordering_db: Path
    truth: Path
    state: Path  # world.json: the config and the current as-of date

    @classmethod
    def under(cls, out_dir: Path | str) -> WorldPaths:
        out_dir = Path(out_dir)
        return cls(
            out_dir=out_dir,
            ordering_db=out_dir / "ordering.sqlite",
            truth=out_dir / "truth.json",
            state=out_dir / "world.json",
        )
