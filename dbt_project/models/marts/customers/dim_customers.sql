{#-
    The customer 360: one row per guest (int_customers_unioned: a platform
    account that is not soft-deleted, or an order-history member who never
    joined the platform),
    with order history, latest feedback, acquisition touch, stitched
    identifiers, lifecycle stage, and what the analytics models say of them
    (churn-risk band and expected value from customer_lifetime_value, the
    behavioural cluster from customer_clusters; null for guests without a
    completed order, whom neither model scores). Personal data (email, phone, name) stays
    in staging.

    Acquisition: the channel the customer signed up through (the account's
    own field; `order_history` for a member, acquired at their first imported
    order) and the first touch of their first completed order
    (int_orders_attributed: the earliest session within
    attribution_window_days before it; `direct/none` without one).

    Order history counts completed orders only (see fct_orders' revenue rule):
    a customer whose orders were all cancelled or refunded has not ordered yet.

    "As of": days are counted up to the latest order placed in the data, not
    current_date. Rebuilding the same data then gives the same stages, tests
    stay deterministic, and a paused pipeline does not age every customer
    into `churned`.

    Lifecycle rule, evaluated in this order (windows are vars):
      prospect     no completed order
      churned      last completed order more than churn_inactivity_days (60) ago
      at_risk      last completed order more than active_window_days (30) ago
      new          first completed order at most new_customer_window_days (30) ago
      reactivated  came back after a lapse (a completed order more than
                   churn_inactivity_days after the previous one) at most
                   new_customer_window_days ago: a returning customer gets
                   the same settling-in window as a new one
      active       otherwise: last completed order at most active_window_days ago
    Days are whole calendar days (UTC) between the order and the as-of. The
    lapse is churn_monthly's, so a customer counted there as reactivated in
    the as-of month is `reactivated` here (unless at risk again).
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

    select * from {{ ref('int_customers_unioned') }}

),

customer_homes as (

    select * from {{ ref('int_customer_home_stores') }}

),

orders as (

    select * from {{ ref('fct_orders') }}

),

feedback as (

    select * from {{ ref('stg_ordering__order_feedback') }}

),

identities as (

    select * from {{ ref('int_identities_stitched') }}

),

attributed_orders as (

    select * from {{ ref('int_orders_attributed') }}

),

lifetime_values as (

    select * from {{ ref('customer_lifetime_value') }}

),

clusters as (

    select * from {{ ref('customer_clusters') }}

),

as_of as (

    select as_of_at from {{ ref('int_as_of') }}

),

completed_orders as (

    select
        customer_id,
        placed_at,
        net_revenue,
        lag(placed_at) over (partition by customer_id order by placed_at, order_id)
            as previous_order_at

    from orders
    where is_completed

),

customer_orders as (

    select
        customer_id,
        min(placed_at) as first_order_at,
        max(placed_at) as last_order_at,
        count(*) as completed_orders,
        sum(net_revenue) as lifetime_net_revenue,
        max(
            case
                when {{ dbt.datediff('previous_order_at', 'placed_at', 'day') }}
                    > {{ churn_inactivity_days }}
                    then placed_at
            end
        ) as last_reactivated_at

    from completed_orders
    group by customer_id

),

latest_feedback as (

    select
        customer_id,
        created_at as latest_feedback_at,
        food_rating as latest_food_rating,
        price_rating as latest_price_rating,
        service_rating as latest_service_rating,
        nps_score as latest_nps_score,
        count(*) over (partition by customer_id) as feedback_responses,
        row_number() over (
            partition by customer_id order by created_at desc, feedback_id desc
        ) as recency_rank

    from feedback
    where customer_id is not null

),

stitched as (

    select
        customer_id,
        count(*) as stitched_identifiers

    from identities
    where customer_id is not null
    group by customer_id

),

-- The first touch before the first completed order: the session (within
-- attribution_window_days) that first brought the guest to that order.
acquisitions as (

    select
        customer_id,
        first_touch_channel as acquisition_touch_channel,
        first_touch_campaign as acquisition_campaign

    from attributed_orders
    where is_first_order

),

customers_with_orders as (

    select
        customers.customer_id,
        customers.source_system,
        customers.home_store_id,
        customer_homes.home_province,
        customers.preferred_platform,
        customers.acquisition_channel,
        customers.signed_up_at,
        customers.acquired_at,
        customers.has_email_consent,
        customers.has_sms_consent,
        customer_orders.first_order_at,
        customer_orders.last_order_at,
        customer_orders.last_reactivated_at,
        coalesce(customer_orders.completed_orders, 0) as completed_orders,
        coalesce(customer_orders.lifetime_net_revenue, 0) as lifetime_net_revenue,
        {{ dbt.datediff('customer_orders.first_order_at', 'as_of.as_of_at', 'day') }}
            as days_since_first_order,
        {{ dbt.datediff('customer_orders.last_order_at', 'as_of.as_of_at', 'day') }}
            as days_since_last_order,
        {{ dbt.datediff('customer_orders.last_reactivated_at', 'as_of.as_of_at', 'day') }}
            as days_since_reactivation,
        coalesce(latest_feedback.feedback_responses, 0) as feedback_responses,
        latest_feedback.latest_feedback_at,
        latest_feedback.latest_food_rating,
        latest_feedback.latest_price_rating,
        latest_feedback.latest_service_rating,
        latest_feedback.latest_nps_score,
        acquisitions.acquisition_touch_channel,
        acquisitions.acquisition_campaign,
        coalesce(stitched.stitched_identifiers, 0) as stitched_identifiers

    from customers
    left join customer_homes
        on customers.customer_id = customer_homes.customer_id
    left join customer_orders
        on customers.customer_id = customer_orders.customer_id
    left join latest_feedback
        on
            customers.customer_id = latest_feedback.customer_id
            and latest_feedback.recency_rank = 1
    left join acquisitions
        on customers.customer_id = acquisitions.customer_id
    left join stitched
        on customers.customer_id = stitched.customer_id
    cross join as_of
    where not customers.is_deleted

),

customers_scored as (

    select
        customers_with_orders.*,
        lifetime_values.churn_risk_band,
        lifetime_values.probability_alive,
        lifetime_values.expected_revenue_365d,
        clusters.cluster_name

    from customers_with_orders
    left join lifetime_values
        on customers_with_orders.customer_id = lifetime_values.customer_id
    left join clusters
        on customers_with_orders.customer_id = clusters.customer_id

),

final as (

    select
        -- ids
        customer_id,
        home_store_id,
        cast(stitched_identifiers as {{ dbt.type_bigint() }}) as stitched_identifiers,

        -- attributes
        source_system,
        home_province,
        preferred_platform,
        acquisition_channel,
        acquisition_touch_channel,
        acquisition_campaign,

        -- consent
        has_email_consent,
        has_sms_consent,

        -- dates and timestamps (UTC)
        signed_up_at,
        {{ utc_to_local_date('acquired_at') }} as acquisition_date,
        first_order_at,
        last_order_at,
        last_reactivated_at,

        -- order history, money in the chain's currency
        cast(completed_orders as {{ dbt.type_bigint() }}) as completed_orders,
        {{ chain_currency() }} as currency,
        {{ to_money('lifetime_net_revenue') }} as lifetime_net_revenue,
        case
            when completed_orders > 0
                then {{ to_money('round(lifetime_net_revenue / completed_orders, 2)') }}
        end as average_order_value,
        cast(days_since_last_order as {{ dbt.type_bigint() }}) as days_since_last_order,

        -- latest feedback
        cast(feedback_responses as {{ dbt.type_bigint() }}) as feedback_responses,
        latest_feedback_at,
        latest_food_rating,
        latest_price_rating,
        latest_service_rating,
        latest_nps_score,

        -- lifecycle
        case
            when completed_orders = 0 then 'prospect'
            when days_since_last_order > {{ churn_inactivity_days }} then 'churned'
            when days_since_last_order > {{ active_window_days }} then 'at_risk'
            when days_since_first_order <= {{ new_customer_window_days }} then 'new'
            when days_since_reactivation <= {{ new_customer_window_days }} then 'reactivated'
            else 'active'
        end as lifecycle_stage,

        -- analytics models
        churn_risk_band,
        probability_alive,
        expected_revenue_365d,
        cluster_name

    from customers_scored

)

select * from final
