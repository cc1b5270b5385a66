{#-
    One row per customer of customer_features and menu category they
    bought: the items on their completed orders and the category's share of
    them, as of the latest order placed in the data. Long, not a column per
    category, so that it holds any chain's menu; a BI tool pivots it.
-#}

with

menu_mix as (

    select * from {{ ref('int_customer_menu_mix_as_of') }}
    where as_of_kind = 'latest'

),

final as (

    select
        -- ids
        customer_id,
        category,

        -- as of
        as_of_date,

        -- mix
        items,
        item_share

    from menu_mix

)

select * from final
