"""What the analytics models (dbt Python models in marts/analytics) report to Dagster.

The fits run inside dbt, so their figures (fitted parameters, hold-out error, clusters chosen,
experiment verdicts) live in the warehouse tables they write. dbt holds the DuckDB file's write
lock until its invocation ends: orchestration.dbt holds dbt's events until then and adds these
figures to the fits' materialisations, beside every table's row count.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import dagster as dg
import duckdb


def _table(rows: list[tuple], header: list[str]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join("" if v is None else str(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)


def lifetime_value_metadata(conn: duckdb.DuckDBPyConnection) -> dict[str, Any]:
    run = conn.execute(
        """
        select model_run_id, fitted_at, calibration_end, observation_end, customers_fitted,
            r, alpha, a, b, spend_p, spend_q, spend_v,
            in_sample_mae, holdout_mae, holdout_correlation, fit_seconds,
            repeat_customers_fitted, fit_is_reliable, fit_warning, parameters_reused
        from marts.clv_model_runs
        order by fitted_at desc
        limit 1
        """
    ).fetchone()
    if run is None:
        return {}
    names = [d[0] for d in conn.description]
    fit = dict(zip(names, run, strict=True))
    bands = conn.execute(
        """
        select churn_risk_band, count(*), sum(expected_revenue_at_risk_365d), any_value(currency)
        from marts.customer_lifetime_value
        where model_run_id = ?
        group by 1 order by 1
        """,
        [fit["model_run_id"]],
    ).fetchall()
    # A flagged fit's guests have no band and no revenue at risk: one row of blanks.
    band_rows = [
        (band, n, "" if at_risk is None else f"{at_risk:,.0f}") for band, n, at_risk, _ in bands
    ]
    currency = next((code for *_, code in bands if code), None)
    at_risk_header = "revenue at risk, 365 d" + (f" ({currency})" if currency else "")
    return {
        "model_run_id": fit["model_run_id"],
        "fit_is_reliable": fit["fit_is_reliable"],
        "fit_warning": fit["fit_warning"] or "none",
        "fitted_at": dg.MetadataValue.timestamp(fit["fitted_at"].timestamp()),
        "calibration_end": str(fit["calibration_end"]),
        "observation_end": str(fit["observation_end"]),
        "customers_fitted": fit["customers_fitted"],
        "repeat_customers_fitted": fit["repeat_customers_fitted"],
        "bgnbd_parameters (per day)": {k: round(fit[k], 4) for k in ("r", "alpha", "a", "b")},
        "gamma_gamma_parameters": {k: round(fit[k], 4) for k in ("spend_p", "spend_q", "spend_v")},
        "in_sample_mae": dg.MetadataValue.float(fit["in_sample_mae"]),
        "holdout_mae": dg.MetadataValue.float(fit["holdout_mae"]),
        "holdout_correlation": dg.MetadataValue.float(fit["holdout_correlation"]),
        "fit_seconds": dg.MetadataValue.float(fit["fit_seconds"]),
        # A warehouse from before the column has null here: those runs all fitted.
        "parameters_reused": bool(fit["parameters_reused"]),
        "churn_risk_bands": dg.MetadataValue.md(
            _table(band_rows, ["band", "guests", at_risk_header])
        ),
    }


def clusters_metadata(conn: duckdb.DuckDBPyConnection) -> dict[str, Any]:
    rows = conn.execute(
        """
        select cluster_id, cluster_name, count(*) as guests, any_value(cluster_description),
            any_value(k_chosen), any_value(silhouette)
        from marts.customer_clusters
        group by cluster_id, cluster_name
        order by cluster_id
        """
    ).fetchall()
    if not rows:
        return {}
    fitted_as_of, reused = conn.execute(
        "select any_value(features_as_of), bool_and(parameters_reused) "
        "from intermediate.int_customer_clusters_fitted"
    ).fetchone()
    return {
        "k_chosen": rows[0][4],
        "silhouette": dg.MetadataValue.float(float(rows[0][5])),
        # The week's fit: the features' day, and whether this build fitted or kept it.
        "features_as_of": str(fitted_as_of),
        "parameters_reused": bool(reused),
        "clusters": dg.MetadataValue.md(
            _table([r[:4] for r in rows], ["cluster", "name", "guests", "description"])
        ),
    }


def experiments_metadata(conn: duckdb.DuckDBPyConnection) -> dict[str, Any]:
    rows = conn.execute(
        """
        select experiment_name, variation_name, metric, units,
            round(conversion_rate, 4),
            round(relative_lift, 4),
            '[' || round(relative_lift_ci_low, 4) || ', ' || round(relative_lift_ci_high, 4) || ']',
            round(p_value, 4),
            has_sample_ratio_mismatch
        from marts.experiment_results
        where not is_control
        order by experiment_id, metric, variation_id
        """
    ).fetchall()
    return {
        "readouts": dg.MetadataValue.md(
            _table(
                rows,
                [
                    "experiment",
                    "variation",
                    "metric",
                    "units",
                    "rate",
                    "relative lift",
                    "95% CI",
                    "p-value",
                    "SRM",
                ],
            )
        ),
        "sample_ratio_mismatches": conn.execute(
            "select count(distinct experiment_id) from marts.experiment_results "
            "where has_sample_ratio_mismatch"
        ).fetchone()[0],
    }


MODEL_METADATA: Mapping[dg.AssetKey, Callable[[duckdb.DuckDBPyConnection], dict[str, Any]]] = {
    dg.AssetKey(["marts", "customer_lifetime_value"]): lifetime_value_metadata,
    dg.AssetKey(["marts", "clv_model_runs"]): lifetime_value_metadata,
    dg.AssetKey(["marts", "customer_clusters"]): clusters_metadata,
    dg.AssetKey(["marts", "experiment_results"]): experiments_metadata,
}


def fit_metadata(
    context: dg.AssetExecutionContext, key: dg.AssetKey, conn: duckdb.DuckDBPyConnection
) -> dict[str, Any]:
    """The figures a fit wrote, for its materialisation; {} for any other asset, or with a
    warning when its tables cannot be read."""
    read = MODEL_METADATA.get(key)
    if read is None:
        return {}
    try:
        return read(conn)
    except duckdb.Error as error:
        context.log.warning(f"no model metadata for {key.to_user_string()}: {error}")
        return {}
