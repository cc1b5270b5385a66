with

source as (

    select * from {{ lake_source('ordering', 'orders') }}

),

final as (

    select
        -- ids
        order_id,
        customer_id,
        store_id,

        -- attributes
        platform,
        fulfilment_type,
        status,
        currency as currency_code,
        nullif(trim(promo_code), '') as promo_code,

        -- money, in the chain's currency
        {{ to_money('subtotal_idr') }} as subtotal,
        {{ to_money('discount_idr') }} as discount,
        {{ to_money('delivery_fee_idr') }} as delivery_fee,
        {{ to_money('total_idr') }} as total,

        -- flags
        deleted_at is not null as is_deleted,

        -- timestamps (UTC)
        {{ to_utc_timestamp('placed_at') }} as placed_at,
        {{ to_utc_timestamp('completed_at') }} as completed_at,
        {{ to_utc_timestamp('cancelled_at') }} as cancelled_at,
        {{ to_utc_timestamp('refunded_at') }} as refunded_at,
        {{ to_utc_timestamp('created_at') }} as created_at,
        {{ to_utc_timestamp('updated_at') }} as updated_at,
        {{ to_utc_timestamp('deleted_at') }} as deleted_at,

        -- the chain's local day of the order
        {{ to_local_date('placed_at') }} as placed_date

    from source

)

select * from final
