{#-
    The ordering platform's live orders: one row per order that is not
    soft-deleted (test or fraud orders are left out everywhere), with the
    revenue rule applied once. fct_orders, attribution and the order-history
    match all read orders at this grain; the rule is documented on the model
    (_orders__models.yml).
-#}
with

orders as (

    select * from {{ ref('stg_ordering__orders') }}

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
        promo_code,

        -- flags
        status = 'completed' as is_completed,

        -- money, in the chain's currency
        subtotal,
        discount,
        delivery_fee,
        total,
        {{ net_revenue('status', 'total') }} as net_revenue,

        -- timestamps (UTC) and the chain's local day of the order
        placed_at,
        completed_at,
        cancelled_at,
        refunded_at,
        placed_date

    from orders
    where not is_deleted

)

select * from final
