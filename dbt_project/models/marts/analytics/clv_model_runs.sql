{#-
    One row per fit of the lifetime value model, kept across runs so a drift
    in parameters or hold-out error shows: each build appends its run (a run
    id is never rewritten). Parameters are per day: BG/NBD r, alpha (purchase
    rate ~ Gamma(r, alpha)), a, b (dropout ~ Beta(a, b)); Gamma-Gamma p, q, v.
    fit_is_reliable is false (fit_warning says why, with the figures) when the
    fit cannot tell who is still a customer. The history outlives upgrades: a
    column added later is appended, empty for the runs before it, rather than
    failing the build or dropping the history.
-#}
{{
    config(
        materialized='incremental',
        incremental_strategy='append',
        unique_key='model_run_id',
        on_schema_change='append_new_columns',
    )
}}

with

scored as (

    select * from {{ ref('int_customers_scored') }}

),

runs as (

    select distinct
        run_model_run_id,
        run_fitted_at,
        run_calibration_end,
        run_observation_end,
        run_holdout_days,
        run_customers_fitted,
        run_r,
        run_alpha,
        run_a,
        run_b,
        run_spend_p,
        run_spend_q,
        run_spend_v,
        run_in_sample_mae,
        run_holdout_mae,
        run_holdout_correlation,
        run_holdout_orders_predicted,
        run_holdout_orders_actual,
        run_fit_seconds,
        run_repeat_customers_fitted,
        run_fit_is_reliable,
        run_fit_warning,
        run_calibration_digest,
        run_parameters_reused
    from scored

),

final as (

    select
        cast(run_model_run_id as {{ dbt.type_string() }}) as model_run_id,
        {{ to_utc_timestamp('run_fitted_at') }} as fitted_at,
        cast(run_calibration_end as date) as calibration_end,
        cast(run_observation_end as date) as observation_end,
        cast(run_holdout_days as {{ dbt.type_bigint() }}) as holdout_days,
        cast(run_customers_fitted as {{ dbt.type_bigint() }}) as customers_fitted,
        cast(run_r as double) as r,
        cast(run_alpha as double) as alpha,
        cast(run_a as double) as a,
        cast(run_b as double) as b,
        cast(run_spend_p as double) as spend_p,
        cast(run_spend_q as double) as spend_q,
        cast(run_spend_v as double) as spend_v,
        cast(run_in_sample_mae as double) as in_sample_mae,
        cast(run_holdout_mae as double) as holdout_mae,
        cast(run_holdout_correlation as double) as holdout_correlation,
        cast(run_holdout_orders_predicted as double) as holdout_orders_predicted,
        cast(run_holdout_orders_actual as {{ dbt.type_bigint() }}) as holdout_orders_actual,
        cast(run_fit_seconds as double) as fit_seconds,
        cast(run_repeat_customers_fitted as {{ dbt.type_bigint() }}) as repeat_customers_fitted,
        cast(run_fit_is_reliable as boolean) as fit_is_reliable,
        cast(run_fit_warning as {{ dbt.type_string() }}) as fit_warning,
        cast(run_calibration_digest as {{ dbt.type_string() }}) as calibration_digest,
        cast(run_parameters_reused as boolean) as parameters_reused
    from runs
    {% if is_incremental() %}
        where run_model_run_id not in (select previous.model_run_id from {{ this }} as previous)
    {% endif %}

)

select * from final
