{#-
    Incremental, delete+insert by session_date: a run rewrites whole days.
    Which days: a Dagster partition run its window's days (macros/
    partition_window.sql), a plain run the last event_lookback_days before the newest
    day already in the table (app events arrive up to three days late); and
    either, when the table exists, any older day where a stored session no
    longer matches its recomputed self (its stitched customer, its calls, its
    converted order's status) or where a session is new or gone. A guest who
    signs up or logs in today re-owns anonymous sessions from days or weeks
    ago; those days are rewritten too, so an incremental run leaves the same
    rows as a full refresh.
-#}
{{
    config(
        materialized='incremental',
        incremental_strategy=day_partition_strategy(),
        unique_key='session_date',
        partition_by=day_partition_by('session_date'),
        tags=['day_partitioned'],
        on_schema_change='fail',
    )
}}

{%- set lookback_interval = -1 * var('event_lookback_days') %}
{%- set has_window = has_partition_window() %}

with

sessions as (

    select * from {{ ref('int_sessions_sessionised') }}

),

orders as (

    select * from {{ ref('stg_ordering__orders') }}

),

converted_orders as (

    select
        order_id,
        status,
        -- fct_orders' revenue rule; this import keeps soft-deleted orders, which earn 0.
        case
            when is_deleted then {{ to_money(0) }}
            else {{ net_revenue('status', 'total') }}
        end as net_revenue
    from orders

),

enriched as (

    select
        sessions.*,
        converted_orders.status as converted_order_status,
        converted_orders.net_revenue as converted_net_revenue
    from sessions
    left join converted_orders
        on sessions.order_id = converted_orders.order_id

),

{% if is_incremental() %}

    existing as (

        select * from {{ this }}

    ),

    -- Older days whose stored sessions changed after the fact. A session
    -- whose day moved (the chain's time zone was corrected) changes both
    -- days: the one it leaves and the one it joins.
    changed_sessions as (

        select
            enriched.session_date as recomputed_date,
            existing.session_date as stored_date
        from enriched
        full outer join existing
            on enriched.session_id = existing.session_id
        where
            enriched.session_id is null
            or existing.session_id is null
            or enriched.session_date != existing.session_date
            or enriched.customer_id is distinct from existing.customer_id
            or enriched.events != existing.events
            or enriched.session_ended_at != existing.session_ended_at
            or enriched.order_id is distinct from existing.order_id
            or enriched.converted_order_status is distinct from existing.converted_order_status

    ),

    changed_dates as (

        select changed.session_date
        from (
            select recomputed_date as session_date from changed_sessions
            union
            select stored_date as session_date from changed_sessions
        ) as changed
        where
            changed.session_date is not null
        {% if has_window %}
            -- A partition run heals the days before its window, never later ones.
            and changed.session_date < cast('{{ partition_window_bound("window_end") }}' as date)
        {% endif %}

    ),

{% endif %}

{% if has_window %}

    -- A Dagster partition (or backfill) run rewrites its window's days.
    window_dates as (

        select distinct session_date
        from enriched
        where {{ in_partition_window('session_date') }}

    ),

{% elif is_incremental() %}

    -- A plain run rewrites the days from event_lookback_days before the
    -- newest day built (app events arrive up to three days late).
    lookback_start as (

        select {{ dbt.dateadd('day', lookback_interval, 'max(session_date)') }} as first_date
        from existing

    ),

    window_dates as (

        select distinct enriched.session_date
        from enriched
        inner join lookback_start
            on enriched.session_date >= lookback_start.first_date

    ),

{% endif %}

{% if has_window or is_incremental() %}

    dates_to_rewrite as (

        select session_date from window_dates
        {% if is_incremental() %}
            union
            select session_date from changed_dates
        {% endif %}

    ),

{% endif %}

final as (

    select
        enriched.session_id,
        enriched.anonymous_id,
        enriched.customer_id,
        enriched.platform,
        enriched.session_started_at,
        enriched.session_ended_at,
        enriched.session_date,
        cast(enriched.duration_seconds as {{ dbt.type_bigint() }}) as duration_seconds,
        enriched.source,
        enriched.medium,
        enriched.source || '/' || enriched.medium as channel,
        enriched.utm_source,
        enriched.utm_medium,
        enriched.utm_campaign,
        enriched.utm_content,
        enriched.utm_term,
        enriched.click_id,
        enriched.referrer,
        enriched.landing_page,
        cast(enriched.events as {{ dbt.type_bigint() }}) as events,
        cast(enriched.page_views as {{ dbt.type_bigint() }}) as page_views,
        cast(enriched.screen_views as {{ dbt.type_bigint() }}) as screen_views,
        cast(enriched.product_views as {{ dbt.type_bigint() }}) as product_views,
        cast(enriched.product_adds as {{ dbt.type_bigint() }}) as product_adds,
        enriched.customer_id is not null as is_identified,
        enriched.has_viewed_product,
        enriched.has_added_product,
        enriched.has_started_checkout,
        enriched.has_signed_up,
        enriched.has_completed_order,
        enriched.order_id,
        enriched.converted_order_status,
        enriched.converted_net_revenue
    from enriched
    {% if has_window or is_incremental() %}
        where enriched.session_date in (select dates_to_rewrite.session_date from dates_to_rewrite)
    {% endif %}

)

select * from final
