with

source as (

    select * from {{ lake_source('meta_ads', 'adsets') }}

),

final as (

    select
        -- ids
        id as adset_id,
        campaign_id,
        account_id,

        -- attributes
        name as adset_name,
        status,
        effective_status,
        optimization_goal,

        -- money, in the account currency (the chain's)
        {{ to_money('daily_budget') }} as daily_budget,
        {{ to_money('lifetime_budget') }} as lifetime_budget,

        -- timestamps (UTC)
        {{ to_utc_timestamp('start_time') }} as scheduled_start_at,
        {{ to_utc_timestamp('end_time') }} as scheduled_end_at,
        {{ to_utc_timestamp('created_time') }} as created_at,
        {{ to_utc_timestamp('updated_time') }} as updated_at

    from source

)

select * from final
