{#-
    One row per order that is not soft-deleted: the ordering platform's, and
    the order-history imports' that the platform does not also have
    (int_order_history_keyed), told apart by source_system.

    Revenue rule (net_revenue): an order earns its charged total
    (total: subtotal - discount + delivery fee) only when its latest status
    is `completed`. Cancelled and refunded orders earn 0, and so do orders
    still in flight (`placed`, `preparing`) until they complete. Soft-deleted
    orders are not in this table at all. Orders whose customer has no row in
    dim_customers are kept, flagged `not has_customer_profile`.

    An imported order is a completed sale at its amount: the import knows no
    status, discount, fee, platform or fulfilment, and those stay null rather
    than guessed.
-#}

with

live_orders as (

    select * from {{ ref('int_orders_live') }}

),

order_items as (

    select * from {{ ref('stg_ordering__order_items') }}

),

stores as (

    select * from {{ ref('stg_ordering__stores') }}

),

customers as (

    select * from {{ ref('int_customers_unioned') }}

),

imported_orders as (

    select * from {{ ref('int_order_history_keyed') }}
    where duplicate_of_order_id is null

),

order_item_counts as (

    select
        order_id,
        cast(sum(quantity) as {{ dbt.type_bigint() }}) as item_count

    from order_items
    group by order_id

),

platform_orders as (

    select
        -- ids
        live_orders.order_id,
        live_orders.customer_id,
        live_orders.store_id,

        -- attributes
        'ordering' as source_system,
        stores.province,
        live_orders.platform,
        live_orders.fulfilment_type,
        live_orders.status,
        live_orders.promo_code,

        -- flags
        live_orders.is_completed,
        live_orders.promo_code is not null as has_promo,
        -- Orders outlive their customer's row: the account may be soft-deleted,
        -- or its row held back by the lake gate. Keep the revenue, flag the order.
        coalesce(not customers.is_deleted, false) as has_customer_profile,

        -- money, in the chain's currency
        {{ chain_currency() }} as currency,
        live_orders.subtotal as gross_revenue,
        live_orders.discount,
        live_orders.delivery_fee,
        live_orders.net_revenue,
        live_orders.total as order_total,

        -- quantities
        coalesce(order_item_counts.item_count, 0) as item_count,

        -- dates and timestamps (UTC)
        live_orders.placed_at,
        live_orders.placed_date,
        live_orders.completed_at,
        cast(
            {{ dbt.datediff('live_orders.placed_at', 'live_orders.completed_at', 'second') }} / 60.0
            as numeric(10, 2)
        ) as minutes_to_complete,
        live_orders.cancelled_at,
        live_orders.refunded_at

    from live_orders
    left join stores
        on live_orders.store_id = stores.store_id
    left join customers
        on live_orders.customer_id = customers.customer_id
    left join order_item_counts
        on live_orders.order_id = order_item_counts.order_id

),

history_orders as (

    select
        -- ids
        imported_orders.order_id,
        imported_orders.customer_id,
        imported_orders.store_id,

        -- attributes
        'order_history' as source_system,
        stores.province,
        cast(null as {{ dbt.type_string() }}) as platform,
        cast(null as {{ dbt.type_string() }}) as fulfilment_type,
        'completed' as status,
        cast(null as {{ dbt.type_string() }}) as promo_code,

        -- flags
        true as is_completed,
        false as has_promo,
        coalesce(not customers.is_deleted, false) as has_customer_profile,

        -- money, in the chain's currency
        {{ chain_currency() }} as currency,
        imported_orders.amount as gross_revenue,
        {{ to_money('null') }} as discount,
        {{ to_money('null') }} as delivery_fee,
        imported_orders.amount as net_revenue,
        imported_orders.amount as order_total,

        -- quantities
        imported_orders.item_quantity as item_count,

        -- dates and timestamps (UTC)
        imported_orders.ordered_at as placed_at,
        imported_orders.ordered_date as placed_date,
        cast(null as {{ dbt.type_timestamp() }}) as completed_at,
        cast(null as numeric(10, 2)) as minutes_to_complete,
        cast(null as {{ dbt.type_timestamp() }}) as cancelled_at,
        cast(null as {{ dbt.type_timestamp() }}) as refunded_at

    from imported_orders
    left join stores
        on imported_orders.store_id = stores.store_id
    left join customers
        on imported_orders.customer_id = customers.customer_id

),

final as (

    select * from platform_orders
    union all
    select * from history_orders

)

select * from final
