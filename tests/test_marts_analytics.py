"""The analytics marts on the marts world: the lifetime value fit against the simulator's
generative parameters, what dim_customers and kpi_scorecard take from the models, and what
Dagster shows of them.

The models' own statistics are tested on their functions (test_lifetime_value, test_clusters,
test_experiment_stats); here they run as dbt Python models inside the asset graph.
"""

from __future__ import annotations

import shutil

import dagster as dg
import duckdb
import pytest

pytestmark = pytest.mark.e2e


def test_lifetime_value_fit_recovers_the_planted_process(warehouse, truth):
    """Tolerances from test_lifetime_value's measurements on five worlds: r within 20%, the mean
    purchase rate r/alpha within 15% (day rounding and cancelled orders bias alpha up ~15%), the
    mean dropout a/(a+b) within 30% (a and b trade off; their ratio is what orders pin down)."""
    run = warehouse.sql(
        """
        select r, alpha, a, b, holdout_correlation, customers_fitted, fit_is_reliable, fit_warning
        from marts.clv_model_runs
        """
    ).fetchall()
    assert len(run) == 1, "one fit per distinct input: the marts world was built once"
    r, alpha, a, b, correlation, fitted, reliable, warning = run[0]
    assert (reliable, warning) == (True, None)
    planted = truth["parameters"]
    assert r == pytest.approx(planted["r"], rel=0.20)
    assert r / alpha == pytest.approx(planted["r"] / planted["alpha"], rel=0.15)
    assert a / (a + b) == pytest.approx(planted["a"] / (planted["a"] + planted["b"]), rel=0.30)
    assert correlation > 0.5
    assert fitted > 500


def test_a_build_on_the_same_data_takes_the_fits_and_scores_every_guest_alike(
    marts_world, warehouse, tmp_path, monkeypatch
):
    """int_customers_scored and int_customer_clusters_fitted built again on a copy of the marts
    world: their calibration data and refit day's features have not changed, so they take the
    first build's fits instead of fitting, and every guest's scores and cluster are what the fits
    gave them. A day's build costs the scoring and the assignment, not the fits."""
    from orchestration.dbt import chain_vars
    from regulars.cli.demo import demo_chain
    from regulars.settings import load_settings
    from tests.conftest import point_at, run_dbt

    (first,) = warehouse.sql("select parameters_reused from marts.clv_model_runs").fetchall()
    assert first == (False,)
    copy = tmp_path / marts_world.warehouse_path.name  # DuckDB names the catalog after the file
    shutil.copy2(marts_world.warehouse_path, copy)
    point_at(monkeypatch, marts_world.data_dir.parent)
    with demo_chain(marts_world):
        run_vars = chain_vars(load_settings())
    models = (
        "int_customers_scored",
        "customer_lifetime_value",
        "clv_model_runs",
        "int_customer_clusters_fitted",
        "customer_clusters",
    )
    run_dbt(copy, tmp_path / "target", "run", "--select", *models, *run_vars)
    with duckdb.connect(str(copy), read_only=True) as rebuilt:
        rebuilt.execute(f"attach '{marts_world.warehouse_path}' as built (read_only)")
        reused = rebuilt.sql(
            "select distinct run_parameters_reused from intermediate.int_customers_scored"
        ).fetchall()
        clusters_reused = rebuilt.sql(
            "select distinct parameters_reused from intermediate.int_customer_clusters_fitted"
        ).fetchall()
        changed = {
            table: [
                rebuilt.sql(
                    f"select count(*) from (select {columns} from {a}.{table} "
                    f"except all select {columns} from {b}.{table})"
                ).fetchone()[0]
                for a, b in (("built", copy.stem), (copy.stem, "built"))
            ]
            for table, columns in (
                ("marts.customer_lifetime_value", "*"),
                ("intermediate.int_customer_clusters_fitted", "* exclude (parameters_reused)"),
                ("marts.customer_clusters", "*"),
            )
        }
        runs = rebuilt.sql("select count(*) from marts.clv_model_runs").fetchone()[0]
    assert reused == [(True,)]
    assert clusters_reused == [(True,)]
    assert changed == {
        "marts.customer_lifetime_value": [0, 0],
        "intermediate.int_customer_clusters_fitted": [0, 0],
        "marts.customer_clusters": [0, 0],
    }
    assert runs == 1, "the same data and settings keep their run id"


def test_every_ordering_guest_has_a_band_and_a_cluster(warehouse):
    """Clusters take every guest with a completed order; the lifetime-value fit only the orders
    of sources still recording in its hold-out window, so not the POS export's (it ended when the
    platform started): an account whose only completed orders are in the export has no band."""
    rows = warehouse.sql(
        """
        select
            count(*) filter (where completed_orders > 0),
            count(*) filter (where customer_id in (
                select customer_id from marts.fct_orders
                where source_system = 'ordering' and is_completed
            )),
            count(churn_risk_band),
            count(cluster_name),
            count(*) filter (where completed_orders = 0 and churn_risk_band is not null)
        from marts.dim_customers
        where source_system = 'ordering'
        """
    ).fetchone()
    ordering, ordered_on_the_platform, banded, clustered, prospects_banded = rows
    assert ordering > ordered_on_the_platform > 500
    assert banded == ordered_on_the_platform
    assert clustered == ordering
    assert prospects_banded == 0
    # The bands follow the vars' thresholds on the model's probability.
    misbanded = warehouse.sql(
        """
        select count(*) from marts.customer_lifetime_value
        where churn_risk_band != case
            when probability_alive < 0.3 then 'high'
            when probability_alive >= 0.7 then 'low'
            else 'medium' end
        """
    ).fetchone()[0]
    assert misbanded == 0


def test_kpi_scorecard_revenue_at_risk_per_province(warehouse):
    by_province = dict(
        warehouse.sql(
            """
            select stores.province, sum(clv.expected_revenue_at_risk_365d)
            from marts.customer_lifetime_value as clv
            inner join marts.dim_customers as customers using (customer_id)
            inner join marts.dim_stores as stores on customers.home_store_id = stores.store_id
            group by 1
            """
        ).fetchall()
    )
    scorecard = warehouse.sql(
        """
        select grain, province, activity_month, expected_revenue_at_risk
        from marts.kpi_scorecard
        where grain in ('chain', 'province') and expected_revenue_at_risk is not null
        """
    ).fetchall()
    as_of_month = warehouse.sql(
        "select date_trunc('month', max(observation_end)) from marts.customer_lifetime_value"
    ).fetchone()[0]
    assert {row[2] for row in scorecard} == {as_of_month.date()}, "only the as-of month"
    provinces = {row[1]: row[3] for row in scorecard if row[0] == "province"}
    assert provinces == pytest.approx(by_province, abs=0.01 * len(by_province))
    chain = [row[3] for row in scorecard if row[0] == "chain"]
    assert chain == [pytest.approx(sum(by_province.values()), abs=1)]
    assert all(value > 0 for value in provinces.values())


def test_dagster_shows_the_fits_as_metadata(model_metadata):
    clv = model_metadata["marts/customer_lifetime_value"]
    assert clv is not None, "customer_lifetime_value was not materialised through Dagster"
    for name in ("bgnbd_parameters (per day)", "holdout_correlation", "calibration_end"):
        assert name in clv
    assert "'alpha'" in clv["bgnbd_parameters (per day)"]
    assert str(clv["parameters_reused"]) == "False", "the marts world's one build fitted"
    clusters = model_metadata["marts/customer_clusters"]
    assert int(clusters["k_chosen"]) >= 2
    # Fitted on the last Sunday a week or more before the world's last day, Friday 2025-05-30.
    assert clusters["features_as_of"] == "2025-05-18"
    assert str(clusters["parameters_reused"]) == "False", "the marts world's one build fitted"
    readouts = model_metadata["marts/experiment_results"]
    assert "Reorder shortcut" in readouts["readouts"]
    assert int(readouts["sample_ratio_mismatches"]) == 1


def test_analytics_models_run_after_the_marts(marts_world):
    from orchestration.assembly import build_definitions

    graph = build_definitions(marts_world).resolve_asset_graph()
    upstream = graph.get(dg.AssetKey(["marts", "customer_lifetime_value"])).parent_keys
    assert {key.to_user_string() for key in upstream} >= {"intermediate/int_customers_scored"}
    scored = graph.get(dg.AssetKey(["intermediate", "int_customers_scored"]))
    assert "marts/fct_orders" in {key.to_user_string() for key in scored.parent_keys}
