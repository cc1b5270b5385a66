{#-
    Each order with the sessions that led to it. A touch is a session of the
    order's (stitched) customer that started within attribution_window_days
    before the order was placed, up to the placing instant; the first and the
    last touch are the earliest and latest of those by start time (ties by
    session_id). An order without any touch is credited to `direct/none`.
-#}
with

-- fct_orders' grain and revenue rule.
live_orders as (

    select * from {{ ref('int_orders_live') }}

),

sessions as (

    select * from {{ ref('int_sessions_sessionised') }}

),

first_orders as (

    select
        order_id,
        row_number() over (
            partition by customer_id order by placed_at asc, order_id asc
        ) = 1 as is_first_order
    from live_orders
    where is_completed

),

touches as (

    select
        live_orders.order_id,
        sessions.session_id,
        sessions.session_started_at,
        sessions.source,
        sessions.medium,
        sessions.utm_campaign,
        sessions.utm_content,
        row_number() over (
            partition by live_orders.order_id
            order by sessions.session_started_at asc, sessions.session_id asc
        ) as touch_from_first,
        row_number() over (
            partition by live_orders.order_id
            order by sessions.session_started_at desc, sessions.session_id desc
        ) as touch_from_last,
        count(*) over (partition by live_orders.order_id) as touch_sessions
    from live_orders
    inner join sessions
        on
            live_orders.customer_id = sessions.customer_id
            and live_orders.placed_at >= sessions.session_started_at
            and sessions.session_started_at >= {{ dbt.dateadd(
                'day', -1 * var('attribution_window_days'), 'live_orders.placed_at'
            ) }}

),

first_touches as (

    select * from touches
    where touch_from_first = 1

),

last_touches as (

    select * from touches
    where touch_from_last = 1

),

-- The session that sent the order's Order Completed call, if it arrived.
converting_sessions as (

    select
        order_id,
        min(session_id) as converting_session_id
    from sessions
    where order_id is not null
    group by order_id

),

final as (

    select
        live_orders.order_id,
        live_orders.customer_id,
        live_orders.store_id,
        live_orders.platform,
        live_orders.fulfilment_type,
        live_orders.status,
        live_orders.promo_code,
        live_orders.is_completed,
        live_orders.net_revenue,
        live_orders.total as order_total,
        live_orders.placed_at,
        live_orders.placed_date as order_date,
        converting_sessions.converting_session_id,
        first_touches.session_id as first_touch_session_id,
        first_touches.session_started_at as first_touch_at,
        first_touches.source as first_touch_source,
        first_touches.medium as first_touch_medium,
        first_touches.utm_campaign as first_touch_campaign,
        first_touches.utm_content as first_touch_content,
        last_touches.session_id as last_touch_session_id,
        last_touches.session_started_at as last_touch_at,
        last_touches.source as last_touch_source,
        last_touches.medium as last_touch_medium,
        last_touches.utm_campaign as last_touch_campaign,
        last_touches.utm_content as last_touch_content,
        coalesce(first_orders.is_first_order, false) as is_first_order,
        coalesce(first_touches.touch_sessions, 0) as touch_sessions,
        coalesce(first_touches.source || '/' || first_touches.medium, 'direct/none')
            as first_touch_channel,
        coalesce(last_touches.source || '/' || last_touches.medium, 'direct/none')
            as last_touch_channel
    from live_orders
    left join first_orders
        on live_orders.order_id = first_orders.order_id
    left join first_touches
        on live_orders.order_id = first_touches.order_id
    left join last_touches
        on live_orders.order_id = last_touches.order_id
    left join converting_sessions
        on live_orders.order_id = converting_sessions.order_id

)

select * from final
