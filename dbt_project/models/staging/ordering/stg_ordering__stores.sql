with

source as (

    select * from {{ lake_source('ordering', 'stores') }}

),

final as (

    select
        -- ids
        store_id,

        -- attributes
        store_code,
        name as store_name,
        province,
        city,

        -- flags
        deleted_at is not null as is_deleted,

        -- dates and timestamps (UTC)
        opened_on as opened_date,
        {{ to_utc_timestamp('created_at') }} as created_at,
        {{ to_utc_timestamp('updated_at') }} as updated_at,
        {{ to_utc_timestamp('deleted_at') }} as deleted_at

    from source

)

select * from final
