{#-
    Every guest the marts count: the ordering platform's customer accounts,
    and the order-history members who never joined the platform (their
    negative keys from int_order_history_keyed). A member who did join is
    the platform account, not a second guest.
-#}
with

customers as (

    select * from {{ ref('stg_ordering__customers') }}

),

history_orders as (

    select * from {{ ref('int_order_history_keyed') }}
    where platform_customer_id is null

),

-- A member's home store is where they ordered most (ties: the earliest order).
member_stores as (

    select
        customer_id,
        store_id
    from (
        select
            customer_id,
            store_id,
            count(*) as store_orders,
            min(ordered_at) as first_ordered_at
        from history_orders
        group by customer_id, store_id
    ) as orders_per_store
    qualify row_number() over (
            partition by customer_id
            order by store_orders desc, first_ordered_at asc, store_id asc nulls last
        ) = 1

),

members as (

    select
        customer_id,
        min(ordered_at) as first_ordered_at
    from history_orders
    group by customer_id

),

platform_customers as (

    select
        customer_id,
        'ordering' as source_system,
        home_store_id,
        preferred_platform,
        acquisition_channel,
        has_email_consent,
        has_sms_consent,
        is_deleted,
        signed_up_at,
        signed_up_at as acquired_at
    from customers

),

-- What the import cannot say is null; consent is false, since nobody gave it.
history_members as (

    select
        members.customer_id,
        'order_history' as source_system,
        member_stores.store_id as home_store_id,
        cast(null as {{ dbt.type_string() }}) as preferred_platform,
        'order_history' as acquisition_channel,
        false as has_email_consent,
        false as has_sms_consent,
        false as is_deleted,
        cast(null as {{ dbt.type_timestamp() }}) as signed_up_at,
        members.first_ordered_at as acquired_at
    from members
    left join member_stores
        on members.customer_id = member_stores.customer_id

),

final as (

    select * from platform_customers
    union all
    select * from history_members

)

select * from final
