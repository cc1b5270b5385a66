{#-
    Sessions (int_sessions_split) with their owner: the userId a session's
    calls carried, else the customer its anonymous id is stitched to, so
    anonymous browsing before a sign-up or login counts for that guest.
    Rebuilt whole each run, a join and a date: a sign-up today re-owns
    sessions of any day, and the day a session belongs to is the chain's
    time zone's, which int_sessions_split does not keep.
-#}
with

sessions as (

    select * from {{ ref('int_sessions_split') }}

),

identities as (

    select * from {{ ref('int_identities_stitched') }}
    where identifier_type = 'anonymous_id'

),

final as (

    select
        sessions.session_id,
        sessions.anonymous_id,
        coalesce(sessions.customer_id, identities.customer_id) as customer_id,
        sessions.platform,
        sessions.device_id,
        sessions.session_started_at,
        sessions.session_ended_at,
        {{ utc_to_local_date('sessions.session_started_at') }} as session_date,
        sessions.duration_seconds,
        sessions.source,
        sessions.medium,
        sessions.utm_source,
        sessions.utm_medium,
        sessions.utm_campaign,
        sessions.utm_content,
        sessions.utm_term,
        sessions.click_id,
        sessions.referrer,
        sessions.landing_page,
        sessions.events,
        sessions.page_views,
        sessions.screen_views,
        sessions.product_views,
        sessions.product_adds,
        sessions.has_viewed_product,
        sessions.has_added_product,
        sessions.has_started_checkout,
        sessions.has_signed_up,
        sessions.has_completed_order,
        sessions.order_id
    from sessions
    left join identities
        on sessions.anonymous_id = identities.identifier

)

select * from final
