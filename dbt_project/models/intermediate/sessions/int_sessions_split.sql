{#-
    App and web sessions: a device's (anonymous id's) calls, in time order,
    with a new session whenever session_inactivity_minutes pass without one.
    No date boundary: a session that runs over midnight stays one session and
    belongs to the date it started. Attributes of the session's start
    (campaign, referrer, landing page) come from its first call. Who owns a
    session is int_sessions_sessionised's: a sign-up re-owns old sessions,
    and that must not make this table rebuild them.

    Incremental by device: a run sessionises again each anonymous id (a
    browser or app install, on each platform it used) with calls from a lake
    load newer than the newest this table holds, from its first session that
    a new call can join or merge with (one ending less than
    session_inactivity_minutes before the earliest new call, or later), so a
    late call that joins, merges or splits sessions leaves what a full
    refresh would. The run returns the sessions from there on, which replace
    the stored ones from the same start (get_incremental_resumed_sessions_sql,
    macros/sessions.sql); its earlier sessions and other devices' stay as
    they are. A day's run reads the devices' recent calls, not their year:
    at 100,000 guests, 54,000 calls instead of 517,000. The lake's load ids
    are dlt's (a timestamp, as text: they sort as the loads ran; the newest
    is read first, macros/sessions.sql), and the lake only appends calls;
    forget (regulars/privacy/forget.py) deletes a guest's rows here as
    everywhere. A changed session_inactivity_minutes sessionises every
    device again. On Spark, a table built whole (dbt_project.yml).
-#}
{{
    config(
        incremental_strategy='resumed_sessions',
        on_schema_change='fail',
    )
}}

{%- set sessionise_every_device = true %}
{#- A device's calls in time order; the message id orders calls of the same instant. #}
{%- set call_order = ['occurred_at', 'message_id'] %}
{%- if is_incremental() %}
    {%- set newest_load_id = newest_sessionised_load() %}
    {%- set sessionise_every_device = (
        newest_load_id is none
        or sessionised_inactivity_minutes() | int != var('session_inactivity_minutes') | int
    ) %}
{%- endif %}

with

{% if not sessionise_every_device %}

    -- Each device and platform with calls from a newer load, and the earliest
    -- of those calls. messages' conditions are written again here, not shared
    -- through a CTE: DuckDB materialised one that both read, every session
    -- call of the lake, and a day's run at 100,000 guests took 2.4 to 3.8 s
    -- instead of 0.13 s.
    new_calls as (

        select
            anonymous_id,
            platform,
            min(occurred_at) as first_new_call_at
        from {{ ref('stg_events__messages') }}
        where
            dlt_load_id > '{{ newest_load_id }}'
            and anonymous_id is not null
            and platform in ('app', 'web')
            and occurred_at is not null
        group by anonymous_id, platform

    ),

    stored_sessions as (

        select
            anonymous_id,
            platform,
            session_started_at,
            session_ended_at
        from {{ this }}
        where anonymous_id in (select new_calls.anonymous_id from new_calls)

    ),

    -- Where sessionising starts again: the start of the first stored session
    -- a new call can join or merge with (one that ends less than the
    -- inactivity gap before the earliest new call, or later), or that call
    -- if it comes first. The sessions before it ended a gap or more before
    -- every new call, so no new call changes them, and the first call from
    -- there starts a session as it does over the whole history.
    resume_points as (

        select
            new_calls.anonymous_id,
            new_calls.platform,
            case
                when min(stored_sessions.session_started_at) < new_calls.first_new_call_at
                    then min(stored_sessions.session_started_at)
                else new_calls.first_new_call_at
            end as resume_at
        from new_calls
        left join stored_sessions
            on
                new_calls.anonymous_id = stored_sessions.anonymous_id
                and new_calls.platform = stored_sessions.platform
                and stored_sessions.session_ended_at > {{ dbt.dateadd(
                    'minute',
                    -1 * (var('session_inactivity_minutes') | int),
                    'new_calls.first_new_call_at',
                ) }}
        group by new_calls.anonymous_id, new_calls.platform, new_calls.first_new_call_at

    ),

{% endif %}

messages as (

    select stg_events__messages.*
    from {{ ref('stg_events__messages') }} as stg_events__messages
    {% if not sessionise_every_device %}
        -- Only the calls from where each device's sessions start again.
        inner join resume_points
            on
                stg_events__messages.anonymous_id = resume_points.anonymous_id
                and stg_events__messages.platform = resume_points.platform
                and stg_events__messages.occurred_at >= resume_points.resume_at
    {% endif %}
    -- A session is a device's: server-side calls with only a userId have none.
    where
        stg_events__messages.anonymous_id is not null
        and stg_events__messages.platform in ('app', 'web')
        and stg_events__messages.occurred_at is not null

),

events as (

    select
        message_id,
        anonymous_id,
        platform,
        customer_id,
        device_id,
        message_type,
        event_name,
        page_path,
        page_url,
        page_referrer,
        screen_name,
        utm_source,
        utm_medium,
        utm_campaign,
        utm_content,
        utm_term,
        gclid,
        order_id,
        occurred_at,
        dlt_load_id,
        coalesce(gclid, fbclid) as click_id,
        lag(occurred_at) over (
            partition by anonymous_id, platform order by occurred_at asc, message_id asc
        ) as previous_occurred_at
    from messages

),

session_starts as (

    select
        *,
        case
            when previous_occurred_at is null then 1
            when
                occurred_at >= {{ dbt.dateadd(
                    'minute', var('session_inactivity_minutes'), 'previous_occurred_at'
                ) }}
                then 1
            else 0
        end as is_session_start
    from events

),

numbered as (

    select
        *,
        sum(is_session_start) over (
            partition by anonymous_id, platform
            order by occurred_at asc, message_id asc
            rows between unbounded preceding and current row
        ) as session_number
    from session_starts

),

sessions as (

    select
        anonymous_id,
        platform,
        session_number,
        min(occurred_at) as session_started_at,
        max(occurred_at) as session_ended_at,
        min(device_id) as device_id,
        {{ first_non_null_in_group('customer_id', call_order) }} as session_customer_id,
        {{ first_non_null_in_group('click_id', call_order) }} as click_id,
        {{ first_non_null_in_group('order_id', call_order) }} as order_id,
        max(case when is_session_start = 1 then utm_source end) as utm_source,
        max(case when is_session_start = 1 then utm_medium end) as utm_medium,
        max(case when is_session_start = 1 then utm_campaign end) as utm_campaign,
        max(case when is_session_start = 1 then utm_content end) as utm_content,
        max(case when is_session_start = 1 then utm_term end) as utm_term,
        max(case when is_session_start = 1 then gclid end) as landing_gclid,
        max(case when is_session_start = 1 then page_referrer end) as referrer,
        max(case when is_session_start = 1 then page_url end) as landing_url,
        {{ first_non_null_in_group(
            "case when message_type in ('page', 'screen') then coalesce(page_path, screen_name) end",
            call_order,
        ) }} as landing_page,
        max(dlt_load_id) as last_dlt_load_id,
        count(*) as events,
        sum(case when message_type = 'page' then 1 else 0 end) as page_views,
        sum(case when message_type = 'screen' then 1 else 0 end) as screen_views,
        sum(case when event_name = 'Product Viewed' then 1 else 0 end) as product_views,
        sum(case when event_name = 'Product Added' then 1 else 0 end) as product_adds,
        sum(case when event_name = 'Checkout Started' then 1 else 0 end) as checkouts_started,
        sum(case when event_name = 'Order Completed' then 1 else 0 end) as orders_completed,
        sum(case when event_name = 'Signed Up' then 1 else 0 end) as sign_ups
    from numbered
    group by anonymous_id, platform, session_number

),

-- Where the session came from: the utm tags of its first call; without them
-- a search engine or another site in the referrer (organic / referral), a
-- Google click id (cpc), else direct.
sourced as (

    select
        *,
        nullif(regexp_extract(referrer, '^[a-zA-Z]+://([^/:?#]+)', 1), '') as referrer_host,
        nullif(regexp_extract(landing_url, '^[a-zA-Z]+://([^/:?#]+)', 1), '') as landing_host
    from sessions

),

classified as (

    select
        *,
        case
            when referrer_host is null or referrer_host = landing_host then null
            when referrer_host like '%google.%' then 'google'
            when referrer_host like '%bing.%' then 'bing'
            when referrer_host like '%yahoo.%' then 'yahoo'
            when referrer_host like '%duckduckgo.%' then 'duckduckgo'
        end as search_engine,
        referrer_host is not null and referrer_host != coalesce(landing_host, '')
            as has_external_referrer
    from sourced

),

final as (

    select
        {{ dbt.hash(
            "anonymous_id || '|' || platform || '|' || cast(session_started_at as "
            ~ dbt.type_string() ~ ")"
        ) }} as session_id,
        anonymous_id,
        -- The userId the session's calls carried (the first); stitching is
        -- int_sessions_sessionised's.
        session_customer_id as customer_id,
        platform,
        device_id,
        session_started_at,
        session_ended_at,
        {{ dbt.datediff('session_started_at', 'session_ended_at', 'second') }}
            as duration_seconds,
        case
            when utm_source is not null then utm_source
            when landing_gclid is not null then 'google'
            when search_engine is not null then search_engine
            when has_external_referrer
                then regexp_replace(referrer_host, {{ regex('^www\\.') }}, '')
            else 'direct'
        end as source,
        case
            when utm_source is not null then coalesce(utm_medium, 'not set')
            when landing_gclid is not null then 'cpc'
            when search_engine is not null then 'organic'
            when has_external_referrer then 'referral'
            else 'none'
        end as medium,
        utm_source,
        utm_medium,
        utm_campaign,
        utm_content,
        utm_term,
        click_id,
        referrer,
        landing_page,
        events,
        page_views,
        screen_views,
        product_views,
        product_adds,
        product_views > 0 as has_viewed_product,
        product_adds > 0 as has_added_product,
        checkouts_started > 0 as has_started_checkout,
        sign_ups > 0 as has_signed_up,
        orders_completed > 0 as has_completed_order,
        order_id,
        last_dlt_load_id,
        {{ var('session_inactivity_minutes') }} as inactivity_minutes
    from classified

)

select * from final
