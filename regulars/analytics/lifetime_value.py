"""Lifetime value and churn risk per customer: BG/NBD purchase counts, Gamma-Gamma spend.

`fit_lifetime_value` takes an order history with three columns only (customer_id, order_date,
amount), so a chain can run it on its old POS export as well as on the platform's orders.

How it works. Both models (pymc-marketing's BetaGeoModel and GammaGammaModel) are fitted once,
by MAP, on the calibration period (orders up to `calibration_end`); the hold-out error compares
that fit's predictions with the orders of (calibration_end, observation_end]. Every customer is
then scored with the same parameters on the whole history up to `observation_end`: a second fit
would double the cost, which pytensor's compilation dominates, for parameters that barely move.

Refits. By default the calibration period ends `holdout_days` before the newest order, moved back
to the last day of a `refit_every_days` step (with 7: the Sunday ending an ISO week), so the
calibration data stays the same for that many days while new orders arrive. A run handed the
previous run (`previous_fit`) whose calibration digest, a hash of the calibration summary and the
fit's code, matches its own takes that run's parameters instead of fitting again: the MAP search
is deterministic, so they are the parameters a fit would find, and every guest is still scored on
today's history. At 100,000 guests the fit is 10 of the model's 12 s a day, nearly all of it
pytensor compiling the two models in a new process.

Conventions (those of pymc-marketing's `rfm_summary`, time unit one day):
- The unit is an order day: a guest's orders on one date (UTC) count as one purchase, amounts
  summed. `orders`, `frequency` and every predicted or actual order count are in order days.
- frequency = order days - 1 (repeat purchases), recency_days = last - first order date,
  tenure_days (BG/NBD's T) = observation_end - first order date.
- Gamma-Gamma is fitted on repeat customers' mean spend over their repeat order days, the first
  one left out. For a customer with no repeat order pymc-marketing's `expected_customer_spend`
  gives the individual mean a weight p*x / (p*x + q - 1) = 0, so the estimate is the population
  mean p*v / (q - 1): what a one-time guest is expected to spend is what anyone is.
- BG/NBD lets a guest drop out only right after a repeat purchase, so probability_alive is 1 for
  a guest with a single order, however long ago. That is the model (and the simulator) as
  published, not a bug; a one-time guest's risk shows in low expected orders instead.

Priors. pymc-marketing's default BG/NBD priors (Weibull(2, 10) on alpha, Weibull(2, 1) on r, a
Pareto-pooled a and b) are weakly informative on a scale where time runs in weeks or months. With
days as the unit alpha is about 15, far in the Weibull's tail, and the MAP lands visibly away from
maximum likelihood. Both models here use HalfFlat priors on every parameter: pymc's find_MAP
optimises without the log-transform's Jacobian, so with flat priors MAP is exactly the maximum
likelihood estimate of the published models, whatever the time unit or currency. Spend is
rescaled by the median repeat mean before the Gamma-Gamma fit so that the optimiser starts near
the answer (the fit is scale-equivariant: p and q do not change, v scales with the amounts).

Fits that cannot know. On a short history, or one where nobody drops out, the likelihood is flat
in the dropout parameters and the MLE runs off to a boundary: a and b huge, or a mean dropout of
~0, so every guest looks alive. `fit_warning` names the failed condition with its figures; such a
run has fit_is_reliable false and every per-guest output that rests on dropout is left null
(DROPOUT_DEPENDENT_COLUMNS) instead of printing the boundary's artefact as a probability. The
spend estimate stays: Gamma-Gamma is independent of dropout and, short of repeat customers, falls
back to the population mean, which is still a fair estimate. The hold-out figures stay too: they
are how a reader judges the fit.
"""

from __future__ import annotations

import hashlib
import logging
import time
import warnings
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd

REQUIRED_COLUMNS = ("customer_id", "order_date", "amount")
HORIZONS_DAYS = (30, 90, 365)
# Below this probability_alive, E[orders | alive] = expected orders / probability_alive is taken
# at this floor: both terms underflow together and their ratio stops meaning anything.
MIN_PROBABILITY_ALIVE = 1e-6
# When a BG/NBD fit is flagged (fit_warning). Both parameter bounds are unit-free (dropout is per
# purchase), so they hold whatever the time unit or chain. Fader, Hardie & Lee (2005) fit CDNOW
# with a = 0.79, b = 2.43: a + b = 3.2, mean dropout a / (a + b) = 0.25. Measured here on BG/NBD
# histories (bench_clv_fit's generator and the simulator, true a + b = 6.8, mean 0.12): 80 days
# or more of calibration, 57 to 3,500 repeat customers: a + b 1.6-21, mean dropout 0.08-0.18.
# 20-40 days of calibration: 5 fits of 8 ran off to a + b of 1,400 to 10^6 or a mean dropout
# of 10^-7 to 10^-5 (the other 3 stayed within the bounds). No dropout at all (the POS export):
# a + b 3.5 million, mean 10^-13. 2-40 repeat customers among 500: a + b 1,900 to 4 x 10^10.
# a + b is the dropout Beta's concentration: the spread of dropout between guests is
# sqrt(mean (1 - mean) / (a + b + 1)), under 0.016 above 1,000, every guest alike, which no
# customer base shows; the MLE goes there along a flat ridge of the likelihood and stops wherever
# the optimiser's tolerance does. A mean dropout under 0.001 is a thousand repeat orders before a
# guest leaves, years of daily visits: the fit has seen no one leave rather than measured it.
# The repeat customers' floor is the events-per-parameter rule of thumb (ten per parameter,
# Peduzzi et al. 1996): a, b and Gamma-Gamma's p, q, v learn from repeat customers alone. Their
# count, not their share: a chain of mostly one-off guests still learns dropout from its regulars,
# and a history too short for them shows in a and b.
MIN_REPEAT_CUSTOMERS = 50
MAX_DROPOUT_CONCENTRATION = 1_000.0
MIN_MEAN_DROPOUT = 0.001
# The MAP search box, on the log of each parameter, for a search that overflowed without one
# (_fit_map): e^-30 to e^30, 1e-13 to 1e13. An identified fit is far inside it (alpha, in days,
# is 1 to 10,000 for any chain that orders at all; the others are unit-free, 0.01 to 100).
LOG_PARAMETER_BOUND = 30.0
# Part of the calibration digest: a change to how _fit searches must not reuse older parameters.
FIT_REVISION = 2
# The outputs that a flagged fit leaves null: each is a function of the dropout parameters.
DROPOUT_DEPENDENT_COLUMNS = (
    "probability_alive",
    "expected_orders_30d",
    "expected_orders_90d",
    "expected_orders_365d",
    "expected_revenue_365d",
    "expected_revenue_at_risk_365d",
    "churn_risk_band",
)
_NOISY_LOGGERS = ("pymc", "pytensor", "pymc_marketing", "pymc_extras", "arviz")

OUTPUT_COLUMNS = (
    "customer_id",
    "first_order_date",
    "last_order_date",
    "orders",
    "frequency",
    "recency_days",
    "tenure_days",
    "average_order_value",
    "probability_alive",
    "expected_orders_30d",
    "expected_orders_90d",
    "expected_orders_365d",
    "expected_average_order_value",
    "expected_revenue_365d",
    "expected_revenue_at_risk_365d",
    "churn_risk_band",
    "holdout_orders_predicted",
    "holdout_orders_actual",
)


class NotEnoughHistory(ValueError):
    """The orders cannot support a fit: none by the cut-off, or no repeat order day to learn
    from. A chain without orders yet (or with a channel switched off) is in this state, not in
    error; callers that must produce a table use `unscored()`."""


@dataclass(frozen=True)
class LifetimeValueRun:
    """One fit: its settings, parameters and errors, for the model-run table and asset metadata.

    model_run_id is deterministic: a hash of the order days the models saw (customer, date,
    amount) and every setting, so rerunning on the same data gives the same id (and an
    incremental run table can upsert on it); `fitted_at` tells reruns apart.

    in_sample_mae: mean over calibration customers of |frequency - E[X(T)]|, the observed repeat
    order days in the calibration period against the model's unconditional expectation for a
    customer observed for the same T days (pymc-marketing's expected_purchases_new_customer).
    holdout_mae / holdout_correlation: per calibration customer, the order days predicted for
    (calibration_end, observation_end] by the calibration fit against the order days observed
    there (mean absolute error; Pearson correlation). The totals are the sums of the same pairs.
    fit_seconds is the wall time of the whole call: validation, both MAP fits including pytensor
    compilation (most of it) and the scoring.
    repeat_customers_fitted: calibration customers with a repeat order day, the only ones a, b
    and the spend model learn from. fit_warning: why the fit cannot say who is still a customer
    (`fit_warning()`), None when fit_is_reliable.
    calibration_digest: what the parameters were fitted on (the calibration summary, its end and
    the fit's code); parameters_reused: they were taken from the previous run, whose digest was
    the same, rather than fitted again (fit_seconds is then this run's scoring alone).
    """

    model_run_id: str
    fitted_at: datetime
    calibration_end: date
    observation_end: date
    holdout_days: int
    customers_fitted: int
    r: float
    alpha: float
    a: float
    b: float
    spend_p: float
    spend_q: float
    spend_v: float
    in_sample_mae: float
    holdout_mae: float
    holdout_correlation: float
    holdout_orders_predicted: float
    holdout_orders_actual: int
    fit_seconds: float
    repeat_customers_fitted: int
    fit_is_reliable: bool
    fit_warning: str | None
    calibration_digest: str
    parameters_reused: bool

    def as_row(self) -> dict:
        """A flat dict: one row of the model-run table, or a Dagster metadata mapping."""
        return asdict(self)


def fit_lifetime_value(
    orders: pd.DataFrame,
    *,
    observation_end: date | None = None,
    calibration_end: date | None = None,
    holdout_days: int = 90,
    high_risk_below: float = 0.3,
    low_risk_from: float = 0.7,
    refit_every_days: int = 1,
    previous_fit: Mapping[str, Any] | None = None,
) -> tuple[pd.DataFrame, LifetimeValueRun]:
    """Fit BG/NBD and Gamma-Gamma on `orders` and score every customer who ordered by
    observation_end.

    orders needs only customer_id, order_date (date, timestamp or ISO 8601 text; zoned
    timestamps are taken in UTC, like the marts) and amount (>= 0); other columns are ignored.
    observation_end defaults to the last order date (later orders are ignored);
    calibration_end defaults to `default_calibration_end` (holdout_days before observation_end,
    back to the end of a refit_every_days step); when given it wins: holdout_days becomes the
    days between the two. previous_fit is the previous run's `as_row()`: its parameters are
    reused when its calibration_digest is this run's. Returns the per-customer frame
    (OUTPUT_COLUMNS)
    and the run. Revenue is undiscounted. churn_risk_band is 'high' below high_risk_below,
    'low' from low_risk_from, 'medium' between (on probability_alive). When the run is not
    fit_is_reliable, DROPOUT_DEPENDENT_COLUMNS are null.
    """
    started = time.perf_counter()
    if not 0 <= high_risk_below <= low_risk_from <= 1:
        raise ValueError(
            "need 0 <= high_risk_below <= low_risk_from <= 1, got "
            f"high_risk_below={high_risk_below}, low_risk_from={low_risk_from}"
        )
    daily = order_days(orders)
    if daily.empty:
        raise NotEnoughHistory("no orders to fit")
    observation_end = daily["day"].max().date() if observation_end is None else observation_end
    daily = daily[daily["day"] <= pd.Timestamp(observation_end)]
    if daily.empty:
        raise NotEnoughHistory(f"no order on or before observation_end {observation_end}")
    if calibration_end is None:
        calibration_end = default_calibration_end(
            daily["day"].min().date(), observation_end, holdout_days, refit_every_days
        )
    holdout_days = (observation_end - calibration_end).days
    if holdout_days < 0:
        raise ValueError(
            f"calibration_end {calibration_end} is after observation_end {observation_end}"
        )

    calibration = rfm(daily, calibration_end)
    if calibration.empty:
        raise NotEnoughHistory(
            f"no order on or before calibration_end {calibration_end} (first order: "
            f"{daily['day'].min().date()}): move calibration_end later"
        )
    repeat_customers = int((calibration["frequency"] > 0).sum())
    if repeat_customers == 0:
        raise NotEnoughHistory(
            f"no customer has a repeat order day by calibration_end {calibration_end}: BG/NBD and "
            "Gamma-Gamma learn from repeat purchases; move calibration_end later or import a "
            "longer order history"
        )

    digest = _calibration_digest(calibration, calibration_end)
    reused = previous_fit is not None and previous_fit.get("calibration_digest") == digest
    with _quiet():
        fitted = _Fitted.from_parameters(previous_fit, calibration) if reused else _fit(calibration)
        holdout_predicted = fitted.expected_orders(calibration, holdout_days)
        in_sample_expected = fitted.expected_orders_new_customer(calibration)
        customers = _score(daily, observation_end, fitted, high_risk_below, low_risk_from)

    warning = fit_warning(fitted.parameters["a"], fitted.parameters["b"], repeat_customers)
    if warning is not None:
        nulls = {column: np.nan for column in DROPOUT_DEPENDENT_COLUMNS}
        # The band stays typed as text: an untyped all-null column reaches DuckDB as an integer.
        customers = customers.assign(**nulls).astype({"churn_risk_band": "string"})

    in_holdout = daily[daily["day"] > pd.Timestamp(calibration_end)]
    holdout_actual = (
        in_holdout.groupby("customer_id").size().reindex(calibration.index, fill_value=0)
    ).to_numpy()
    customers["holdout_orders_predicted"] = (
        pd.Series(holdout_predicted, index=calibration.index)
        .reindex(customers["customer_id"])
        .to_numpy()
    )
    # Null (not 0) for customers whose first order came after calibration_end: not evaluated.
    customers["holdout_orders_actual"] = pd.array(
        pd.Series(holdout_actual, index=calibration.index).reindex(customers["customer_id"]),
        dtype="Int64",
    )

    run = LifetimeValueRun(
        model_run_id=_run_id(
            daily, observation_end, calibration_end, high_risk_below, low_risk_from, digest
        ),
        fitted_at=datetime.now(UTC),
        calibration_end=calibration_end,
        observation_end=observation_end,
        holdout_days=holdout_days,
        customers_fitted=len(calibration),
        **fitted.parameters,
        in_sample_mae=float(np.mean(np.abs(calibration["frequency"] - in_sample_expected))),
        holdout_mae=float(np.mean(np.abs(holdout_predicted - holdout_actual))),
        holdout_correlation=_pearson(holdout_predicted, holdout_actual),
        holdout_orders_predicted=float(holdout_predicted.sum()),
        holdout_orders_actual=int(holdout_actual.sum()),
        fit_seconds=time.perf_counter() - started,
        repeat_customers_fitted=repeat_customers,
        fit_is_reliable=warning is None,
        fit_warning=warning,
        calibration_digest=digest,
        parameters_reused=reused,
    )
    return customers[list(OUTPUT_COLUMNS)], run


def default_calibration_end(
    first_day: date, observation_end: date, holdout_days: int, refit_every_days: int = 1
) -> date:
    """holdout_days before observation_end, then back to the last day of a refit_every_days step:
    the latest day whose `toordinal()` is a multiple of it (with 7 a Sunday, as day 1 was a
    Monday), so that a week of new days shares one calibration period.

    The hold-out is at most a third of the history, the step included: a young chain still gets
    a fit on two thirds of its days, and its calibration end moves with every new day until the
    step fits in that third.
    """
    if holdout_days < 0:
        raise ValueError(f"holdout_days must be >= 0, got {holdout_days}")
    if refit_every_days < 1:
        raise ValueError(f"refit_every_days must be >= 1, got {refit_every_days}")
    longest_holdout = (observation_end - first_day).days // 3
    end = observation_end - timedelta(days=min(holdout_days, longest_holdout))
    stepped = end - timedelta(days=end.toordinal() % refit_every_days)
    return stepped if (observation_end - stepped).days <= longest_holdout else end


def fit_warning(a: float, b: float, repeat_customers: int) -> str | None:
    """Every reason a BG/NBD fit cannot say who is still a customer, with its figures, joined by
    '; '; None when there is none. Bounds and why: MIN_REPEAT_CUSTOMERS and what follows it."""
    reasons = []
    if repeat_customers < MIN_REPEAT_CUSTOMERS:
        reasons.append(
            f"too little repeat history: {repeat_customers} guests with a repeat order day by "
            f"calibration_end, fewer than {MIN_REPEAT_CUSTOMERS}"
        )
    if a + b > MAX_DROPOUT_CONCENTRATION:
        reasons.append(
            f"dropout not identified: a + b = {a + b:,.4g} (a = {a:,.4g}, b = {b:,.4g}) is above "
            f"{MAX_DROPOUT_CONCENTRATION:,.0f}, as if every guest dropped out alike"
        )
    mean_dropout = a / (a + b)
    if mean_dropout < MIN_MEAN_DROPOUT:
        reasons.append(
            f"no dropout seen: mean dropout a / (a + b) = {mean_dropout:.3g} is below "
            f"{MIN_MEAN_DROPOUT}, as if no guest ever left"
        )
    return "; ".join(reasons) or None


# pandas dtypes of the scored frame and of each run field, for a table with no fit behind it.
_SCORED_DTYPES = {
    "first_order_date": "datetime64[ns]",
    "last_order_date": "datetime64[ns]",
    "orders": "int64",
    "frequency": "int64",
    "recency_days": "int64",
    "tenure_days": "int64",
    "churn_risk_band": "string",
    "holdout_orders_actual": "Int64",
}
_RUN_DTYPES = {
    "model_run_id": "string",
    "fitted_at": "datetime64[ns, UTC]",
    "calibration_end": "datetime64[ns]",
    "observation_end": "datetime64[ns]",
    "holdout_days": "int64",
    "customers_fitted": "int64",
    "holdout_orders_actual": "int64",
    "repeat_customers_fitted": "int64",
    "fit_is_reliable": "boolean",
    "fit_warning": "string",
    "calibration_digest": "string",
    "parameters_reused": "boolean",
}


def unscored(customer_id_dtype: str = "int64", run_prefix: str | None = None) -> pd.DataFrame:
    """The scored frame with no rows, each column typed as a fit gives it (every other one is a
    float): what a table of scores holds while there is nothing to fit. `run_prefix` adds the
    run's fields as columns under that prefix, as the dbt model stores them."""
    columns = {"customer_id": customer_id_dtype} | {
        name: _SCORED_DTYPES.get(name, "float64") for name in OUTPUT_COLUMNS[1:]
    }
    if run_prefix is not None:
        columns |= {
            f"{run_prefix}{name}": _RUN_DTYPES.get(name, "float64")
            for name in LifetimeValueRun.__dataclass_fields__
        }
    return pd.DataFrame({name: pd.Series(dtype=dtype) for name, dtype in columns.items()})


def order_days(orders: pd.DataFrame) -> pd.DataFrame:
    """customer_id, day (UTC midnight), amount: one row per customer and order date, validated.

    Errors name the column and what to fix, since a chain's export is the usual input.
    """
    missing = [c for c in REQUIRED_COLUMNS if c not in orders.columns]
    if missing:
        raise ValueError(
            f"orders is missing column(s) {missing}: it needs customer_id, order_date and "
            f"amount (got {list(orders.columns)})"
        )
    for column in REQUIRED_COLUMNS:
        empty = orders[column].isna()
        if empty.any():
            raise ValueError(
                f"{column} is empty in {int(empty.sum())} row(s) (first at row "
                f"{orders.index[empty.argmax()]!r}): drop or fill them before fitting"
            )

    raw_dates = orders["order_date"]
    dates = pd.to_datetime(raw_dates, errors="coerce", utc=True, format="ISO8601")
    unparsed = dates.isna()
    if unparsed.any():
        examples = raw_dates[unparsed].astype(str).unique()[:3].tolist()
        raise ValueError(
            f"order_date has {int(unparsed.sum())} value(s) that are not a date, a timestamp or "
            f"ISO 8601 text, e.g. {examples}: convert order_date before fitting"
        )
    amounts = pd.to_numeric(orders["amount"], errors="coerce").astype(float)
    not_numbers = amounts.isna() | ~np.isfinite(amounts)
    if not_numbers.any():
        examples = orders["amount"][not_numbers].astype(str).unique()[:3].tolist()
        raise ValueError(
            f"amount has {int(not_numbers.sum())} value(s) that are not finite numbers, "
            f"e.g. {examples}"
        )
    negative = amounts < 0
    if negative.any():
        raise ValueError(
            f"amount is negative in {int(negative.sum())} row(s) (e.g. customer_id "
            f"{orders['customer_id'][negative].iloc[0]!r}): net refunds into their order or "
            "drop them; spend models need amounts >= 0"
        )
    frame = pd.DataFrame(
        {
            "customer_id": orders["customer_id"].to_numpy(),
            "day": dates.dt.tz_localize(None).dt.normalize().astype("datetime64[us]").to_numpy(),
            "amount": amounts.to_numpy(),
        }
    )
    return (
        frame.groupby(["customer_id", "day"], sort=True, as_index=False)["amount"]
        .sum()
        .reset_index(drop=True)
    )


def rfm(daily: pd.DataFrame, end: date) -> pd.DataFrame:
    """Per customer with an order day by `end`: first/last day, orders, frequency, recency, T,
    total and repeat-mean spend (0 without repeats), indexed by customer_id, sorted."""
    seen = daily[daily["day"] <= pd.Timestamp(end)]
    by_customer = seen.groupby("customer_id", sort=True)
    summary = by_customer.agg(
        first_day=("day", "min"),
        last_day=("day", "max"),
        orders=("day", "size"),
        total=("amount", "sum"),
        first_amount=("amount", "first"),  # order_days() sorts by day within customer
    )
    summary["frequency"] = summary["orders"] - 1
    summary["recency"] = (summary["last_day"] - summary["first_day"]).dt.days.astype(float)
    summary["T"] = (pd.Timestamp(end) - summary["first_day"]).dt.days.astype(float)
    repeats = summary["frequency"].clip(lower=1)
    summary["monetary_value"] = np.where(
        summary["frequency"] > 0, (summary["total"] - summary["first_amount"]) / repeats, 0.0
    )
    return summary


@dataclass(frozen=True)
class _Fitted:
    """The two fitted pymc-marketing models and the spend scale the Gamma-Gamma saw."""

    purchases: object  # BetaGeoModel
    spend: object  # GammaGammaModel
    spend_scale: float
    parameters: dict

    @classmethod
    def from_parameters(cls, parameters: Mapping[str, Any], calibration: pd.DataFrame) -> _Fitted:
        """The models a fit on `calibration` found, rebuilt from their parameters (a run's row)
        without searching or compiling: every prediction is then what that fit's would be.
        The spend scale is a power of two (_spend_scale), so v / scale is the fitted v exactly."""
        import arviz as az

        purchases, spend, spend_scale, repeat = _models(calibration)
        bg = {k: float(parameters[k]) for k in ("r", "alpha", "a", "b")}
        gg = {
            "p": float(parameters["spend_p"]),
            "q": float(parameters["spend_q"]),
            "v": float(parameters["spend_v"]) / spend_scale,
        }
        for model, data, values in (
            (purchases, _purchase_frame(calibration, spend_scale), bg),
            (spend, _spend_frame(repeat, spend_scale), gg),
        ):
            model.build_model(data)
            # The (chain, draw) = (1, 1) posterior a MAP fit leaves.
            model.fit_result = az.from_dict(
                posterior={k: np.array([[v]], dtype="float64") for k, v in values.items()}
            )
        return cls(purchases, spend, spend_scale, _parameters(bg, gg, spend_scale))

    def _frame(self, summary: pd.DataFrame) -> pd.DataFrame:
        return _model_frame(summary, self.spend_scale)

    def expected_orders(self, summary: pd.DataFrame, days: int) -> np.ndarray:
        if days == 0:
            return np.zeros(len(summary))
        data = self._frame(summary)
        return _values(self.purchases.expected_purchases(data=data, future_t=days), summary)

    def expected_orders_new_customer(self, summary: pd.DataFrame) -> np.ndarray:
        data = self._frame(summary)
        return _values(
            self.purchases.expected_purchases_new_customer(data=data, t=data["T"]), summary
        )

    def probability_alive(self, summary: pd.DataFrame) -> np.ndarray:
        data = self._frame(summary)
        return _values(self.purchases.expected_probability_alive(data=data), summary)

    def expected_spend(self, summary: pd.DataFrame) -> np.ndarray:
        data = self._frame(summary)
        spend = _values(self.spend.expected_customer_spend(data=data), summary)
        return spend * self.spend_scale


def _model_frame(summary: pd.DataFrame, spend_scale: float) -> pd.DataFrame:
    """The summary in pymc-marketing's column names, spend divided by `spend_scale`."""
    return pd.DataFrame(
        {
            "customer_id": summary.index.to_numpy(),
            "frequency": summary["frequency"].to_numpy(dtype=float),
            "recency": summary["recency"].to_numpy(),
            "T": summary["T"].to_numpy(),
            "monetary_value": summary["monetary_value"].to_numpy() / spend_scale,
        }
    )


def _values(result, summary: pd.DataFrame) -> np.ndarray:
    """A pymc-marketing per-customer result (chain, draw, customer_id) as an array in the
    summary's customer order: the library combines by coordinates, which may reorder."""
    series = result.mean(("chain", "draw")).to_series()
    return series.reindex(summary.index).to_numpy(dtype=float)


def _models(calibration: pd.DataFrame):
    """BG/NBD and Gamma-Gamma, unfitted, with the spend scale and the repeat customers the spend
    model learns from."""
    from pymc_extras.prior import Prior
    from pymc_marketing.clv import BetaGeoModel, GammaGammaModel

    purchases = BetaGeoModel(model_config={n: Prior("HalfFlat") for n in ("r", "alpha", "a", "b")})
    spend = GammaGammaModel(model_config={n: Prior("HalfFlat") for n in ("p", "q", "v")})
    repeat = calibration[(calibration["frequency"] > 0) & (calibration["monetary_value"] > 0)]
    if repeat.empty:
        raise ValueError(
            "every repeat customer's repeat orders have amount 0 by calibration_end: "
            "Gamma-Gamma needs positive amounts"
        )
    return purchases, spend, _spend_scale(repeat), repeat


def _spend_scale(repeat: pd.DataFrame) -> float:
    """The power of two nearest the median repeat mean: near enough for the optimiser to start
    close to the answer, and dividing or multiplying by it is exact in floating point."""
    return float(2.0 ** np.round(np.log2(repeat["monetary_value"].median())))


def _purchase_frame(calibration: pd.DataFrame, spend_scale: float) -> pd.DataFrame:
    return _model_frame(calibration, spend_scale)[["customer_id", "frequency", "recency", "T"]]


def _spend_frame(repeat: pd.DataFrame, spend_scale: float) -> pd.DataFrame:
    return _model_frame(repeat, spend_scale)[["customer_id", "frequency", "monetary_value"]]


def _parameters(bg: dict, gg: dict, spend_scale: float) -> dict:
    return {**bg, "spend_p": gg["p"], "spend_q": gg["q"], "spend_v": gg["v"] * spend_scale}


def _fit(calibration: pd.DataFrame) -> _Fitted:
    purchases, spend, spend_scale, repeat = _models(calibration)
    _fit_map(purchases, _purchase_frame(calibration, spend_scale))
    _fit_map(spend, _spend_frame(repeat, spend_scale))
    bg = {k: float(purchases.fit_result[k].values.item()) for k in ("r", "alpha", "a", "b")}
    gg = {k: float(spend.fit_result[k].values.item()) for k in ("p", "q", "v")}
    parameters = _parameters(bg, gg, spend_scale)
    bad = [k for k, v in parameters.items() if not (np.isfinite(v) and v > 0)]
    if bad:
        raise RuntimeError(f"the MAP fit did not converge: {bad} not finite and positive")
    if parameters["spend_q"] <= 1:
        raise RuntimeError(
            f"Gamma-Gamma q = {parameters['spend_q']:.3f} <= 1: the population mean spend is "
            "unbounded; spend is too heterogeneous (or too few repeat customers) to fit"
        )
    return _Fitted(purchases, spend, spend_scale, parameters)


def _fit_map(model, data: pd.DataFrame) -> None:
    """find_MAP (L-BFGS-B); when that ends on a non-finite point, again inside the box.

    pymc optimises the log of each HalfFlat parameter. Where the likelihood is flat in the
    dropout parameters the search runs along a ridge towards a or b = 0 or infinity, and the
    unbounded L-BFGS-B can step so far that the log-likelihood overflows: it then stops there
    and every parameter comes back NaN. Seen on a year of jafgen orders with a 60-day hold-out,
    in 9 of 15 orders of listing the same guests. The box (LOG_PARAMETER_BOUND) keeps the search
    where the likelihood is finite; every such fit measured ended where fit_warning flags it. The
    box is the fallback, not the first try, because it also changes the path of fits that do
    converge: on a history with no dropout at all (the simulator's POS export) it stops at
    another point of the same ridge, where the hold-out prediction overflows.
    """
    model.build_model(data)
    model.fit(method="map", progressbar=False)
    if _finite(model.fit_result):
        return
    box = [(-LOG_PARAMETER_BOUND, LOG_PARAMETER_BOUND)] * len(model.model.continuous_value_vars)
    model.fit(method="map", progressbar=False, bounds=box)


def _finite(fit_result) -> bool:
    return all(np.isfinite(values).all() for values in fit_result.data_vars.values())


def _score(
    daily: pd.DataFrame,
    observation_end: date,
    fitted: _Fitted,
    high_risk_below: float,
    low_risk_from: float,
) -> pd.DataFrame:
    """The live predictions: every customer's whole history, the calibration fit's parameters."""
    summary = rfm(daily, observation_end)
    alive = fitted.probability_alive(summary)
    expected = {t: fitted.expected_orders(summary, t) for t in HORIZONS_DAYS}
    spend = fitted.expected_spend(summary)
    # E[orders | history] = P(alive) x E[orders | alive], so the orders a guest would still place
    # if alive are the ratio; revenue at risk is that spend weighted by the chance it is lost.
    orders_if_alive = expected[365] / np.maximum(alive, MIN_PROBABILITY_ALIVE)
    band = np.where(
        alive < high_risk_below, "high", np.where(alive >= low_risk_from, "low", "medium")
    )
    return pd.DataFrame(
        {
            "customer_id": summary.index.to_numpy(),
            "first_order_date": summary["first_day"].dt.date.to_numpy(),
            "last_order_date": summary["last_day"].dt.date.to_numpy(),
            "orders": summary["orders"].to_numpy(dtype=np.int64),
            "frequency": summary["frequency"].to_numpy(dtype=np.int64),
            "recency_days": summary["recency"].to_numpy(dtype=np.int64),
            "tenure_days": summary["T"].to_numpy(dtype=np.int64),
            "average_order_value": (summary["total"] / summary["orders"]).to_numpy(),
            "probability_alive": alive,
            "expected_orders_30d": expected[30],
            "expected_orders_90d": expected[90],
            "expected_orders_365d": expected[365],
            "expected_average_order_value": spend,
            "expected_revenue_365d": expected[365] * spend,
            "expected_revenue_at_risk_365d": (1 - alive) * orders_if_alive * spend,
            "churn_risk_band": band,
        }
    )


def _pearson(x: np.ndarray, y: np.ndarray) -> float:
    """Pearson correlation, NaN when either side is constant (e.g. an empty hold-out)."""
    if len(x) < 2 or np.std(x) == 0 or np.std(y) == 0:
        return float("nan")
    return float(np.corrcoef(x, y)[0, 1])


def _run_id(
    daily: pd.DataFrame,
    observation_end: date,
    calibration_end: date,
    high_risk_below: float,
    low_risk_from: float,
    calibration_digest: str,
) -> str:
    digest = hashlib.sha256()
    digest.update(pd.util.hash_pandas_object(daily, index=False).to_numpy().tobytes())
    settings = (observation_end, calibration_end, high_risk_below, low_risk_from)
    digest.update(repr((settings, calibration_digest)).encode())
    return digest.hexdigest()[:32]


def _calibration_digest(calibration: pd.DataFrame, calibration_end: date) -> str:
    """What a fit's parameters depend on: every calibration customer's summary (rfm), the
    calibration end, pymc-marketing's version and FIT_REVISION."""
    import pymc_marketing

    columns = ["frequency", "recency", "T", "monetary_value"]
    digest = hashlib.sha256()
    digest.update(pd.util.hash_pandas_object(calibration[columns], index=True).to_numpy().tobytes())
    digest.update(repr((calibration_end, pymc_marketing.__version__, FIT_REVISION)).encode())
    return digest.hexdigest()[:32]


@contextmanager
def _quiet() -> Iterator[None]:
    """pymc's and pytensor's warnings and log lines, which a dbt run would print, held back."""
    loggers = [logging.getLogger(name) for name in _NOISY_LOGGERS]
    levels = [logger.level for logger in loggers]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for logger in loggers:
            logger.setLevel(logging.ERROR)
        try:
            yield
        finally:
            for logger, level in zip(loggers, levels, strict=True):
                logger.setLevel(level)
