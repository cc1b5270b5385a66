"""A/B tests on the app and website, with planted outcomes that analyses must recover.

Units are assigned by a keyed hash of the unit (the device's anonymousId, or the guest's userId),
so a unit's variation never changes. A unit is exposed in its first session in the experiment's
window: that session carries a Segment `Experiment Viewed` track call. Three designs:

- *Menu photo cards*: a planted +15% relative lift of the **add rate** (Product Added events per
  Product Viewed event in the exposure session). Orders are fixed by the ordering timeline, so
  the lift is planted on this funnel metric: every product view in a treated unit's sessions
  during the window leads to an add with probability 0.55 x 1.15 instead of 0.55.
- *Home banner copy*: three variations, no effect on anything (a null result).
- *Reorder shortcut*: assigned 50/50, but a tracking bug loses the Experiment Viewed call of 15%
  of the treated units: a sample-ratio mismatch.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

import numpy as np

from simulator.model.funnel import P_ADD
from simulator.model.rand import Stream, counter_uniform
from simulator.model.sessions import Sessions


@dataclass(frozen=True)
class Experiment:
    experiment_id: str
    name: str
    unit: str  # "anonymousId" (device) or "userId" (signed-in guest)
    variation_ids: tuple[str, ...]
    variation_names: tuple[str, ...]
    weights: tuple[float, ...]
    first_day: int  # window, days since start_date
    end_day: int | None  # exclusive; None while it runs
    add_rate_lift: tuple[float, ...]  # planted relative lift of the add rate, per variation
    exposure_loss: tuple[float, ...]  # share of exposures whose event is lost, per variation
    hypothesis: str


EXPERIMENTS = (
    Experiment(
        "30101",
        "Menu photo cards",
        "anonymousId",
        ("3010100", "3010101"),
        ("control", "photo_cards"),
        (0.5, 0.5),
        7,
        97,
        (0.0, 0.15),
        (0.0, 0.0),
        "photo cards on the menu make guests add more dishes per dish viewed",
    ),
    Experiment(
        "30102",
        "Home banner copy",
        "userId",
        ("3010200", "3010201", "3010202"),
        ("control", "free_delivery", "new_menu"),
        (1 / 3, 1 / 3, 1 / 3),
        21,
        111,
        (0.0, 0.0, 0.0),
        (0.0, 0.0, 0.0),
        "the banner copy changes nothing (planted null)",
    ),
    Experiment(
        "30103",
        "Reorder shortcut",
        "anonymousId",
        ("3010300", "3010301"),
        ("control", "shortcut"),
        (0.5, 0.5),
        0,
        None,
        (0.0, 0.0),
        (0.0, 0.15),
        "a bug drops the exposure event of 15% of treated units (planted sample-ratio mismatch)",
    ),
)
METRIC = (
    "add rate: count(Product Added) / count(Product Viewed) over the exposure sessions of a "
    "variation; the exposure session is the session (same anonymousId, events less than 30 "
    "minutes apart) holding the unit's first Experiment Viewed of the experiment; events "
    "deduplicated by messageId"
)


def unit_keys(exp: Experiment, s: Sessions) -> np.ndarray:
    return s.device if exp.unit == "anonymousId" else s.cust


def assign(seed: int, index: int, exp: Experiment, unit: np.ndarray) -> np.ndarray:
    """Each unit's variation: a keyed hash of the unit, fixed for the experiment's life."""
    u = counter_uniform(seed, Stream.WEB_EXPERIMENTS, unit, index, lane=0)
    cum = np.cumsum(exp.weights) / np.sum(exp.weights)
    return np.minimum(np.searchsorted(cum, u, side="right"), len(exp.weights) - 1)


def in_window(exp: Experiment, day: np.ndarray) -> np.ndarray:
    end = np.iinfo(np.int64).max if exp.end_day is None else exp.end_day
    return (day >= exp.first_day) & (day < end)


def add_rates(seed: int, s: Sessions) -> np.ndarray:
    """Per session, the chance that a product view leads to an add (moved by treatments)."""
    p = np.full(len(s), P_ADD)
    for index, exp in enumerate(EXPERIMENTS):
        lift = np.asarray(exp.add_rate_lift)
        if not lift.any() or exp.unit != "anonymousId":
            continue
        inside = in_window(exp, s.day)
        variant = assign(seed, index, exp, unit_keys(exp, s))
        p = np.where(inside, p * (1 + lift[variant]), p)
    return p


@dataclass(frozen=True)
class Exposures:
    sess: np.ndarray  # session row holding the Experiment Viewed call
    exp: np.ndarray
    variant: np.ndarray
    logged: np.ndarray  # False when the call is lost (the planted bug)


def exposures(seed: int, s: Sessions, start_us: np.ndarray, known: np.ndarray) -> Exposures:
    """Each unit's first session in each experiment's window (userId experiments: the first
    session in which the guest is already signed in)."""
    parts = []
    for index, exp in enumerate(EXPERIMENTS):
        eligible = in_window(exp, s.day)
        if exp.unit == "userId":
            eligible &= known
        rows = np.flatnonzero(eligible)
        unit = unit_keys(exp, s)[rows]
        order = np.lexsort((start_us[rows], unit))
        # First session per unit; an experiment whose window has not opened yet has no rows.
        first = np.ones(rows.size, dtype=bool)
        first[1:] = unit[order][1:] != unit[order][:-1]
        rows = rows[order[first]]
        unit = unit_keys(exp, s)[rows]
        variant = assign(seed, index, exp, unit)
        lost = counter_uniform(seed, Stream.WEB_EXPERIMENTS, unit, index, lane=1)
        logged = lost >= np.asarray(exp.exposure_loss)[variant]
        parts.append((rows, np.full(rows.size, index), variant, logged))
    sess, exp, variant, logged = (np.concatenate(p) for p in zip(*parts, strict=True))
    return Exposures(sess=sess, exp=exp, variant=variant, logged=logged)


def experiments_truth(
    start_date: date,
    ex: Exposures,
    exposed_by: np.ndarray,
    views: np.ndarray,
    adds: np.ndarray,
) -> list[dict[str, Any]]:
    """Design, planted effect, metric and realised counts per experiment. `exposed_by` marks the
    exposures that happened by the as-of instant; views/adds count the exposure session's
    Product Viewed / Product Added events."""
    out = []
    for index, exp in enumerate(EXPERIMENTS):
        variations = []
        for v, (vid, vname) in enumerate(zip(exp.variation_ids, exp.variation_names, strict=True)):
            m = (ex.exp == index) & (ex.variant == v) & exposed_by
            logged = m & ex.logged
            variations.append(
                {
                    "variation_id": vid,
                    "variation_name": vname,
                    "weight": round(exp.weights[v], 6),
                    "units_assigned_exposed": int(m.sum()),
                    "exposures_logged": int(logged.sum()),
                    "planted_add_rate": round(P_ADD * (1 + exp.add_rate_lift[v]), 6),
                    "exposure_session_views": int(views[logged].sum()),
                    "exposure_session_adds": int(adds[logged].sum()),
                }
            )
        end = None if exp.end_day is None else start_date + timedelta(days=exp.end_day - 1)
        out.append(
            {
                "experiment_id": exp.experiment_id,
                "experiment_name": exp.name,
                "unit": exp.unit,
                "first_day": (start_date + timedelta(days=exp.first_day)).isoformat(),
                "last_day": None if end is None else end.isoformat(),
                "hypothesis": exp.hypothesis,
                "metric": METRIC,
                "planted": {
                    "add_rate_relative_lift": dict(
                        zip(exp.variation_names, exp.add_rate_lift, strict=True)
                    ),
                    "exposure_event_loss": dict(
                        zip(exp.variation_names, exp.exposure_loss, strict=True)
                    ),
                },
                "variations": variations,
            }
        )
    return out
