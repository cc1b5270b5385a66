-- Lifetime revenue in dim_customers adds up to the net revenue of the orders
-- in fct_orders whose customer has a profile: no order lost or double-counted by the
-- customer roll-up. Returns one row when the totals differ.
-- Dagster shows it as a check on dim_customers, the model whose roll-up it guards.

{{ config(meta={'dagster': {'ref': {'name': 'dim_customers'}}}) }}

with

customers as (

    select * from {{ ref('dim_customers') }}

),

orders as (

    select * from {{ ref('fct_orders') }}

),

customer_total as (

    select coalesce(sum(lifetime_net_revenue), 0) as net_revenue
    from customers

),

order_total as (

    select coalesce(sum(net_revenue), 0) as net_revenue
    from orders
    where has_customer_profile

),

final as (

    select
        customer_total.net_revenue as customer_net_revenue,
        order_total.net_revenue as order_net_revenue

    from customer_total
    cross join order_total
    where customer_total.net_revenue != order_total.net_revenue

)

select * from final
