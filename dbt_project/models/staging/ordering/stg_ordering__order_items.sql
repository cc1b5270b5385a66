with

source as (

    select * from {{ lake_source('ordering', 'order_items') }}

),

final as (

    select
        -- ids
        order_item_id,
        order_id,
        menu_item_id,

        -- quantities and money, in the chain's currency
        quantity,
        {{ to_money('unit_price_idr') }} as unit_price,
        {{ to_money('line_total_idr') }} as line_total,

        -- timestamps (UTC)
        {{ to_utc_timestamp('created_at') }} as created_at,
        {{ to_utc_timestamp('updated_at') }} as updated_at

    from source

)

select * from final
