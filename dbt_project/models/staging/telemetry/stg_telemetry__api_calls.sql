with

source as (

    select * from {{ lake_source('telemetry', 'api_calls') }}

),

final as (

    select
        -- ids
        request_id,
        store_id,

        -- attributes
        service,
        endpoint,
        platform,
        app_version,

        -- outcome
        status_code,
        latency_ms,
        is_timeout,

        -- timestamps (UTC)
        {{ to_utc_timestamp('occurred_at') }} as occurred_at,

        -- lineage back to the landing zone
        _landing_file as landing_file

    from source

)

select * from final
