{#-
    One row per menu item, including items taken off the menu (is_deleted):
    past order lines still point at them.
-#}

with

menu_items as (

    select * from {{ ref('stg_ordering__menu_items') }}

),

final as (

    select
        menu_item_id,
        sku,
        menu_item_name,
        category,
        {{ chain_currency() }} as currency,
        price,
        is_available,
        is_deleted,
        deleted_at

    from menu_items

)

select * from final
