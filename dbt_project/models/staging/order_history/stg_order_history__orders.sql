with

source as (

    select * from {{ lake_source('order_history', 'orders') }}

),

final as (

    select
        -- ids
        import_row_id,
        trim(customer_id) as source_customer_ref,
        order_id as source_order_ref,
        store as store_code,
        channel as sales_channel,

        -- money, in the chain's currency
        {{ to_money('amount') }} as amount,

        -- quantities
        cast(quantity as {{ dbt.type_bigint() }}) as item_quantity,

        -- timestamps (UTC) and the chain's local day
        {{ to_utc_timestamp('ordered_at') }} as ordered_at,
        {{ to_local_date('ordered_at') }} as ordered_date,

        -- lineage back to the file
        source_file,
        source_line

    from source

)

select * from final
