{#-
    One row per guest with a completed order: the lifetime value model's
    forecast at its observation end (see int_customers_scored and
    clv_model_runs for the fit behind it). The fit learns from every
    completed order, closed accounts' too (they are the dropouts it must see);
    only live accounts are scored here. When the fit cannot tell who is still
    a customer (fit_is_reliable false, fit_warning says why), the forecasts
    that rest on dropout are null rather than the fit's boundary artefacts.
-#}
with

scored as (

    select * from {{ ref('int_customers_scored') }}

),

customers as (

    select * from {{ ref('int_customers_unioned') }}

),

live_scored as (

    select scored.*
    from scored
    inner join customers
        on scored.customer_id = customers.customer_id
    where not customers.is_deleted

),

final as (

    select
        -- ids
        cast(customer_id as {{ dbt.type_bigint() }}) as customer_id,
        cast(run_model_run_id as {{ dbt.type_string() }}) as model_run_id,
        cast(run_observation_end as date) as observation_end,

        -- history the forecast is conditioned on
        cast(first_order_date as date) as first_order_date,
        cast(last_order_date as date) as last_order_date,
        cast(orders as {{ dbt.type_bigint() }}) as orders,
        cast(frequency as {{ dbt.type_bigint() }}) as repeat_orders,
        cast(recency_days as double) as recency_days,
        cast(tenure_days as double) as tenure_days,
        {{ chain_currency() }} as currency,
        {{ to_money('round(average_order_value, 2)') }} as average_order_value,

        -- forecast (those resting on dropout null unless fit_is_reliable)
        cast(run_fit_is_reliable as boolean) as fit_is_reliable,
        cast(run_fit_warning as {{ dbt.type_string() }}) as fit_warning,
        cast(probability_alive as double) as probability_alive,
        cast(churn_risk_band as {{ dbt.type_string() }}) as churn_risk_band,
        cast(expected_orders_30d as double) as expected_orders_30d,
        cast(expected_orders_90d as double) as expected_orders_90d,
        cast(expected_orders_365d as double) as expected_orders_365d,
        {{ to_money('round(expected_average_order_value, 2)') }}
            as expected_average_order_value,
        {{ to_money('round(expected_revenue_365d, 2)') }} as expected_revenue_365d,
        {{ to_money('round(expected_revenue_at_risk_365d, 2)') }}
            as expected_revenue_at_risk_365d,

        -- hold-out check of the fit (null for guests first seen after calibration)
        cast(holdout_orders_predicted as double) as holdout_orders_predicted,
        cast(holdout_orders_actual as {{ dbt.type_bigint() }}) as holdout_orders_actual

    from live_scored

)

select * from final
