"""A/B test readouts from unit-level exposures: lift against control with a 95% interval, p-value,
CUPED-adjusted lift, and a sample-ratio-mismatch test that marks a readout untrustworthy.

Every statistic comes from statsmodels / scipy fitted on one row per unit, so the interval accounts
for units contributing several views (the add rate is a ratio of sums, not a share of units):

- absolute lift: WLS of the unit's rate (numerator / denominator) on a treatment dummy, weighted by
  the denominator, with HC1 errors. Its coefficient is the difference of pooled ratios and its
  robust standard error the delta-method (unit-clustered) one.
- relative lift: Poisson GLM of the numerator on the dummy, log link, offset log(denominator), HC1
  errors: exp(coefficient) - 1 is the ratio of pooled rates minus one, and exponentiating the
  interval of the log ratio keeps it inside (-1, inf) and asymmetric, as a ratio's should be.
- CUPED: the same WLS adjusted for a pre-exposure covariate, in Lin's (2013) form (covariate centred
  on its pooled weighted mean and interacted with the dummy), so the treatment coefficient stays the
  average effect even when the covariate's slope differs by arm, and adjusting never widens the
  interval in large samples.
- sample-ratio mismatch: chi-square of units per variation against the design's weights.
- multiple arms: the p-values of an experiment's treatment arms on one metric are Holm-adjusted, and
  `is_significant` reads the adjusted value, so a three-arm test is not twice as likely to cry
  wolf. The intervals are the unadjusted 95% ones.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd
from scipy import stats

# The modules used, not statsmodels.api, which also imports the datasets, graphics and formula
# packages: 1.0 s more in every process that reads experiments (dbt's build among them).
from statsmodels.genmod.families import Poisson
from statsmodels.genmod.generalized_linear_model import GLM
from statsmodels.regression.linear_model import WLS
from statsmodels.stats.multitest import multipletests
from statsmodels.tools.tools import add_constant

CONTROL_NAME = "control"
COVARIATE = "orders_before_exposure"

# metric -> (numerator, denominator); a None denominator counts each unit once.
METRICS: dict[str, tuple[str, str | None]] = {
    # The metric the experiments were designed on: adds per product view in the exposure session.
    "add_rate": ("exposure_session_product_adds", "exposure_session_product_views"),
    # Secondary: share of units whose guest placed a completed order after the exposure.
    "order_rate": ("has_ordered_after_exposure", None),
}

# What a readout reads of each unit (the covariate is optional), so a caller can read no more.
UNIT_COLUMNS = (
    "experiment_id",
    "experiment_name",
    "variation_id",
    "variation_name",
    "unit_id",
    *(column for pair in METRICS.values() for column in pair if column),
    COVARIATE,
)

COLUMNS = [
    "experiment_id",
    "experiment_name",
    "variation_id",
    "variation_name",
    "is_control",
    "control_variation_id",
    "metric",
    "units",
    "denominator",
    "conversions",
    "conversion_rate",
    "absolute_lift",
    "absolute_lift_ci_low",
    "absolute_lift_ci_high",
    "relative_lift",
    "relative_lift_ci_low",
    "relative_lift_ci_high",
    "p_value",
    "p_value_adjusted",
    "is_significant",
    "expected_share",
    "observed_share",
    "srm_p_value",
    "has_sample_ratio_mismatch",
    "is_trustworthy",
    "cuped_absolute_lift",
    "cuped_ci_low",
    "cuped_ci_high",
    "cuped_p_value",
    "cuped_variance_reduction",
]

LIFT_COLUMNS = [
    "absolute_lift",
    "absolute_lift_ci_low",
    "absolute_lift_ci_high",
    "relative_lift",
    "relative_lift_ci_low",
    "relative_lift_ci_high",
    "p_value",
    "p_value_adjusted",
    "cuped_absolute_lift",
    "cuped_ci_low",
    "cuped_ci_high",
    "cuped_p_value",
    "cuped_variance_reduction",
]


def experiment_readouts(
    units: pd.DataFrame,
    *,
    expected_weights: Mapping[str, Mapping[str, float]] | None = None,
    alpha: float = 0.05,
    srm_alpha: float = 0.001,
) -> pd.DataFrame:
    """One row per experiment, variation and metric (see COLUMNS) from one row per experiment and
    unit (marts.experiment_exposures). `expected_weights` maps an experiment_id to its design's
    weight per variation_id (or variation_name); without it every variation is expected equally
    often. Control rows carry counts and the SRM test; their lift columns are null."""
    frame = _prepared(units)
    rows: list[dict] = []
    for experiment_id, exp in frame.groupby("experiment_id", sort=True):
        variations = (
            exp.groupby("variation_id", sort=True)
            .agg(variation_name=("variation_name", "first"), units=("unit_id", "size"))
            .reset_index()
        )
        control = _control(variations)
        weights = (expected_weights or {}).get(str(experiment_id))
        expected, srm_p = _sample_ratio(variations, weights)
        mismatch = bool(srm_p < srm_alpha)
        for metric, (numerator, denominator) in METRICS.items():
            metric_rows = []
            for variation in variations.itertuples(index=False):
                arm = exp[exp["variation_id"] == variation.variation_id]
                num, den = _outcome(arm, numerator, denominator)
                row = {
                    "experiment_id": str(experiment_id),
                    "experiment_name": arm["experiment_name"].iloc[0],
                    "variation_id": variation.variation_id,
                    "variation_name": variation.variation_name,
                    "is_control": variation.variation_id == control,
                    "control_variation_id": control,
                    "metric": metric,
                    "units": int(variation.units),
                    "denominator": int(den.sum()),
                    "conversions": int(num.sum()),
                    "conversion_rate": num.sum() / den.sum() if den.sum() > 0 else np.nan,
                    "expected_share": expected[variation.variation_id],
                    "observed_share": variation.units / variations["units"].sum(),
                    "srm_p_value": srm_p,
                    "has_sample_ratio_mismatch": mismatch,
                    "is_trustworthy": not mismatch,
                }
                if variation.variation_id == control:
                    row |= dict.fromkeys(LIFT_COLUMNS, np.nan)
                else:
                    both = exp[exp["variation_id"].isin([control, variation.variation_id])]
                    row |= _compare(both, variation.variation_id, numerator, denominator, alpha)
                metric_rows.append(row)
            _adjust(metric_rows, alpha)
            rows.extend(metric_rows)
    out = pd.DataFrame(rows, columns=COLUMNS)
    return _typed(out)


def _prepared(units: pd.DataFrame) -> pd.DataFrame:
    missing = set(UNIT_COLUMNS) - {COVARIATE} - set(units.columns)
    if missing:
        raise ValueError(f"units lacks columns {sorted(missing)}")
    frame = units.copy()
    for column in ("experiment_id", "variation_id", "unit_id"):
        frame[column] = frame[column].astype(str)
    # A unit whose exposure session was not found has no views or adds, not unknown ones.
    for column in ("exposure_session_product_views", "exposure_session_product_adds"):
        frame[column] = pd.to_numeric(frame[column]).fillna(0).astype(float)
    frame["has_ordered_after_exposure"] = (
        frame["has_ordered_after_exposure"].astype("boolean").fillna(False).astype(float)
    )
    frame[COVARIATE] = (
        pd.to_numeric(frame[COVARIATE]).fillna(0).astype(float) if COVARIATE in frame else 0.0
    )
    return frame.sort_values(["experiment_id", "variation_id", "unit_id"], kind="stable")


def _control(variations: pd.DataFrame) -> str:
    """The variation named 'control', else the lowest variation_id."""
    named = variations.loc[variations["variation_name"] == CONTROL_NAME, "variation_id"]
    return str(named.iloc[0]) if len(named) else str(variations["variation_id"].min())


def _sample_ratio(
    variations: pd.DataFrame, weights: Mapping[str, float] | None
) -> tuple[dict[str, float], float]:
    """Expected share per variation and the chi-square p-value of the observed unit counts."""
    ids = list(variations["variation_id"])
    if weights:
        by_name = dict(zip(variations["variation_name"], ids, strict=True))
        raw = {by_name.get(key, str(key)): float(w) for key, w in weights.items()}
        # A designed variation nobody reached still belongs in the test, with 0 units observed.
        ids = sorted(set(ids) | set(raw))
        w = np.array([raw.get(i, 0.0) for i in ids])
    else:
        w = np.ones(len(ids))
    shares = w / w.sum()
    observed = (
        variations.set_index("variation_id")["units"].reindex(ids, fill_value=0).to_numpy(float)
    )
    if len(ids) < 2:
        return dict(zip(ids, shares, strict=True)), 1.0
    result = stats.chisquare(observed, f_exp=shares * observed.sum())
    return dict(zip(ids, shares, strict=True)), float(result.pvalue)


def _outcome(arm: pd.DataFrame, numerator: str, denominator: str | None):
    num = arm[numerator].to_numpy(float)
    den = np.ones(len(arm)) if denominator is None else arm[denominator].to_numpy(float)
    return num, den


def _compare(
    both: pd.DataFrame, treated: str, numerator: str, denominator: str | None, alpha: float
) -> dict[str, float]:
    num, den = _outcome(both, numerator, denominator)
    treat = (both["variation_id"] == treated).to_numpy(float)
    covariate = both[COVARIATE].to_numpy(float)
    # A unit without a denominator (no product view) says nothing about a ratio.
    keep = den > 0
    num, den, treat, covariate = num[keep], den[keep], treat[keep], covariate[keep]
    out = dict.fromkeys(LIFT_COLUMNS, np.nan)
    if treat.sum() == 0 or (1 - treat).sum() == 0:
        return out
    rate = num / den
    design = add_constant(treat, has_constant="add")
    plain = WLS(rate, design, weights=den).fit(cov_type="HC1")
    low, high = plain.conf_int(alpha)[1]
    out |= {
        "absolute_lift": plain.params[1],
        "absolute_lift_ci_low": low,
        "absolute_lift_ci_high": high,
        "p_value": plain.pvalues[1],
    }
    if num[treat == 0].sum() > 0 and num[treat == 1].sum() > 0:
        poisson = GLM(num, design, family=Poisson(), offset=np.log(den)).fit(cov_type="HC1")
        log_low, log_high = poisson.conf_int(alpha)[1]
        out |= {
            "relative_lift": np.expm1(poisson.params[1]),
            "relative_lift_ci_low": np.expm1(log_low),
            "relative_lift_ci_high": np.expm1(log_high),
        }
    centred = covariate - np.average(covariate, weights=den)
    if np.ptp(centred) == 0:
        # Nothing known before exposure (e.g. anonymous visitors only): CUPED is the plain readout.
        adjusted = plain
    else:
        design = np.column_stack([np.ones_like(treat), treat, centred, treat * centred])
        adjusted = WLS(rate, design, weights=den).fit(cov_type="HC1")
    low, high = adjusted.conf_int(alpha)[1]
    out |= {
        "cuped_absolute_lift": adjusted.params[1],
        "cuped_ci_low": low,
        "cuped_ci_high": high,
        "cuped_p_value": adjusted.pvalues[1],
        "cuped_variance_reduction": 1 - adjusted.bse[1] ** 2 / plain.bse[1] ** 2
        if plain.bse[1] > 0
        else np.nan,
    }
    return out


def _adjust(metric_rows: list[dict], alpha: float) -> None:
    """Holm-adjust the treatment arms' p-values of one experiment and metric."""
    arms = [r for r in metric_rows if not r["is_control"] and not np.isnan(r["p_value"])]
    if len(arms) == 1:
        arms[0]["p_value_adjusted"] = arms[0]["p_value"]
    elif arms:
        adjusted = multipletests([r["p_value"] for r in arms], method="holm")[1]
        for row, p in zip(arms, adjusted, strict=True):
            row["p_value_adjusted"] = float(p)
    for row in metric_rows:
        row["is_significant"] = bool(row["p_value_adjusted"] < alpha)


def _typed(out: pd.DataFrame) -> pd.DataFrame:
    ints = ["units", "denominator", "conversions"]
    bools = ["is_control", "is_significant", "has_sample_ratio_mismatch", "is_trustworthy"]
    strings = [
        "experiment_id",
        "experiment_name",
        "variation_id",
        "variation_name",
        "control_variation_id",
        "metric",
    ]
    floats = [c for c in COLUMNS if c not in ints + bools + strings]
    return out.astype(
        {**dict.fromkeys(ints, "int64"), **dict.fromkeys(bools, "bool")}
        | dict.fromkeys(floats, "float64")
        | dict.fromkeys(strings, "str")
    ).reset_index(drop=True)
