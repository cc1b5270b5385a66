-- Every order's subtotal equals the sum of its line totals, as the ordering
-- platform promises (schema.sql). Returns the orders where it does not.
-- Warns rather than fails: the lake gate checks rows table by table, so an
-- order line it holds in quarantine leaves its order short.

-- Dagster shows it as a check on the orders staging model.

{{ config(
    severity='warn',
    meta={'dagster': {'ref': {'name': 'stg_ordering__orders'}}},
) }}

with

orders as (

    select * from {{ ref('stg_ordering__orders') }}

),

order_items as (

    select * from {{ ref('stg_ordering__order_items') }}

),

order_item_totals as (

    select
        order_id,
        sum(line_total) as line_total

    from order_items
    group by order_id

),

final as (

    select
        orders.order_id,
        orders.subtotal,
        coalesce(order_item_totals.line_total, 0) as line_total

    from orders
    left join order_item_totals
        on orders.order_id = order_item_totals.order_id
    where orders.subtotal != coalesce(order_item_totals.line_total, 0)

)

select * from final
