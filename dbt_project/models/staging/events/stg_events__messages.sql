{#-
    One relation for every Segment call: the lake holds them in one table, and
    sessions need identify, track, page and screen calls in one time line.
    JSON fields are read with json_texts() (macros/engine_sql.sql: dbt has no
    cross-database JSON macro), every path once, here, and each document
    parsed once for all its paths. Numbers inside the JSON are cast safely: a
    malformed amount becomes null instead of failing every model downstream.

    Unlike the other staging models, a table on DuckDB, incremental by lake
    load (dbt_project.yml): identity stitching, sessions, experiments and this
    model's tests read the whole history on every run, and as a view each of
    them parsed every message's JSON again (at 100,000 guests, 9.5 million
    messages, most of a day's sessions and experiment exposures). A run appends the
    messages of loads newer than the newest this table holds; the lake only
    appends messages, and forget deletes a guest's rows here as everywhere. A
    change to this model's SQL needs
    `dbt build --full-refresh --select stg_events__messages+`.
-#}
{{ config(incremental_strategy='append', on_schema_change='fail') }}

{%- set newest_load_id = none %}
{%- if is_incremental() %}
    {%- set newest_load_id = newest_in_this('dlt_load_id') %}
{%- endif %}

{#- Each JSON column's fields by JSONPath, and the text column each becomes. -#}
{%- set json_fields = {
    'context': {
        '$.page.url': 'page_url',
        '$.page.path': 'page_path',
        '$.page.referrer': 'page_referrer_text',
        '$.page.title': 'page_title',
        '$.page.search': 'page_search_text',
        '$.library.name': 'library_name',
        '$.library.version': 'library_version',
        '$.app.namespace': 'app_namespace',
        '$.app.version': 'app_version',
        '$.app.build': 'app_build',
        '$.os.name': 'os_name',
        '$.os.version': 'os_version',
        '$.device.id': 'device_id',
        '$.device.type': 'device_type',
        '$.device.model': 'device_model',
        '$.userAgent': 'user_agent',
        '$.ip': 'ip_address',
        '$.locale': 'locale_code',
        '$.campaign.source': 'utm_source',
        '$.campaign.medium': 'utm_medium',
        '$.campaign.name': 'utm_campaign',
        '$.campaign.content': 'utm_content',
        '$.campaign.term': 'utm_term',
    },
    'properties': {
        '$.url': 'deep_link_url',
        '$.referring_application': 'referring_application',
        '$.experiment_id': 'experiment_id',
        '$.experiment_name': 'experiment_name',
        '$.variation_id': 'variation_id',
        '$.variation_name': 'variation_name',
        '$.product_id': 'product_id',
        '$.sku': 'product_sku',
        '$.name': 'product_name',
        '$.category': 'product_category',
        '$.quantity': 'quantity_text',
        '$.price': 'price_text',
        '$.cart_id': 'cart_id_text',
        '$.checkout_id': 'checkout_id_text',
        '$.order_id': 'order_id_text',
        '$.coupon': 'coupon_code',
        '$.currency': 'currency_code',
        '$.total': 'total_text',
        '$.revenue': 'revenue_text',
        '$.shipping': 'shipping_text',
        '$.discount': 'discount_text',
        '$.value': 'value_text',
    },
    'traits': {
        '$.email': 'email_text',
        '$.phone': 'phone_text',
    },
} -%}

with

source as (

    select * from {{ lake_source('events', 'messages') }}
    {% if newest_load_id is not none %}
        -- A constant, not a subquery over this table (macros/incremental.sql).
        where _dlt_load_id > '{{ newest_load_id }}'
    {% endif %}

),

-- Each document parsed once for all its paths: path by path, DuckDB parsed
-- it again for each, and typing 9.5 million messages took 4.6 times as long.
parsed as (

    select
        {%- for column, fields in json_fields.items() %}
            {{ json_texts(column, fields.keys() | list) }} as {{ column }}_fields,
        {%- endfor %}
        *
    from source

),

extracted as (

    select
        {%- for column, fields in json_fields.items() %}
            {%- for name in fields.values() %}
                {{ list_item(column ~ '_fields', loop.index) }} as {{ name }},
            {%- endfor %}
        {%- endfor %}
        *
    from parsed

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
            when coalesce(app_namespace, os_name) is not null then 'app'
            when library_name = 'analytics.js' or page_url is not null then 'web'
            else 'server'
        end as platform,
        device_id,
        device_type,
        device_model,
        os_name,
        os_version,
        app_version,
        app_build,
        library_name,
        library_version,
        user_agent,
        ip_address,
        locale_code,

        -- web page (every web call carries the page it happened on)
        page_path,
        page_url,
        nullif(page_referrer_text, '') as page_referrer,
        page_title,
        nullif(page_search_text, '') as page_search,

        -- app deep link (Deep Link Opened)
        deep_link_url,
        referring_application,

        -- campaign: the utm parameters of the landing page or deep link
        utm_source,
        utm_medium,
        utm_campaign,
        utm_content,
        utm_term,
        -- ad click ids travel in the landing URL's query string
        nullif(
            regexp_extract(coalesce(page_url, deep_link_url), '[?&]gclid=([^&#]+)', 1), ''
        ) as gclid,
        nullif(
            regexp_extract(coalesce(page_url, deep_link_url), '[?&]fbclid=([^&#]+)', 1), ''
        ) as fbclid,

        -- Experiment Viewed
        experiment_id,
        experiment_name,
        variation_id,
        variation_name,

        -- products (Product Viewed, Product Added)
        product_id,
        product_sku,
        product_name,
        product_category,
        {{ dbt.safe_cast('quantity_text', dbt.type_bigint()) }} as product_quantity,
        {{ dbt.safe_cast('price_text', type_money()) }} as product_price,
        coalesce(cart_id_text, checkout_id_text) as cart_id,

        -- Order Completed: order_id is the ordering platform's order_id
        {{ dbt.safe_cast('order_id_text', dbt.type_bigint()) }} as order_id,
        coupon_code,
        currency_code,
        {{ dbt.safe_cast('total_text', type_money()) }} as order_total,
        {{ dbt.safe_cast('revenue_text', type_money()) }} as order_revenue,
        {{ dbt.safe_cast('shipping_text', type_money()) }} as order_shipping,
        {{ dbt.safe_cast('discount_text', type_money()) }} as order_discount,
        -- Checkout Started
        {{ dbt.safe_cast('value_text', type_money()) }} as checkout_value,

        -- identify traits, normalised for matching like stg_ordering__customers
        nullif(lower(trim(email_text)), '') as trait_email,
        nullif(trim(phone_text), '') as trait_phone,

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
