with

source as (

    select * from {{ lake_source('meta_ads', 'campaigns') }}

),

final as (

    select
        -- ids
        id as campaign_id,
        account_id,

        -- attributes
        name as campaign_name,
        objective,
        status,
        effective_status,

        -- money, in the account currency (the chain's)
        {{ to_money('daily_budget') }} as daily_budget,
        {{ to_money('lifetime_budget') }} as lifetime_budget,

        -- timestamps (UTC)
        {{ to_utc_timestamp('start_time') }} as scheduled_start_at,
        {{ to_utc_timestamp('stop_time') }} as scheduled_stop_at,
        {{ to_utc_timestamp('created_time') }} as created_at,
        {{ to_utc_timestamp('updated_time') }} as updated_at

    from source

)

select * from final
