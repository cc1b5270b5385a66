{#-
    One row per identifier a guest leaves behind, resolved to the ordering
    platform's customer_id. The rules, applied in this order, are in
    _identity__models.yml; every choice between candidates is by time, then
    by id, so the result never depends on row order.

    Reads the event messages grouped by the identifiers they carry
    (int_messages_grouped, incremental by lake load): each rule's first link,
    first and last seen are a group's first message, first and last seen.
-#}
{%- set link_order = ['occurred_at', 'message_id', 'stitch_rule'] -%}

with

message_groups as (

    select * from {{ ref('int_messages_grouped') }}

),

customers as (

    select * from {{ ref('stg_ordering__customers') }}

),

order_history as (

    select * from {{ ref('stg_order_history__orders') }}

),

-- Every message that ties an anonymous id to a customer: any call carrying a
-- userId (identify, or a call made while signed in), and alias calls, whose
-- previous_id is the anonymous id being merged into the userId.
anonymous_links as (

    select
        anonymous_id,
        customer_id,
        first_seen_at as occurred_at,
        first_message_id as message_id,
        'identified' as stitch_rule
    from message_groups
    where anonymous_id is not null and customer_id is not null

    union all

    -- previous_id is an alias call's only.
    select
        previous_id as anonymous_id,
        customer_id,
        first_seen_at as occurred_at,
        first_message_id as message_id,
        'alias' as stitch_rule
    from message_groups
    where previous_id is not null and customer_id is not null

),

-- The first link wins: an anonymous id that later carries another userId (a
-- shared browser) stays with its first customer and is flagged. Aggregates of
-- the id's links rather than a window: a window sorted every link.
anonymous_first_link as (

    select
        anonymous_id,
        {{ first_non_null_in_group('customer_id', link_order) }} as customer_id,
        {{ first_non_null_in_group('stitch_rule', link_order) }} as stitch_rule,
        min(occurred_at) as linked_at,
        {{ names_several_customers('customer_id') }} as has_conflict
    from anonymous_links
    group by anonymous_id

),

anonymous_seen as (

    select
        anonymous_id,
        min(first_seen_at) as first_seen_at,
        max(last_seen_at) as last_seen_at
    from message_groups
    where anonymous_id is not null
    group by anonymous_id

),

-- App devices: the device's customer is that of its first anonymous id to be
-- linked (a reinstall gives the same device a new anonymous id).
device_anonymous_ids as (

    select distinct
        device_id,
        anonymous_id
    from message_groups
    where device_id is not null and anonymous_id is not null

),

device_first_link as (

    select
        device_anonymous_ids.device_id,
        anonymous_first_link.customer_id,
        {{ names_several_customers(
            'anonymous_first_link.customer_id', 'device_anonymous_ids.device_id'
        ) }} as has_conflict
    from device_anonymous_ids
    inner join anonymous_first_link
        on device_anonymous_ids.anonymous_id = anonymous_first_link.anonymous_id
    qualify row_number() over (
            partition by device_anonymous_ids.device_id
            order by anonymous_first_link.linked_at asc, anonymous_first_link.anonymous_id asc
        ) = 1

),

device_seen as (

    select
        device_id,
        min(first_seen_at) as first_seen_at,
        max(last_seen_at) as last_seen_at
    from message_groups
    where device_id is not null
    group by device_id

),

-- An anonymous id never linked itself inherits its device's customer.
anonymous_via_device as (

    select
        device_anonymous_ids.anonymous_id,
        device_first_link.customer_id,
        {{ names_several_customers(
            'device_first_link.customer_id', 'device_anonymous_ids.anonymous_id'
        ) }} as has_conflict
    from device_anonymous_ids
    inner join device_first_link
        on device_anonymous_ids.device_id = device_first_link.device_id
    qualify row_number() over (
            partition by device_anonymous_ids.anonymous_id
            order by device_first_link.customer_id asc
        ) = 1

),

anonymous_ids as (

    select
        'anonymous_id' as identifier_type,
        anonymous_seen.anonymous_id as identifier,
        coalesce(anonymous_first_link.customer_id, anonymous_via_device.customer_id)
            as customer_id,
        case
            when anonymous_first_link.customer_id is not null
                then anonymous_first_link.stitch_rule
            when anonymous_via_device.customer_id is not null then 'device'
            else 'unidentified'
        end as stitch_rule,
        case
            when anonymous_first_link.customer_id is not null
                then anonymous_first_link.has_conflict
            else coalesce(anonymous_via_device.has_conflict, false)
        end as has_conflict,
        anonymous_seen.first_seen_at,
        anonymous_seen.last_seen_at
    from anonymous_seen
    left join anonymous_first_link
        on anonymous_seen.anonymous_id = anonymous_first_link.anonymous_id
    left join anonymous_via_device
        on anonymous_seen.anonymous_id = anonymous_via_device.anonymous_id

),

device_ids as (

    select
        'device_id' as identifier_type,
        device_seen.device_id as identifier,
        device_first_link.customer_id,
        case
            when device_first_link.customer_id is not null then 'device'
            else 'unidentified'
        end as stitch_rule,
        coalesce(device_first_link.has_conflict, false) as has_conflict,
        device_seen.first_seen_at,
        device_seen.last_seen_at
    from device_seen
    left join device_first_link
        on device_seen.device_id = device_first_link.device_id

),

user_ids as (

    select
        'user_id' as identifier_type,
        cast(customer_id as {{ dbt.type_string() }}) as identifier,
        customer_id,
        'user_id' as stitch_rule,
        false as has_conflict,
        min(first_seen_at) as first_seen_at,
        max(last_seen_at) as last_seen_at
    from message_groups
    where customer_id is not null
    group by customer_id

),

-- Click ids (gclid, fbclid) belong to the customer of the anonymous id that
-- landed with them.
click_ids as (

    select
        'click_id' as identifier_type,
        clicks.click_id as identifier,
        min(anonymous_ids.customer_id) as customer_id,
        case
            when min(anonymous_ids.customer_id) is not null then 'click_anonymous_id'
            else 'unidentified'
        end as stitch_rule,
        coalesce({{ names_several_customers('anonymous_ids.customer_id') }}, false)
            as has_conflict,
        min(clicks.first_seen_at) as first_seen_at,
        max(clicks.last_seen_at) as last_seen_at
    from (
        select
            click_id,
            anonymous_id,
            first_seen_at,
            last_seen_at
        from message_groups
        where click_id is not null
    ) as clicks
    left join anonymous_ids
        on clicks.anonymous_id = anonymous_ids.identifier
    group by clicks.click_id

),

-- Order-history members are known by the phone the old POS stored (often
-- the national 0... form, read in [chain] country). A member is the customer
-- with that phone now, else the one who gave it at sign-up (identify
-- traits), since phones change and closed accounts are scrubbed; among
-- several, the earliest sign-up. A member number that is not a phone number
-- (a loyalty id, a uuid) matches nobody.
members as (

    select
        source_customer_ref as member_ref,
        {{ normalised_phone('source_customer_ref') }} as member_phone,
        min(ordered_at) as first_seen_at,
        max(ordered_at) as last_seen_at
    from order_history
    group by source_customer_ref

),

phone_candidates as (

    select
        {{ normalised_phone('phone') }} as phone,
        customer_id,
        1 as priority,
        'member_phone' as stitch_rule
    from customers
    where phone is not null

    union all

    -- trait_phone is an identify call's only.
    select distinct
        {{ normalised_phone('trait_phone') }} as phone,
        customer_id,
        2 as priority,
        'member_phone_at_signup' as stitch_rule
    from message_groups
    where trait_phone is not null and customer_id is not null

),

member_matches as (

    select
        members.member_ref,
        phone_candidates.customer_id,
        phone_candidates.stitch_rule,
        {{ names_several_customers('phone_candidates.customer_id', 'members.member_ref') }}
            as has_conflict
    from members
    inner join phone_candidates
        on members.member_phone = phone_candidates.phone
    left join customers
        on phone_candidates.customer_id = customers.customer_id
    qualify row_number() over (
            partition by members.member_ref
            order by
                phone_candidates.priority asc,
                customers.signed_up_at asc nulls last,
                phone_candidates.customer_id asc
        ) = 1

),

order_history_members as (

    select
        'order_history_member' as identifier_type,
        members.member_ref as identifier,
        member_matches.customer_id,
        coalesce(member_matches.stitch_rule, 'unidentified') as stitch_rule,
        coalesce(member_matches.has_conflict, false) as has_conflict,
        members.first_seen_at,
        members.last_seen_at
    from members
    left join member_matches
        on members.member_ref = member_matches.member_ref

),

unioned as (

    select * from anonymous_ids
    union all
    select * from device_ids
    union all
    select * from user_ids
    union all
    select * from click_ids
    union all
    select * from order_history_members

),

keyed as (

    select
        *,
        identifier_type || ':' || identifier as identity_key
    from unioned

),

final as (

    select
        identity_key,
        identifier_type,
        identifier,
        customer_id,
        stitch_rule,
        has_conflict,
        first_seen_at,
        last_seen_at
    from keyed

)

select * from final
