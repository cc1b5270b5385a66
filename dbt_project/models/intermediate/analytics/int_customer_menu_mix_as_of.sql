{#-
    One row per as-of kind, customer and menu category the customer bought
    on completed orders placed by that day: the items (sum of quantities)
    and their share of the customer's items. The rows of
    int_customer_features_as_of (its customers, days and item counts), by
    category: a chain's menu has its own categories, so they are rows here
    and each fit pivots the ones the chain has (regulars.analytics.clusters).
-#}

with

features as (

    select * from {{ ref('int_customer_features_as_of') }}

),

orders as (

    select * from {{ ref('fct_orders') }}

),

order_items as (

    select * from {{ ref('fct_order_items') }}

),

category_items as (

    select
        features.as_of_kind,
        features.as_of_date,
        features.customer_id,
        order_items.category,
        features.items as customer_items,
        sum(order_items.quantity) as items

    from features
    inner join order_items
        on features.customer_id = order_items.customer_id
    inner join orders
        on order_items.order_id = orders.order_id
    where
        orders.is_completed
        and orders.placed_date <= features.as_of_date
    group by
        features.as_of_kind,
        features.as_of_date,
        features.customer_id,
        order_items.category,
        features.items

),

final as (

    select
        customer_id,
        as_of_kind,
        as_of_date,
        category,
        cast(items as {{ dbt.type_bigint() }}) as items,
        -- The inner cast keeps integer division away (PostgreSQL), the outer one
        -- the quotient's type (Spark makes it a double).
        cast(
            cast(items as {{ dbt.type_float() }}) / customer_items as {{ dbt.type_float() }}
        ) as item_share

    from category_items
    where customer_items > 0

)

select * from final
