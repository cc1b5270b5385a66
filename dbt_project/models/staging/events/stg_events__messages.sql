{#-
    One view for every Segment call: the lake holds them in one table, and
    sessions need identify, track, page and screen calls in one time line.
    JSON fields are read with DuckDB's json_extract_string (dbt has no
    cross-database JSON macro); each path is read once, here. Numbers inside
    the JSON are cast safely: a malformed amount becomes null instead of
    failing every model downstream.
-#}
with

source as (

    select * from {{ lake_source('events', 'messages') }}

),

extracted as (

    select
        *,
        json_extract_string(context, '$.page.url') as context_page_url,
        json_extract_string(properties, '$.url') as deep_link_url,
        json_extract_string(context, '$.library.name') as library_name,
        coalesce(
            json_extract_string(context, '$.app.namespace'),
            json_extract_string(context, '$.os.name')
        ) as app_marker

    from source

),

final as (

    select
        -- ids
        message_id,
        anonymous_id,
        nullif(trim(user_id), '') as user_id,
        -- userId is the ordering platform's customer_id; anything else stays null here.
        {{ dbt.safe_cast("nullif(trim(user_id), '')", dbt.type_bigint()) }} as customer_id,
        previous_id,

        -- the call
        type as message_type,
        case when type = 'track' then event end as event_name,
        case when type = 'page' then name end as page_name,
        case when type = 'page' then category end as page_category,
        case when type = 'screen' then name end as screen_name,

        -- where it came from: the mobile SDKs always send context.app and context.os
        case
            when app_marker is not null then 'app'
            when library_name = 'analytics.js' or context_page_url is not null then 'web'
            else 'server'
        end as platform,
        json_extract_string(context, '$.device.id') as device_id,
        json_extract_string(context, '$.device.type') as device_type,
        json_extract_string(context, '$.device.model') as device_model,
        json_extract_string(context, '$.os.name') as os_name,
        json_extract_string(context, '$.os.version') as os_version,
        json_extract_string(context, '$.app.version') as app_version,
        json_extract_string(context, '$.app.build') as app_build,
        library_name,
        json_extract_string(context, '$.library.version') as library_version,
        json_extract_string(context, '$.userAgent') as user_agent,
        json_extract_string(context, '$.ip') as ip_address,
        json_extract_string(context, '$.locale') as locale_code,

        -- web page (every web call carries the page it happened on)
        json_extract_string(context, '$.page.path') as page_path,
        context_page_url as page_url,
        nullif(json_extract_string(context, '$.page.referrer'), '') as page_referrer,
        json_extract_string(context, '$.page.title') as page_title,
        nullif(json_extract_string(context, '$.page.search'), '') as page_search,

        -- app deep link (Deep Link Opened)
        deep_link_url,
        json_extract_string(properties, '$.referring_application') as referring_application,

        -- campaign: the utm parameters of the landing page or deep link
        json_extract_string(context, '$.campaign.source') as utm_source,
        json_extract_string(context, '$.campaign.medium') as utm_medium,
        json_extract_string(context, '$.campaign.name') as utm_campaign,
        json_extract_string(context, '$.campaign.content') as utm_content,
        json_extract_string(context, '$.campaign.term') as utm_term,
        -- ad click ids travel in the landing URL's query string
        nullif(
            regexp_extract(coalesce(context_page_url, deep_link_url), '[?&]gclid=([^&#]+)', 1), ''
        ) as gclid,
        nullif(
            regexp_extract(coalesce(context_page_url, deep_link_url), '[?&]fbclid=([^&#]+)', 1), ''
        ) as fbclid,

        -- Experiment Viewed
        json_extract_string(properties, '$.experiment_id') as experiment_id,
        json_extract_string(properties, '$.experiment_name') as experiment_name,
        json_extract_string(properties, '$.variation_id') as variation_id,
        json_extract_string(properties, '$.variation_name') as variation_name,

        -- products (Product Viewed, Product Added)
        json_extract_string(properties, '$.product_id') as product_id,
        json_extract_string(properties, '$.sku') as product_sku,
        json_extract_string(properties, '$.name') as product_name,
        json_extract_string(properties, '$.category') as product_category,
        {{ dbt.safe_cast("json_extract_string(properties, '$.quantity')", dbt.type_bigint()) }}
            as product_quantity,
        {{ dbt.safe_cast("json_extract_string(properties, '$.price')", type_money()) }}
            as product_price,
        coalesce(
            json_extract_string(properties, '$.cart_id'),
            json_extract_string(properties, '$.checkout_id')
        ) as cart_id,

        -- Order Completed: order_id is the ordering platform's order_id
        {{ dbt.safe_cast("json_extract_string(properties, '$.order_id')", dbt.type_bigint()) }}
            as order_id,
        json_extract_string(properties, '$.coupon') as coupon_code,
        json_extract_string(properties, '$.currency') as currency_code,
        {{ dbt.safe_cast("json_extract_string(properties, '$.total')", type_money()) }}
            as order_total,
        {{ dbt.safe_cast("json_extract_string(properties, '$.revenue')", type_money()) }}
            as order_revenue,
        {{ dbt.safe_cast("json_extract_string(properties, '$.shipping')", type_money()) }}
            as order_shipping,
        {{ dbt.safe_cast("json_extract_string(properties, '$.discount')", type_money()) }}
            as order_discount,
        -- Checkout Started
        {{ dbt.safe_cast("json_extract_string(properties, '$.value')", type_money()) }}
            as checkout_value,

        -- identify traits, normalised for matching like stg_ordering__customers
        nullif(lower(trim(json_extract_string(traits, '$.email'))), '') as trait_email,
        nullif(trim(json_extract_string(traits, '$.phone')), '') as trait_phone,

        -- timestamps (UTC)
        {{ to_utc_timestamp('timestamp') }} as occurred_at,
        {{ to_local_date('timestamp') }} as occurred_date,
        {{ to_utc_timestamp('original_timestamp') }} as device_occurred_at,
        {{ to_utc_timestamp('sent_at') }} as sent_at,
        {{ to_utc_timestamp('received_at') }} as received_at,

        -- lineage
        _landing_file as landing_file,
        _dlt_load_id as dlt_load_id

    from extracted

)

select * from final
