"""How the lifetime-value fit's cost grows with customers: 10,000 against 100,000.

    .venv/bin/python bench/bench_clv_fit.py                      # 10,000 and 100,000 customers
    .venv/bin/python bench/bench_clv_fit.py --sizes 5000 50000   # other sizes

Order histories are drawn straight from the BG/NBD and Gamma-Gamma generative processes with
numpy (the simulator's parameters, first orders spread over a year, a year observed), not built
by the simulator: a 100,000-guest world would take longer than the fit it feeds. For each size,
in one process: the whole `fit_lifetime_value` call (both MAP fits, hold-out, scoring), then the
BG/NBD fit again by hand to split it into pytensor compilation and optimisation: one logp +
gradient evaluation is timed on its own, the optimiser's evaluation count comes from find_MAP,
and compilation is the rest. An untimed 1,000-customer fit first pays the process's one-off
costs (imports, first compilation); each size then builds fresh models, so graph compilation is
paid each time (C modules come from pytensor's on-disk cache after the first run on a machine).
"""

from __future__ import annotations

import argparse
import logging
import time
import warnings
from datetime import date, timedelta

import numpy as np
import pandas as pd

from regulars.analytics.lifetime_value import fit_lifetime_value, rfm
from simulator.config import WorldConfig

START = date(2024, 1, 1)


def bgnbd_orders(customers: int, days: int, seed: int) -> pd.DataFrame:
    """Orders of `customers` guests whose first order falls uniformly in [0, days)."""
    c = WorldConfig()
    rng = np.random.default_rng(seed)
    rate = rng.gamma(c.r, 1 / c.alpha, customers)
    dropout = rng.beta(c.a, c.b, customers)
    nu = rng.gamma(c.spend_q, 1 / c.spend_gamma, customers)
    idx = np.arange(customers)
    t = rng.uniform(0, days, customers)
    who, when = [idx], [t]
    while idx.size:
        t = t + rng.exponential(1 / rate[idx])
        inside = t < days
        idx, t = idx[inside], t[inside]
        who.append(idx)
        when.append(t)
        stays = rng.random(idx.size) >= dropout[idx]
        idx, t = idx[stays], t[stays]
    guest, day = np.concatenate(who), np.floor(np.concatenate(when)).astype(np.int64)
    return pd.DataFrame(
        {
            "customer_id": guest,
            "order_date": pd.Timestamp(START) + pd.to_timedelta(day, unit="D"),
            "amount": rng.gamma(c.spend_p, 1 / nu[guest]),
        }
    )


def split_bgnbd_fit(orders: pd.DataFrame, calibration_end: date) -> dict[str, float]:
    """The BG/NBD MAP fit timed in parts: build, compile + optimise, evaluation count and cost."""
    import pymc as pm
    from pymc_extras.prior import Prior
    from pymc_marketing.clv import BetaGeoModel

    from regulars.analytics.lifetime_value import order_days

    summary = rfm(order_days(orders), calibration_end)
    data = pd.DataFrame(
        {
            "customer_id": summary.index.to_numpy(),
            "frequency": summary["frequency"].to_numpy(dtype=float),
            "recency": summary["recency"].to_numpy(),
            "T": summary["T"].to_numpy(),
        }
    )
    model = BetaGeoModel(model_config={k: Prior("HalfFlat") for k in ("r", "alpha", "a", "b")})
    started = time.perf_counter()
    model.build_model(data)
    build_s = time.perf_counter() - started

    started = time.perf_counter()
    _, result = pm.find_MAP(model=model.model, progressbar=False, return_raw=True)
    map_s = time.perf_counter() - started

    point = model.model.initial_point()
    logp = model.model.compile_logp(jacobian=False)
    dlogp = model.model.compile_dlogp(jacobian=False)
    logp(point), dlogp(point)
    repeats = 20
    started = time.perf_counter()
    for _ in range(repeats):
        logp(point), dlogp(point)
    evaluation_s = (time.perf_counter() - started) / repeats
    optimise_s = result.nfev * evaluation_s
    return {
        "build": build_s,
        "compile": map_s - optimise_s,
        "optimise": optimise_s,
        "evaluations": result.nfev,
        "evaluation": evaluation_s,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs=2, default=[10_000, 100_000])
    parser.add_argument("--days", type=int, default=365)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    logging.getLogger("pymc").setLevel(logging.ERROR)
    warnings.simplefilter("ignore")

    # Importing pymc and the first compilation in a process cost seconds that no size should own.
    fit_lifetime_value(bgnbd_orders(1_000, args.days, args.seed))
    figures = {}
    for customers in args.sizes:
        orders = bgnbd_orders(customers, args.days, args.seed)
        print(f"{customers:,} customers, {len(orders):,} orders over {args.days} days ...")
        frame, run = fit_lifetime_value(orders)
        parts = split_bgnbd_fit(orders, run.observation_end - timedelta(days=run.holdout_days))
        figures[customers] = (run.fit_seconds, parts)
        print(
            f"  whole call            {run.fit_seconds:>8.1f} s  "
            f"(r={run.r:.3f} alpha={run.alpha:.2f} a={run.a:.3f} b={run.b:.2f}, "
            f"hold-out r={run.holdout_correlation:.3f}, {len(frame):,} scored)"
        )
        print(f"  BG/NBD build          {parts['build']:>8.2f} s")
        print(f"  BG/NBD compile        {parts['compile']:>8.2f} s")
        print(
            f"  BG/NBD optimise       {parts['optimise']:>8.2f} s  "
            f"({parts['evaluations']} logp+gradient evaluations of "
            f"{parts['evaluation'] * 1000:.1f} ms)"
        )

    small, large = args.sizes
    ratio = figures[large][0] / figures[small][0]
    eval_ratio = figures[large][1]["evaluation"] / figures[small][1]["evaluation"]
    print(f"whole call {large:,} / {small:,}   {ratio:>8.2f}")
    print(f"one evaluation {large:,} / {small:,} {eval_ratio:>6.2f}")
    print(
        f"{large / small:g}x the customers costs {ratio:.1f}x the time of the whole call; one "
        f"likelihood evaluation costs {eval_ratio:.1f}x, the compilation much less."
    )


if __name__ == "__main__":
    main()
