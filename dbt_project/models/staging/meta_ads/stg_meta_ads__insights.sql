with

source as (

    select * from {{ lake_source('meta_ads', 'insights') }}

),

final as (

    select
        -- ids
        insight_id,
        ad_id,
        adset_id,
        campaign_id,
        account_id,

        -- attributes
        campaign_name,
        adset_name,
        ad_name,
        publisher_platform,
        account_currency as currency_code,

        -- counts (absent from Meta's answer means zero)
        coalesce(impressions, 0) as impressions,
        coalesce(reach, 0) as reach,
        coalesce(clicks, 0) as clicks,
        coalesce(purchases, 0) as purchases,

        -- money, in the account currency (the chain's)
        {{ to_money('coalesce(spend, 0)') }} as spend,
        {{ to_money('coalesce(purchase_value, 0)') }} as purchase_value,

        -- dates (ad account time zone, Asia/Jakarta)
        date_start as report_date,
        date_stop as report_end_date

    from source

)

select * from final
