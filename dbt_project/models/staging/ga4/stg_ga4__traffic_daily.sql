with

source as (

    select * from {{ lake_source('ga4', 'traffic_daily') }}

),

final as (

    select
        -- ids
        report_row_id,

        -- dimensions, as GA4 labels them (so figures reconcile with the GA4 UI)
        session_source,
        session_medium,
        session_campaign_name,
        device_category,
        region,

        -- counts
        sessions,
        engaged_sessions,
        total_users,
        new_users,
        key_events,

        -- money, in the chain's currency
        {{ to_money('purchase_revenue') }} as purchase_revenue,

        -- dates (property time zone, Asia/Jakarta)
        date as report_date

    from source

)

select * from final
