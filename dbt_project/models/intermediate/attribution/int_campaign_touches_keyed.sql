{#-
    Every touch of the chain's traffic, one long shape so the channel rule and
    the campaign key are written once: the platform's sessions, GA4's daily
    session rows, and each completed order's first and last touch, with the
    figures each contributes (fct_campaign_performance sums them per day,
    channel and campaign).

    Channel rule, on source / medium: macros/traffic_channel.sql (a Meta
    platform as source with a paid medium -> that platform's channel, cpc ->
    google_search, ..., else other).

    Campaign key:
    - Meta channels: the Meta campaign id. Names may change or repeat, so a
      click is tied to its campaign by the ad id its link carries
      (utm_content: sessions and their order touches), else by its
      utm_campaign, read as a campaign id or else as a name. A name that
      several campaigns have carried goes to the one that reported under it
      that day, else the one that did most recently before, else the highest
      id. Meta traffic tied to no campaign keeps its utm_campaign.
    - Other tagged traffic: its utm_campaign (GA4's session campaign name).
    - Untagged traffic: `(none)`, also for GA4's (direct), (organic) and
      (not set).
-#}
with

insights as (

    select * from {{ ref('stg_meta_ads__insights') }}

),

meta_campaigns as (

    select * from {{ ref('stg_meta_ads__campaigns') }}

),

meta_ads as (

    select * from {{ ref('stg_meta_ads__ads') }}

),

ga4_traffic as (

    select * from {{ ref('stg_ga4__traffic_daily') }}

),

sessions as (

    select * from {{ ref('int_sessions_sessionised') }}

),

orders_attributed as (

    select * from {{ ref('int_orders_attributed') }}

),

-- Traffic in one long shape, so the channel rule is written once.
traffic as (

    select
        session_date as report_date,
        source,
        medium,
        utm_campaign as campaign_name,
        utm_content as ad_id,
        1 as sessions,
        0 as ga4_sessions,
        0 as ga4_engaged_sessions,
        0 as ga4_new_users,
        cast(0 as double) as ga4_key_events,
        {{ to_money(0) }} as ga4_purchase_revenue,
        0 as orders_last_touch,
        {{ to_money(0) }} as net_revenue_last_touch,
        0 as new_customers_last_touch,
        0 as orders_first_touch,
        {{ to_money(0) }} as net_revenue_first_touch,
        0 as new_customers_first_touch

    from sessions

    union all

    select
        report_date,
        session_source as source,
        session_medium as medium,
        case
            when session_campaign_name not in ('(direct)', '(organic)', '(not set)')
                then session_campaign_name
        end as campaign_name,
        cast(null as {{ dbt.type_string() }}) as ad_id,
        0 as sessions,
        sessions as ga4_sessions,
        engaged_sessions as ga4_engaged_sessions,
        new_users as ga4_new_users,
        key_events as ga4_key_events,
        purchase_revenue as ga4_purchase_revenue,
        0 as orders_last_touch,
        {{ to_money(0) }} as net_revenue_last_touch,
        0 as new_customers_last_touch,
        0 as orders_first_touch,
        {{ to_money(0) }} as net_revenue_first_touch,
        0 as new_customers_first_touch

    from ga4_traffic

    union all

    select
        order_date as report_date,
        last_touch_source as source,
        last_touch_medium as medium,
        last_touch_campaign as campaign_name,
        last_touch_content as ad_id,
        0 as sessions,
        0 as ga4_sessions,
        0 as ga4_engaged_sessions,
        0 as ga4_new_users,
        cast(0 as double) as ga4_key_events,
        {{ to_money(0) }} as ga4_purchase_revenue,
        1 as orders_last_touch,
        net_revenue as net_revenue_last_touch,
        case when is_first_order then 1 else 0 end as new_customers_last_touch,
        0 as orders_first_touch,
        {{ to_money(0) }} as net_revenue_first_touch,
        0 as new_customers_first_touch

    from orders_attributed
    where is_completed

    union all

    select
        order_date as report_date,
        first_touch_source as source,
        first_touch_medium as medium,
        first_touch_campaign as campaign_name,
        first_touch_content as ad_id,
        0 as sessions,
        0 as ga4_sessions,
        0 as ga4_engaged_sessions,
        0 as ga4_new_users,
        cast(0 as double) as ga4_key_events,
        {{ to_money(0) }} as ga4_purchase_revenue,
        0 as orders_last_touch,
        {{ to_money(0) }} as net_revenue_last_touch,
        0 as new_customers_last_touch,
        1 as orders_first_touch,
        net_revenue as net_revenue_first_touch,
        case when is_first_order then 1 else 0 end as new_customers_first_touch

    from orders_attributed
    where is_completed

),

traffic_channels as (

    select
        *,
        {{ traffic_channel('source', 'medium') }} as channel

    from traffic

),

-- An ad belongs to one campaign for life: its id on a click names the campaign.
meta_ad_links as (

    select
        ad_id,
        campaign_id
    from insights
    union
    select
        ad_id,
        campaign_id
    from meta_ads

),

meta_ad_campaigns as (

    select
        ad_id,
        max(campaign_id) as campaign_id

    from meta_ad_links
    where campaign_id is not null
    group by ad_id

),

-- Every text a link may name a Meta campaign by: its id, each name it
-- reported under (with the day), and its current name.
meta_campaign_aliases as (

    select
        campaign_id,
        campaign_name as link_value,
        report_date
    from insights
    where campaign_id is not null
    union
    select
        campaign_id,
        campaign_id as link_value,
        cast(null as date) as report_date
    from insights
    where campaign_id is not null
    union
    select
        campaign_id,
        campaign_name as link_value,
        cast(null as date) as report_date
    from meta_campaigns
    union
    select
        campaign_id,
        campaign_id as link_value,
        cast(null as date) as report_date
    from meta_campaigns

),

meta_traffic_names as (

    select distinct
        report_date,
        campaign_name

    from traffic_channels
    where channel in {{ meta_ads_channels() }} and campaign_name is not null

),

meta_name_candidates as (

    select
        meta_traffic_names.report_date,
        meta_traffic_names.campaign_name,
        meta_campaign_aliases.campaign_id,
        max(
            case
                when meta_campaign_aliases.link_value = meta_campaign_aliases.campaign_id then 1
                else 0
            end
        ) as is_id,
        max(
            case
                when meta_campaign_aliases.report_date = meta_traffic_names.report_date then 1
                else 0
            end
        ) as is_named_that_day,
        max(
            case
                when meta_campaign_aliases.report_date < meta_traffic_names.report_date
                    then meta_campaign_aliases.report_date
            end
        ) as last_named_before

    from meta_traffic_names
    inner join meta_campaign_aliases
        on meta_traffic_names.campaign_name = meta_campaign_aliases.link_value
    group by
        meta_traffic_names.report_date,
        meta_traffic_names.campaign_name,
        meta_campaign_aliases.campaign_id

),

meta_name_campaigns as (

    select
        report_date,
        campaign_name,
        campaign_id

    from meta_name_candidates
    qualify row_number() over (
            partition by report_date, campaign_name
            order by
                is_id desc,
                is_named_that_day desc,
                last_named_before desc nulls last,
                campaign_id desc
        ) = 1

),

traffic_keyed as (

    select
        traffic_channels.*,
        coalesce(meta_ad_campaigns.campaign_id, meta_name_campaigns.campaign_id)
            as meta_campaign_id,
        coalesce(
            meta_ad_campaigns.campaign_id,
            meta_name_campaigns.campaign_id,
            traffic_channels.campaign_name,
            '(none)'
        ) as campaign_key

    -- Only Meta's channels look up Meta's campaigns: the channel test sits inside a
    -- join key (null, so no match, for any other channel). Beside the equalities,
    -- as a test of the touch alone, it made DuckDB join every touch with every
    -- campaign by nested loop.
    from traffic_channels
    left join meta_ad_campaigns
        on
            case
                when traffic_channels.channel in {{ meta_ads_channels() }}
                    then traffic_channels.ad_id
            end = meta_ad_campaigns.ad_id
    left join meta_name_campaigns
        on
            case
                when traffic_channels.channel in {{ meta_ads_channels() }}
                    then traffic_channels.report_date
            end = meta_name_campaigns.report_date
            and traffic_channels.campaign_name = meta_name_campaigns.campaign_name

),

final as (

    select
        -- keys
        report_date,
        channel,
        campaign_key,
        meta_campaign_id as campaign_id,
        campaign_name,
        ad_id,
        source,
        medium,

        -- what the touch adds to its day, channel and campaign
        sessions,
        ga4_sessions,
        ga4_engaged_sessions,
        ga4_new_users,
        ga4_key_events,
        ga4_purchase_revenue,
        orders_last_touch,
        net_revenue_last_touch,
        new_customers_last_touch,
        orders_first_touch,
        net_revenue_first_touch,
        new_customers_first_touch

    from traffic_keyed

)

select * from final
