{#-
    One row per customer account that is not soft-deleted, with order history
    and lifecycle stage. Personal data (email, phone, name) stays in staging.

    Order history counts completed orders only (see fct_orders' revenue rule):
    a customer whose orders were all cancelled or refunded has not ordered yet.

    "As of": days are counted up to the latest order placed in the data, not
    current_date. Rebuilding the same data then gives the same stages, tests
    stay deterministic, and a paused pipeline does not age every customer
    into `churned`.

    Lifecycle rule, evaluated in this order (windows are vars):
      prospect  no completed order
      churned   last completed order more than churn_inactivity_days (60) ago
      at_risk   last completed order more than active_window_days (30) ago
      new       first completed order at most new_customer_window_days (30) ago
      active    otherwise: last completed order at most active_window_days ago
    Days are whole calendar days (UTC) between the order and the as-of.
-#}

{%- set active_window_days = var('active_window_days') | int -%}
{%- set churn_inactivity_days = var('churn_inactivity_days') | int -%}
{%- set new_customer_window_days = var('new_customer_window_days') | int -%}
{%- if churn_inactivity_days < active_window_days -%}
    {{ exceptions.raise_compiler_error(
        "var churn_inactivity_days (" ~ churn_inactivity_days ~ ") must be >= active_window_days ("
        ~ active_window_days ~ ")"
    ) }}
{%- endif %}

with

customers as (

    select * from {{ ref('stg_ordering__customers') }}

),

stores as (

    select * from {{ ref('stg_ordering__stores') }}

),

orders as (

    select * from {{ ref('fct_orders') }}

),

as_of as (

    select max(placed_at) as as_of_at
    from orders

),

customer_orders as (

    select
        customer_id,
        min(placed_at) as first_order_at,
        max(placed_at) as last_order_at,
        count(*) as completed_orders,
        sum(net_revenue_idr) as lifetime_net_revenue_idr

    from orders
    where is_completed
    group by customer_id

),

customers_with_orders as (

    select
        customers.customer_id,
        customers.home_store_id,
        stores.province as home_province,
        customers.preferred_platform,
        customers.acquisition_channel,
        customers.signed_up_at,
        customers.has_email_consent,
        customers.has_sms_consent,
        customer_orders.first_order_at,
        customer_orders.last_order_at,
        coalesce(customer_orders.completed_orders, 0) as completed_orders,
        coalesce(customer_orders.lifetime_net_revenue_idr, 0) as lifetime_net_revenue_idr,
        {{ dbt.datediff('customer_orders.first_order_at', 'as_of.as_of_at', 'day') }}
            as days_since_first_order,
        {{ dbt.datediff('customer_orders.last_order_at', 'as_of.as_of_at', 'day') }}
            as days_since_last_order

    from customers
    left join stores
        on customers.home_store_id = stores.store_id
    left join customer_orders
        on customers.customer_id = customer_orders.customer_id
    cross join as_of
    where not customers.is_deleted

),

final as (

    select
        -- ids
        customer_id,
        home_store_id,

        -- attributes
        home_province,
        preferred_platform,
        acquisition_channel,

        -- consent
        has_email_consent,
        has_sms_consent,

        -- dates and timestamps (UTC)
        signed_up_at,
        cast(signed_up_at as date) as acquisition_date,
        first_order_at,
        last_order_at,

        -- order history
        cast(completed_orders as {{ dbt.type_bigint() }}) as completed_orders,
        {{ to_money('lifetime_net_revenue_idr') }} as lifetime_net_revenue_idr,
        case
            when completed_orders > 0
                then {{ to_money('round(lifetime_net_revenue_idr / completed_orders, 2)') }}
        end as average_order_value_idr,
        cast(days_since_last_order as {{ dbt.type_bigint() }}) as days_since_last_order,

        -- lifecycle
        case
            when completed_orders = 0 then 'prospect'
            when days_since_last_order > {{ churn_inactivity_days }} then 'churned'
            when days_since_last_order > {{ active_window_days }} then 'at_risk'
            when days_since_first_order <= {{ new_customer_window_days }} then 'new'
            else 'active'
        end as lifecycle_stage

    from customers_with_orders

)

select * from final
