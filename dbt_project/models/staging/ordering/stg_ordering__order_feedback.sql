with

source as (

    select * from {{ lake_source('ordering', 'order_feedback') }}

),

final as (

    select
        -- ids
        feedback_id,
        order_id,
        customer_id,
        store_id,
        menu_item_id,

        -- scores
        food_rating,
        price_rating,
        service_rating,
        nps_score,
        nullif(trim(comment), '') as comment_text,

        -- timestamps (UTC)
        {{ to_utc_timestamp('submitted_at') }} as submitted_at,
        {{ to_utc_timestamp('created_at') }} as created_at,
        {{ to_utc_timestamp('updated_at') }} as updated_at

    from source

)

select * from final
