{#-
    One row per customer with at least one completed order, per as-of kind:
    the behaviour the clusters are built from, counting the orders placed by
    that day.
      - latest (customer_features): as of the latest order placed in the data
        (customer_rfm's and dim_customers' as-of, so a rebuild of the same
        data gives the same features), and all the feedback; accounts that are
        not soft-deleted, as in dim_customers.
      - refit_day (int_customer_clusters_fitted): as of the last day of a
        cluster_refit_every_days step at least cluster_refit_settle_days
        before the latest, i.e. the latest such day whose ordinal (Python's
        date.toordinal(), 0001-01-01 being 1) is a multiple of the step, a
        Sunday with 7; a chain with no completed order by then is fitted as
        of the latest day. Settled, because the last days' data still
        changes: an order refunded two days after it was placed leaves the
        completed orders, an app event that arrives late moves an order's
        marketing touch, and fitted on the Sunday itself, the clusters were
        refitted on each of the next three days at 100,000 guests. The
        feedback submitted by that day's end, as a rating that comes later
        would change the fit's features after the fact. Accounts closed
        since count: a closure is no change in how anyone ordered that week,
        and with it the week's fit would change, and its segments' names,
        with every account closed. An erased guest's orders are gone from
        the lake, and so from here. A week of new days then shares one fit,
        and a full rebuild fits on what the daily builds fitted on.

    Completed orders only (fct_orders' revenue rule), so every share has the
    customer's completed orders (or their items) as denominator and lies in
    [0, 1]:
      - RFM: recency_days, frequency_orders, monetary_net_revenue, plus
        tenure and average order value;
      - order mix: items, order shares per fulfilment type, platform and
        day-part, and the share of orders
        with a marketing touch (their last session within
        attribution_window_days before the order came from paid search,
        paid social or e-mail: int_orders_attributed, by the campaign marts'
        channel rule, macros/traffic_channel.sql);
      - promo use: share of orders with a promo code;
      - feedback: responses per order and mean ratings (null without any).

    Day-parts are in the local time of the store the order was placed at:
    the zone of its province in `[chain] province_timezones`, else the
    chain's (macros/time_zones.sql, store_timezone), with the zone's
    daylight saving.

    The share of each menu category is int_customer_menu_mix_as_of's, one
    row per category: the categories are the chain's menu, not columns.
-#}

{%- set settle_days = var('cluster_refit_settle_days') | int %}

with

-- Staging, not dim_customers: dim_customers carries the cluster built from
-- this table.
customers as (

    select * from {{ ref('int_customers_unioned') }}

),

orders as (

    select * from {{ ref('fct_orders') }}

),

order_items as (

    select * from {{ ref('fct_order_items') }}

),

attributed_orders as (

    select * from {{ ref('int_orders_attributed') }}

),

feedback as (

    select * from {{ ref('stg_ordering__order_feedback') }}

),

latest as (

    select as_of_date from {{ ref('int_as_of') }}

),

first_completed_order as (

    select min(placed_date) as first_order_date
    from orders
    where is_completed

),

-- The day the week's data has settled: late app events and refunds change
-- the days just before the latest, and a fit on them would change with them.
settled as (

    select
        latest.as_of_date,
        first_completed_order.first_order_date,
        cast(
            {{ dbt.dateadd('day', -1 * settle_days, 'latest.as_of_date') }} as date
        ) as settled_date

    from latest
    cross join first_completed_order

),

-- The ordinal is days since 0001-01-01, plus one.
days_into_step as (

    select
        as_of_date,
        first_order_date,
        settled_date,
        (
            {{ dbt.datediff("cast('0001-01-01' as date)", 'settled_date', 'day') }} + 1
        ) % {{ var('cluster_refit_every_days') | int }} as days_since_step_end

    from settled

),

refit_step_end as (

    select
        as_of_date,
        first_order_date,
        cast(
            {{ dbt.dateadd('day', '-1 * days_since_step_end', 'settled_date') }} as date
        ) as step_end_date

    from days_into_step

),

refit_day as (

    select
        case
            when step_end_date >= first_order_date then step_end_date
            else as_of_date
        end as as_of_date

    from refit_step_end

),

as_of as (

    select
        'latest' as as_of_kind,
        as_of_date

    from latest

    union all

    select
        'refit_day' as as_of_kind,
        as_of_date

    from refit_day

),

completed_orders as (

    select
        as_of.as_of_kind,
        orders.order_id,
        orders.customer_id,
        orders.platform,
        orders.fulfilment_type,
        orders.has_promo,
        orders.net_revenue,
        orders.placed_date,
        orders.placed_at,
        {{ store_timezone('orders.province') }} as store_timezone,
        {{ traffic_channel(
            'attributed_orders.last_touch_source', 'attributed_orders.last_touch_medium'
        ) }} in {{ marketing_channels() }} as has_marketing_touch

    from orders
    inner join customers
        on orders.customer_id = customers.customer_id
    inner join as_of
        on orders.placed_date <= as_of.as_of_date
    left join attributed_orders
        on orders.order_id = attributed_orders.order_id
    where
        orders.is_completed
        and (as_of.as_of_kind = 'refit_day' or not customers.is_deleted)

),

local_orders as (

    select
        *,
        extract(hour from {{ utc_to_zone_timestamp('placed_at', 'store_timezone') }}) as local_hour

    from completed_orders

),

order_summary as (

    select
        as_of_kind,
        customer_id,
        count(*) as frequency_orders,
        sum(net_revenue) as monetary_net_revenue,
        min(placed_date) as first_order_date,
        max(placed_date) as last_order_date,
        avg(case when fulfilment_type = 'delivery' then 1.0 else 0.0 end) as delivery_order_share,
        avg(case when fulfilment_type = 'pickup' then 1.0 else 0.0 end) as pickup_order_share,
        avg(case when fulfilment_type = 'dine_in' then 1.0 else 0.0 end) as dine_in_order_share,
        avg(case when platform = 'app' then 1.0 else 0.0 end) as app_order_share,
        avg(case when local_hour < 11 then 1.0 else 0.0 end) as morning_order_share,
        avg(case when local_hour >= 11 and local_hour < 15 then 1.0 else 0.0 end)
            as lunch_order_share,
        avg(case when local_hour >= 15 and local_hour < 18 then 1.0 else 0.0 end)
            as afternoon_order_share,
        avg(case when local_hour >= 18 then 1.0 else 0.0 end) as evening_order_share,
        avg(case when has_marketing_touch then 1.0 else 0.0 end) as marketing_touch_order_share,
        avg(case when has_promo then 1.0 else 0.0 end) as promo_order_share

    from local_orders
    group by as_of_kind, customer_id

),

item_mix as (

    select
        completed_orders.as_of_kind,
        order_items.customer_id,
        sum(order_items.quantity) as items

    from order_items
    inner join completed_orders
        on order_items.order_id = completed_orders.order_id
    group by completed_orders.as_of_kind, order_items.customer_id

),

-- Feedback on any of the customer's orders (a rating is about the whole
-- order, so one response per order at most is the norm): all of it for the
-- latest day, the data being as of now, and what was submitted by the refit
-- day's end in the chain's time zone for that day.
customer_feedback as (

    select
        as_of.as_of_kind,
        feedback.customer_id,
        count(*) as feedback_responses,
        avg(
            cast(feedback.food_rating + feedback.price_rating + feedback.service_rating as double)
            / 3
        ) as avg_rating,
        avg(feedback.nps_score) as avg_nps_score

    from feedback
    inner join as_of
        on
            as_of.as_of_kind = 'latest'
            or {{ utc_to_local_date('feedback.submitted_at') }} <= as_of.as_of_date
    where feedback.customer_id is not null
    group by as_of.as_of_kind, feedback.customer_id

),

final as (

    select
        -- ids
        order_summary.customer_id,

        -- as of
        as_of.as_of_kind,
        as_of.as_of_date,

        -- RFM
        order_summary.first_order_date,
        order_summary.last_order_date,
        cast(
            {{ dbt.datediff('order_summary.last_order_date', 'as_of.as_of_date', 'day') }}
            as {{ dbt.type_bigint() }}
        ) as recency_days,
        cast(
            {{ dbt.datediff('order_summary.first_order_date', 'as_of.as_of_date', 'day') }}
            as {{ dbt.type_bigint() }}
        ) as tenure_days,
        cast(order_summary.frequency_orders as {{ dbt.type_bigint() }}) as frequency_orders,
        {{ to_money('order_summary.monetary_net_revenue') }} as monetary_net_revenue,
        {{ to_money('order_summary.monetary_net_revenue / order_summary.frequency_orders') }}
            as average_order_value,

        -- order mix: items (by category in int_customer_menu_mix_as_of)
        cast(coalesce(item_mix.items, 0) as {{ dbt.type_bigint() }}) as items,

        -- order mix: fulfilment, platform, day-part, marketing touch; promo use
        cast(order_summary.delivery_order_share as {{ dbt.type_float() }}) as delivery_order_share,
        cast(order_summary.pickup_order_share as {{ dbt.type_float() }}) as pickup_order_share,
        cast(order_summary.dine_in_order_share as {{ dbt.type_float() }}) as dine_in_order_share,
        cast(order_summary.app_order_share as {{ dbt.type_float() }}) as app_order_share,
        cast(order_summary.morning_order_share as {{ dbt.type_float() }}) as morning_order_share,
        cast(order_summary.lunch_order_share as {{ dbt.type_float() }}) as lunch_order_share,
        cast(order_summary.afternoon_order_share as {{ dbt.type_float() }})
            as afternoon_order_share,
        cast(order_summary.evening_order_share as {{ dbt.type_float() }}) as evening_order_share,
        cast(order_summary.marketing_touch_order_share as {{ dbt.type_float() }})
            as marketing_touch_order_share,
        cast(order_summary.promo_order_share as {{ dbt.type_float() }}) as promo_order_share,

        -- feedback
        cast(coalesce(customer_feedback.feedback_responses, 0) as {{ dbt.type_bigint() }})
            as feedback_responses,
        cast(
            cast(coalesce(customer_feedback.feedback_responses, 0) as double)
            / order_summary.frequency_orders
            as {{ dbt.type_float() }}
        ) as feedback_per_order,
        cast(customer_feedback.avg_rating as {{ dbt.type_float() }}) as avg_rating,
        cast(customer_feedback.avg_nps_score as {{ dbt.type_float() }}) as avg_nps_score

    from order_summary
    inner join as_of
        on order_summary.as_of_kind = as_of.as_of_kind
    left join item_mix
        on
            order_summary.as_of_kind = item_mix.as_of_kind
            and order_summary.customer_id = item_mix.customer_id
    left join customer_feedback
        on
            order_summary.as_of_kind = customer_feedback.as_of_kind
            and order_summary.customer_id = customer_feedback.customer_id

)

select * from final
