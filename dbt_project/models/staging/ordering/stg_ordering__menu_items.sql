with

source as (

    select * from {{ lake_source('ordering', 'menu_items') }}

),

final as (

    select
        -- ids
        menu_item_id,

        -- attributes
        sku,
        name as menu_item_name,
        category,

        -- money, in the chain's currency
        {{ to_money('price_idr') }} as price,

        -- flags
        is_available,
        deleted_at is not null as is_deleted,

        -- timestamps (UTC)
        {{ to_utc_timestamp('created_at') }} as created_at,
        {{ to_utc_timestamp('updated_at') }} as updated_at,
        {{ to_utc_timestamp('deleted_at') }} as deleted_at

    from source

)

select * from final
