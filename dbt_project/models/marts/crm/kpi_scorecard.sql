{#-
    The chain's targets beside the actuals, per month and scope (chain,
    province, store), with on-track flags. One row per row of churn_monthly,
    whose scopes and months it shares.

    Customers count at their home store (the store that owns the
    relationship); orders count where they were served (the store's
    workload). Targets come from vars, never from this SQL:
      retention  retention_rate >= retention_target (default 0.30), where
                 retention_rate = share of the previous month's ordering
                 customers who completed an order again this month
      churn      churn_rate <= monthly_churn_target (default 0.005), churn_rate
                 from churn_monthly; judged only once the month's churn is
                 final (churn_inactivity_days after it ends), null before
    is_on_track is false as soon as one flag is false, true when both are
    true, null while one is still unknown.
    expected_revenue_at_risk is a forecast made at the as-of (the lifetime
    value model's observation end): the spend the next 365 days would bring
    from guests who may have lapsed, summed at their home store, on the as-of
    month's rows only (null on earlier months, which had no such forecast).
-#}

{%- set retention_target = var('retention_target') | float -%}
{%- set monthly_churn_target = var('monthly_churn_target') | float -%}

with

churn as (

    select * from {{ ref('churn_monthly') }}

),

orders as (

    select * from {{ ref('fct_orders') }}

),

customers as (

    select * from {{ ref('int_customers_unioned') }}

),

homes as (

    select * from {{ ref('int_customer_home_stores') }}

),

stores as (

    select * from {{ ref('dim_stores') }}

),

lifetime_values as (

    select * from {{ ref('customer_lifetime_value') }}

),

-- The same as-of as churn_monthly: the latest order placed in the data.
as_of as (

    select as_of_date from {{ ref('int_as_of') }}

),

customer_homes as (

    select
        customers.customer_id,
        homes.home_store_id as store_id,
        homes.home_province as province,
        cast(
            {{ dbt.date_trunc('month', utc_to_local_date('customers.acquired_at')) }} as date
        ) as signup_month

    from customers
    left join homes
        on customers.customer_id = homes.customer_id

),

-- Completed orders only (fct_orders' revenue rule), in their month.
completed_orders as (

    select
        customer_id,
        store_id,
        cast({{ dbt.date_trunc('month', 'placed_date') }} as date) as activity_month

    from orders
    where is_completed

),

served_orders as (

    select
        completed_orders.store_id,
        stores.province,
        completed_orders.activity_month

    from completed_orders
    left join stores
        on completed_orders.store_id = stores.store_id

),

ordering_months as (

    select distinct
        completed_orders.customer_id,
        customer_homes.store_id,
        customer_homes.province,
        completed_orders.activity_month

    from completed_orders
    inner join customer_homes
        on completed_orders.customer_id = customer_homes.customer_id

),

-- Each ordering month of a customer, and whether they ordered the month after.
next_months as (

    select
        this_month.store_id,
        this_month.province,
        cast({{ dbt.dateadd('month', 1, 'this_month.activity_month') }} as date) as activity_month,
        case when next_month.customer_id is not null then 1 else 0 end as is_retained

    from ordering_months as this_month
    left join ordering_months as next_month
        on
            this_month.customer_id = next_month.customer_id
            and cast({{ dbt.dateadd('month', 1, 'this_month.activity_month') }} as date)
            = next_month.activity_month

),

months as (

    select distinct activity_month
    from churn

),

open_store_months as (

    select
        stores.store_id,
        stores.province,
        months.activity_month

    from stores
    inner join months
        on
            stores.opened_date <= {{ dbt.last_day('months.activity_month', 'month') }}
            and (stores.deleted_at is null or stores.deleted_at >= months.activity_month)

),

-- Every measure is a count at one store (customers at their home store,
-- orders where served), so one stack of unit rows rolls up to every scope.
measure_rows as (

    select
        store_id,
        province,
        signup_month as activity_month,
        1 as customers_acquired,
        0 as completed_orders,
        0 as open_stores,
        0 as previous_month_customers,
        0 as retained_customers,
        cast(null as double) as expected_revenue_at_risk
    from customer_homes

    union all

    select
        store_id,
        province,
        activity_month,
        0 as customers_acquired,
        1 as completed_orders,
        0 as open_stores,
        0 as previous_month_customers,
        0 as retained_customers,
        cast(null as double) as expected_revenue_at_risk
    from served_orders

    union all

    select
        store_id,
        province,
        activity_month,
        0 as customers_acquired,
        0 as completed_orders,
        1 as open_stores,
        0 as previous_month_customers,
        0 as retained_customers,
        cast(null as double) as expected_revenue_at_risk
    from open_store_months

    union all

    select
        store_id,
        province,
        activity_month,
        0 as customers_acquired,
        0 as completed_orders,
        0 as open_stores,
        1 as previous_month_customers,
        is_retained as retained_customers,
        cast(null as double) as expected_revenue_at_risk
    from next_months
    union all
    select
        customer_homes.store_id,
        customer_homes.province,
        cast({{ dbt.date_trunc('month', 'lifetime_values.observation_end') }} as date)
            as activity_month,
        0 as customers_acquired,
        0 as completed_orders,
        0 as open_stores,
        0 as previous_month_customers,
        0 as retained_customers,
        lifetime_values.expected_revenue_at_risk_365d as expected_revenue_at_risk
    from lifetime_values
    inner join customer_homes
        on lifetime_values.customer_id = customer_homes.customer_id

),

-- churn_monthly's scopes (macros/scopes.sql).
measures as (

    {{ sum_by_scope('measure_rows', {
        'customers_acquired': 'customers_acquired',
        'completed_orders': 'completed_orders',
        'open_stores': 'open_stores',
        'previous_month_customers': 'previous_month_customers',
        'retained_customers': 'retained_customers',
        'expected_revenue_at_risk': 'expected_revenue_at_risk',
    }) }}

),

joined as (

    select
        churn.churn_monthly_id,
        churn.grain,
        churn.activity_month,
        churn.province,
        churn.store_id,
        churn.store_code,
        churn.new_customers,
        churn.active_customers,
        churn.churned_customers,
        churn.churn_rate,
        churn.is_churn_final,
        measures.expected_revenue_at_risk,
        coalesce(measures.customers_acquired, 0) as customers_acquired,
        coalesce(measures.completed_orders, 0) as completed_orders,
        coalesce(measures.open_stores, 0) as open_stores,
        coalesce(measures.previous_month_customers, 0) as previous_month_customers,
        coalesce(measures.retained_customers, 0) as retained_customers

    from churn
    left join measures
        on
            churn.activity_month = measures.activity_month
            and {{ same_scope('churn', 'measures') }}

),

-- A month the data has not seen to its end has counts so far but no rates:
-- half a month's orders per store, or its returning guests, would read as a
-- collapse on a chart.
completeness as (

    select
        joined.*,
        {{ dbt.last_day('joined.activity_month', 'month') }} < as_of.as_of_date
            as is_month_complete

    from joined
    cross join as_of

),

rated as (

    select
        *,
        case
            when is_month_complete then cast(completed_orders as double) / nullif(open_stores, 0)
        end as orders_per_store,
        case
            when is_month_complete
                then cast(retained_customers as double) / nullif(previous_month_customers, 0)
        end as retention_rate

    from completeness

),

flagged as (

    select
        *,
        retention_rate >= {{ retention_target }} as is_retention_on_track,
        case
            when is_churn_final then churn_rate <= {{ monthly_churn_target }}
        end as is_churn_on_track

    from rated

),

final as (

    select
        -- ids
        churn_monthly_id as kpi_scorecard_id,
        grain,
        activity_month,
        province,
        store_id,
        store_code,
        is_month_complete,

        -- acquisition and volume
        cast(customers_acquired as {{ dbt.type_bigint() }}) as customers_acquired,
        new_customers,
        cast(completed_orders as {{ dbt.type_bigint() }}) as completed_orders,
        cast(open_stores as {{ dbt.type_bigint() }}) as open_stores,
        orders_per_store,

        -- retention
        cast(previous_month_customers as {{ dbt.type_bigint() }}) as previous_month_customers,
        cast(retained_customers as {{ dbt.type_bigint() }}) as retained_customers,
        retention_rate,
        cast({{ retention_target }} as numeric(9, 6)) as retention_target,
        is_retention_on_track,

        -- churn
        active_customers,
        churned_customers,
        churn_rate,
        cast({{ monthly_churn_target }} as numeric(9, 6)) as monthly_churn_target,
        is_churn_final,
        is_churn_on_track,

        -- value at risk, in the chain's currency
        {{ chain_currency() }} as currency,
        {{ to_money('round(expected_revenue_at_risk, 2)') }} as expected_revenue_at_risk,

        -- overall
        case
            when not is_retention_on_track or not is_churn_on_track then false
            when is_retention_on_track and is_churn_on_track then true
        end as is_on_track

    from flagged

)

select * from final
