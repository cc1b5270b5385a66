{#-
    Feedback scores by scope and month: one row per month the feedback was
    received and per store (grain `store`) or per menu item (grain
    `menu_item`).

    Why a grain column instead of month x store x menu item: a rating is
    about the whole order (food, price, service), not one dish, so a dish
    row credits the order's food rating to every dish on it. Store rows
    partition the responses (they add up to the chain); dish rows overlap (an
    order with three dishes counts for three). Crossing the two would make
    neither add up. Filter on `grain` before aggregating.

    CSAT is the share of ratings of 4 or 5; NPS is % promoters (9-10) minus
    % detractors (0-6). Feedback on orders that were refunded later is kept:
    the guest rated the experience they had.
-#}

{%- set measures -%}
        count(*) as responses,
        avg(food_rating) as avg_food_rating,
        avg(price_rating) as avg_price_rating,
        avg(service_rating) as avg_service_rating,
        sum(is_food_satisfied) as food_satisfied,
        sum(is_price_satisfied) as price_satisfied,
        sum(is_service_satisfied) as service_satisfied,
        sum(is_promoter) as promoters,
        sum(is_passive) as passives,
        sum(is_detractor) as detractors,
        sum(has_comment) as commented_responses
{%- endset %}

with

feedback as (

    select * from {{ ref('stg_ordering__order_feedback') }}

),

order_items as (

    select * from {{ ref('fct_order_items') }}

),

stores as (

    select * from {{ ref('dim_stores') }}

),

menu_items as (

    select * from {{ ref('dim_menu_items') }}

),

scored as (

    select
        feedback_id,
        order_id,
        store_id,
        cast(
            {{ dbt.date_trunc('month', utc_to_local_date('created_at')) }} as date
        ) as feedback_month,
        food_rating,
        price_rating,
        service_rating,
        case when food_rating >= 4 then 1 else 0 end as is_food_satisfied,
        case when price_rating >= 4 then 1 else 0 end as is_price_satisfied,
        case when service_rating >= 4 then 1 else 0 end as is_service_satisfied,
        case when nps_score >= 9 then 1 else 0 end as is_promoter,
        case when nps_score between 7 and 8 then 1 else 0 end as is_passive,
        case when nps_score <= 6 then 1 else 0 end as is_detractor,
        case when comment_text is not null then 1 else 0 end as has_comment

    from feedback

),

order_dishes as (

    select distinct
        order_id,
        menu_item_id

    from order_items

),

by_store as (

    select
        'store' as grain,
        feedback_month,
        store_id,
        cast(null as {{ dbt.type_bigint() }}) as menu_item_id,
        {{ measures }}

    from scored
    group by
        feedback_month,
        store_id

),

by_menu_item as (

    select
        'menu_item' as grain,
        scored.feedback_month,
        cast(null as {{ dbt.type_bigint() }}) as store_id,
        order_dishes.menu_item_id,
        {{ measures }}

    from scored
    inner join order_dishes
        on scored.order_id = order_dishes.order_id
    group by
        scored.feedback_month,
        order_dishes.menu_item_id

),

unioned as (

    select * from by_store
    union all
    select * from by_menu_item

),

final as (

    select
        -- ids
        {{ dbt.concat([
            "unioned.grain",
            "'|'",
            "cast(unioned.feedback_month as " ~ dbt.type_string() ~ ")",
            "'|'",
            "cast(coalesce(unioned.store_id, unioned.menu_item_id) as " ~ dbt.type_string() ~ ")",
        ]) }} as feedback_summary_id,
        unioned.grain,
        unioned.feedback_month,
        unioned.store_id,
        unioned.menu_item_id,

        -- scope attributes
        stores.store_code,
        stores.store_name,
        stores.province,
        menu_items.menu_item_name,
        menu_items.category,

        -- volumes
        cast(unioned.responses as {{ dbt.type_bigint() }}) as responses,
        cast(unioned.commented_responses as {{ dbt.type_bigint() }}) as commented_responses,

        -- mean ratings (1-5)
        unioned.avg_food_rating,
        unioned.avg_price_rating,
        unioned.avg_service_rating,

        -- CSAT: share of ratings of 4 or 5 (a double division on every engine)
        cast(unioned.food_satisfied as double) / unioned.responses as food_csat,
        cast(unioned.price_satisfied as double) / unioned.responses as price_csat,
        cast(unioned.service_satisfied as double) / unioned.responses as service_csat,

        -- NPS
        cast(unioned.promoters as {{ dbt.type_bigint() }}) as promoters,
        cast(unioned.passives as {{ dbt.type_bigint() }}) as passives,
        cast(unioned.detractors as {{ dbt.type_bigint() }}) as detractors,
        cast(100 * (unioned.promoters - unioned.detractors) as double) / unioned.responses as nps

    from unioned
    left join stores
        on unioned.store_id = stores.store_id
    left join menu_items
        on unioned.menu_item_id = menu_items.menu_item_id

)

select * from final
