{#-
    One row per store, including soft-deleted (closed or removed) stores
    flagged is_deleted: their past orders stay in fct_orders and must still
    find their store and province.
-#}

with

stores as (

    select * from {{ ref('stg_ordering__stores') }}

),

final as (

    select
        store_id,
        store_code,
        store_name,
        province,
        city,
        opened_date,
        is_deleted,
        deleted_at

    from stores

)

select * from final
