with

source as (

    select * from {{ lake_source('meta_ads', 'ads') }}

),

final as (

    select
        -- ids
        id as ad_id,
        adset_id,
        campaign_id,
        account_id,

        -- attributes
        name as ad_name,
        status,
        effective_status,

        -- timestamps (UTC)
        {{ to_utc_timestamp('created_time') }} as created_at,
        {{ to_utc_timestamp('updated_time') }} as updated_at

    from source

)

select * from final
