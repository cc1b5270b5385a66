{#-
    One row per day, channel and campaign: what was spent, what it reached,
    the sessions it brought (the platform's own and GA4's), and the orders,
    revenue and new customers credited to it.

    Channel and campaign key of traffic: int_campaign_touches_keyed. Meta's
    rows take their channel from their publisher_platform by the same macro
    (macros/meta_ads_channel.sql), so an Instagram placement's spend and an
    Instagram click's session meet on instagram_ads, and Facebook's on
    facebook_ads; their key is the campaign id, and the name shown is the
    campaign's latest. Email and SMS sends are keyed by the utm_campaign
    their email links carry, seen on clicked events, else
    `customerio-<newsletter id>` (SMS links carry no utm tags; an email
    campaign nobody clicked shows none).

    Dates: Meta and GA4 report in Asia/Jakarta days, sessions and orders in
    UTC days. The chain's day (stores 09:00-22:00, traffic 07:30-23:30 WIB)
    falls within one UTC date, so both name the same day.
-#}
with

touches as (

    select * from {{ ref('int_campaign_touches_keyed') }}

),

insights as (

    select * from {{ ref('stg_meta_ads__insights') }}

),

meta_campaigns as (

    select * from {{ ref('stg_meta_ads__campaigns') }}

),

messages as (

    select * from {{ ref('fct_messages') }}

),

delivery_events as (

    select * from {{ ref('stg_messaging__delivery_events') }}

),

-- Meta rows with their channel: the placement's platform, always a Meta one.
insights_channels as (

    select
        *,
        coalesce({{ meta_ads_channel('publisher_platform') }}, 'meta_other_ads') as channel

    from insights

),

traffic_daily as (

    select
        report_date,
        channel,
        campaign_key,
        max(campaign_id) as campaign_id,
        max(campaign_name) as campaign_name,
        sum(sessions) as sessions,
        sum(ga4_sessions) as ga4_sessions,
        sum(ga4_engaged_sessions) as ga4_engaged_sessions,
        sum(ga4_new_users) as ga4_new_users,
        sum(ga4_key_events) as ga4_key_events,
        sum(ga4_purchase_revenue) as ga4_purchase_revenue,
        sum(orders_last_touch) as orders_last_touch,
        sum(net_revenue_last_touch) as net_revenue_last_touch,
        sum(new_customers_last_touch) as new_customers_last_touch,
        sum(orders_first_touch) as orders_first_touch,
        sum(net_revenue_first_touch) as net_revenue_first_touch,
        sum(new_customers_first_touch) as new_customers_first_touch

    from touches
    group by report_date, channel, campaign_key

),

ads_daily as (

    select
        report_date,
        channel,
        coalesce(campaign_id, '(none)') as campaign_key,
        max(campaign_id) as campaign_id,
        sum(spend) as spend,
        sum(impressions) as impressions,
        sum(reach) as reach,
        sum(clicks) as clicks,
        sum(purchases) as meta_purchases,
        sum(purchase_value) as meta_purchase_value

    from insights_channels
    group by
        report_date,
        channel,
        coalesce(campaign_id, '(none)')

),

-- A campaign's name is its latest: the campaign object's, else the one it
-- last reported under.
reported_campaign_names as (

    select
        campaign_id,
        campaign_name

    from insights
    where campaign_id is not null
    qualify row_number() over (
            partition by campaign_id order by report_date desc, campaign_name desc
        ) = 1

),

meta_campaign_names as (

    select
        coalesce(meta_campaigns.campaign_id, reported_campaign_names.campaign_id) as campaign_id,
        coalesce(meta_campaigns.campaign_name, reported_campaign_names.campaign_name)
            as campaign_name

    from reported_campaign_names
    full outer join meta_campaigns
        on reported_campaign_names.campaign_id = meta_campaigns.campaign_id

),

message_campaign_links as (

    select
        campaign_id,
        min(link_utm_campaign) as link_utm_campaign

    from delivery_events
    where link_utm_campaign is not null
    group by campaign_id

),

messages_daily as (

    select
        messages.campaign_sent_date as report_date,
        messages.channel,
        cast(messages.campaign_id as {{ dbt.type_string() }}) as campaign_id,
        coalesce(
            message_campaign_links.link_utm_campaign,
            'customerio-' || cast(messages.campaign_id as {{ dbt.type_string() }})
        ) as campaign_key,
        max(message_campaign_links.link_utm_campaign) as campaign_name,
        count(case when messages.is_sent then 1 end) as messages_sent,
        count(case when messages.is_delivered then 1 end) as messages_delivered,
        count(case when messages.is_opened then 1 end) as messages_opened,
        count(case when messages.is_clicked then 1 end) as messages_clicked,
        sum(case when messages.is_delivered then messages.orders_in_window else 0 end)
            as message_orders,
        sum(
            case
                when messages.is_delivered then messages.net_revenue_in_window
                else {{ to_money(0) }}
            end
        ) as message_net_revenue

    from messages
    left join message_campaign_links
        on messages.campaign_id = message_campaign_links.campaign_id
    group by
        messages.campaign_sent_date,
        messages.channel,
        messages.campaign_id,
        message_campaign_links.link_utm_campaign

),

spine as (

    select
        report_date,
        channel,
        campaign_key
    from traffic_daily
    union
    select
        report_date,
        channel,
        campaign_key
    from ads_daily
    union
    select
        report_date,
        channel,
        campaign_key
    from messages_daily

),

joined as (

    select
        spine.report_date,
        spine.channel,
        spine.campaign_key,
        coalesce(
            ads_daily.campaign_id, messages_daily.campaign_id, traffic_daily.campaign_id
        ) as campaign_id,
        coalesce(
            meta_campaign_names.campaign_name,
            messages_daily.campaign_name,
            traffic_daily.campaign_name
        ) as campaign_name,

        -- Cost and reach exist for Meta's channels only: the lake has no cost
        -- source for search, email or SMS, so they stay null there, not 0.
        case
            when spine.channel in {{ meta_ads_channels() }}
                then coalesce(ads_daily.spend, 0)
        end as spend,
        case
            when spine.channel in {{ meta_ads_channels() }}
                then coalesce(ads_daily.impressions, 0)
        end as impressions,
        case
            when spine.channel in {{ meta_ads_channels() }}
                then coalesce(ads_daily.reach, 0)
        end as reach,
        case
            when spine.channel in {{ meta_ads_channels() }}
                then coalesce(ads_daily.clicks, 0)
        end as clicks,
        case
            when spine.channel in {{ meta_ads_channels() }}
                then coalesce(ads_daily.meta_purchases, 0)
        end as meta_purchases,
        case
            when spine.channel in {{ meta_ads_channels() }}
                then coalesce(ads_daily.meta_purchase_value, 0)
        end as meta_purchase_value,

        coalesce(messages_daily.messages_sent, 0) as messages_sent,
        coalesce(messages_daily.messages_delivered, 0) as messages_delivered,
        coalesce(messages_daily.messages_opened, 0) as messages_opened,
        coalesce(messages_daily.messages_clicked, 0) as messages_clicked,
        coalesce(messages_daily.message_orders, 0) as message_orders,
        coalesce(messages_daily.message_net_revenue, 0) as message_net_revenue,

        coalesce(traffic_daily.sessions, 0) as sessions,
        coalesce(traffic_daily.ga4_sessions, 0) as ga4_sessions,
        coalesce(traffic_daily.ga4_engaged_sessions, 0) as ga4_engaged_sessions,
        coalesce(traffic_daily.ga4_new_users, 0) as ga4_new_users,
        coalesce(traffic_daily.ga4_key_events, 0) as ga4_key_events,
        coalesce(traffic_daily.ga4_purchase_revenue, 0) as ga4_purchase_revenue,
        coalesce(traffic_daily.orders_last_touch, 0) as orders_last_touch,
        coalesce(traffic_daily.net_revenue_last_touch, 0) as net_revenue_last_touch,
        coalesce(traffic_daily.new_customers_last_touch, 0) as new_customers_last_touch,
        coalesce(traffic_daily.orders_first_touch, 0) as orders_first_touch,
        coalesce(traffic_daily.net_revenue_first_touch, 0) as net_revenue_first_touch,
        coalesce(traffic_daily.new_customers_first_touch, 0) as new_customers_first_touch

    from spine
    left join traffic_daily
        on
            spine.report_date = traffic_daily.report_date
            and spine.channel = traffic_daily.channel
            and spine.campaign_key = traffic_daily.campaign_key
    left join ads_daily
        on
            spine.report_date = ads_daily.report_date
            and spine.channel = ads_daily.channel
            and spine.campaign_key = ads_daily.campaign_key
    left join messages_daily
        on
            spine.report_date = messages_daily.report_date
            and spine.channel = messages_daily.channel
            and spine.campaign_key = messages_daily.campaign_key
    left join meta_campaign_names
        on
            spine.channel in {{ meta_ads_channels() }}
            and spine.campaign_key = meta_campaign_names.campaign_id

),

final as (

    select
        -- ids
        cast(report_date as {{ dbt.type_string() }}) || '|' || channel || '|' || campaign_key
            as campaign_day_key,
        campaign_key,
        campaign_id,

        -- attributes
        channel,
        campaign_name,
        {{ chain_currency() }} as currency,

        -- cost and delivery (Meta)
        cast(spend as {{ type_money() }}) as spend,
        cast(impressions as {{ dbt.type_bigint() }}) as impressions,
        cast(reach as {{ dbt.type_bigint() }}) as reach,
        cast(clicks as {{ dbt.type_bigint() }}) as clicks,
        cast(clicks as double) / nullif(impressions, 0) as ctr,
        cast(spend / nullif(clicks, 0) as {{ type_money() }}) as cpc,
        cast(meta_purchases as {{ dbt.type_bigint() }}) as meta_purchases,
        cast(meta_purchase_value as {{ type_money() }}) as meta_purchase_value,

        -- messages (email and SMS sends)
        cast(messages_sent as {{ dbt.type_bigint() }}) as messages_sent,
        cast(messages_delivered as {{ dbt.type_bigint() }}) as messages_delivered,
        cast(messages_opened as {{ dbt.type_bigint() }}) as messages_opened,
        cast(messages_clicked as {{ dbt.type_bigint() }}) as messages_clicked,
        cast(message_orders as {{ dbt.type_bigint() }}) as message_orders,
        cast(message_net_revenue as {{ type_money() }}) as message_net_revenue,

        -- sessions: the platform's own, and GA4's report beside them
        cast(sessions as {{ dbt.type_bigint() }}) as sessions,
        cast(ga4_sessions as {{ dbt.type_bigint() }}) as ga4_sessions,
        cast(ga4_engaged_sessions as {{ dbt.type_bigint() }}) as ga4_engaged_sessions,
        cast(ga4_new_users as {{ dbt.type_bigint() }}) as ga4_new_users,
        cast(ga4_key_events as double) as ga4_key_events,
        cast(ga4_purchase_revenue as {{ type_money() }}) as ga4_purchase_revenue,

        -- orders attributed (completed orders, fct_orders' net revenue)
        cast(orders_last_touch as {{ dbt.type_bigint() }}) as orders_last_touch,
        cast(net_revenue_last_touch as {{ type_money() }}) as net_revenue_last_touch,
        cast(new_customers_last_touch as {{ dbt.type_bigint() }}) as new_customers_last_touch,
        cast(orders_first_touch as {{ dbt.type_bigint() }}) as orders_first_touch,
        cast(net_revenue_first_touch as {{ type_money() }}) as net_revenue_first_touch,
        cast(new_customers_first_touch as {{ dbt.type_bigint() }}) as new_customers_first_touch,

        -- efficiency, null without spend or without new customers
        cast(net_revenue_last_touch as double) / nullif(spend, 0) as roas_last_touch,
        cast(net_revenue_first_touch as double) / nullif(spend, 0) as roas_first_touch,
        cast(
            spend / nullif(new_customers_last_touch, 0) as {{ type_money() }}
        ) as cac_last_touch,
        cast(
            spend / nullif(new_customers_first_touch, 0) as {{ type_money() }}
        ) as cac_first_touch,

        -- dates
        report_date

    from joined

)

select * from final
