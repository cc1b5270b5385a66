{#-
    Imported orders as order facts: one row per receipt, keyed so they can
    stand beside the ordering platform's orders. The rules are on the model
    (_orders__models.yml); every choice between rows is by file, then line,
    so the result never depends on load order.
-#}
{%- set match_minutes = var('order_history_match_minutes') | int -%}

with

history as (

    select * from {{ ref('stg_order_history__orders') }}

),

members as (

    select
        identifier as source_customer_ref,
        customer_id
    from {{ ref('int_identities_stitched') }}
    where identifier_type = 'order_history_member'

),

stores as (

    select * from {{ ref('stg_ordering__stores') }}

),

platform_orders as (

    select * from {{ ref('int_orders_live') }}

),

-- A receipt is the store's receipt number; a row without one is its own
-- receipt (its import row), since nothing else can tell two such rows apart.
receipts as (

    select
        *,
        coalesce(store_code, '') || ':' || coalesce(source_order_ref, import_row_id)
            as receipt_key
    from history

),

-- Exports that overlap repeat receipts: the first file (then line) that has
-- a receipt is the one that counts.
first_receipts as (

    select * from receipts
    qualify row_number() over (
            partition by receipt_key order by source_file asc, source_line asc
        ) = 1

),

keyed as (

    select
        {{ negative_bigint_key("'order_history:' || first_receipts.receipt_key") }} as order_id,
        coalesce(
            members.customer_id,
            {{ negative_bigint_key("'order_history:' || first_receipts.source_customer_ref") }}
        ) as customer_id,
        members.customer_id as platform_customer_id,
        stores.store_id,
        first_receipts.store_code,
        first_receipts.source_order_ref,
        first_receipts.source_customer_ref,
        first_receipts.sales_channel,
        first_receipts.amount,
        first_receipts.item_quantity,
        first_receipts.ordered_at,
        first_receipts.ordered_date,
        first_receipts.source_file,
        first_receipts.source_line
    from first_receipts
    left join members
        on first_receipts.source_customer_ref = members.source_customer_ref
    left join stores
        on first_receipts.store_code = stores.store_code

),

-- An export that runs into the platform's first weeks holds orders the
-- platform also has: the same guest, the same amount, placed within
-- order_history_match_minutes. The platform's row is the order; the
-- import's is marked with it, the closest in time (then lowest id) winning.
platform_matches as (

    select
        keyed.order_id,
        platform_orders.order_id as platform_order_id
    from keyed
    inner join platform_orders
        on
            keyed.platform_customer_id = platform_orders.customer_id
            and keyed.amount = platform_orders.total
            and platform_orders.placed_at
            between {{ dbt.dateadd('minute', -1 * match_minutes, 'keyed.ordered_at') }}
            and {{ dbt.dateadd('minute', match_minutes, 'keyed.ordered_at') }}
    qualify row_number() over (
            partition by keyed.order_id
            order by
                abs({{ dbt.datediff('keyed.ordered_at', 'platform_orders.placed_at', 'second') }}),
                platform_orders.order_id
        ) = 1

),

final as (

    select
        keyed.*,
        platform_matches.platform_order_id as duplicate_of_order_id
    from keyed
    left join platform_matches
        on keyed.order_id = platform_matches.order_id

)

select * from final
