{#-
    One row per line of an order that is not soft-deleted (lines of deleted
    orders are dropped with their order). line_total is the gross line
    value before order-level discount and delivery fee; filter on is_completed
    for lines that earned revenue.
-#}

with

order_items as (

    select * from {{ ref('stg_ordering__order_items') }}

),

menu_items as (

    select * from {{ ref('stg_ordering__menu_items') }}

),

orders as (

    select * from {{ ref('fct_orders') }}

),

final as (

    select
        -- ids
        order_items.order_item_id,
        order_items.order_id,
        orders.customer_id,
        orders.store_id,
        order_items.menu_item_id,

        -- attributes
        menu_items.menu_item_name,
        menu_items.category,
        orders.status as order_status,

        -- flags
        orders.is_completed,

        -- quantities and money, in the chain's currency
        order_items.quantity,
        {{ chain_currency() }} as currency,
        order_items.unit_price,
        order_items.line_total,

        -- dates and timestamps (UTC)
        orders.placed_at,
        orders.placed_date

    from order_items
    inner join orders
        on order_items.order_id = orders.order_id
    left join menu_items
        on order_items.menu_item_id = menu_items.menu_item_id

)

select * from final
