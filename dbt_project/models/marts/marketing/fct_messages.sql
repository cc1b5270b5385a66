{#-
    One row per campaign and guest of its audience: every message the provider
    handled (sent, or dropped because the address is suppressed) and every
    guest held out.

    Holdout rule. The provider reports sends only: a held-out guest leaves no
    event. The holdout is rebuilt as the campaign's audience minus the guests
    with any event for it. The audience is read from the ordering platform:
    signed up before the send, account open, consenting to the channel (SMS:
    with a phone number), and for a win-back campaign lapsed (no order in the
    winback_lapsed_after_days before the send day, one in the
    winback_lapsed_within_days before). The lake holds customers in their
    latest state only, so a guest's consent at the send is known only while
    their row has not changed since (updated_at <= the send): guests whose
    profile changed later (or who closed their account since) are left out of
    the rebuilt audience, held out and treated alike. Being left out does not
    depend on the holdout draw, so treated and held-out guests of what remains
    (is_comparable) compare fairly.

    Customer.io's segment definitions are not in the lake either: a campaign
    is a win-back when at least winback_min_lapsed_share of its recipients
    were lapsed at the send.

    Window rule. Orders count for a row when they are completed, not deleted
    (the fct_orders revenue rule) and placed after the campaign's send and
    at most message_conversion_window_days later. The window starts at the
    campaign's send for every row, treated or held out, so both groups are
    measured over the same days.
-#}

with

delivery_events as (

    select * from {{ ref('stg_messaging__delivery_events') }}

),

customers as (

    select * from {{ ref('stg_ordering__customers') }}

),

orders as (

    select * from {{ ref('stg_ordering__orders') }}

),

campaigns as (

    select
        campaign_id,
        min(channel) as channel,
        max(subject) as subject,
        -- The send starts with its first `sent` (or `dropped`) event.
        coalesce(
            min(case when metric in ('sent', 'dropped') then occurred_at end),
            min(occurred_at)
        ) as campaign_sent_at

    from delivery_events
    group by campaign_id

),

messages as (

    select
        delivery_id,
        campaign_id,
        min(customer_id) as customer_id,
        min(case when metric = 'sent' then occurred_at end) as sent_at,
        min(case when metric = 'delivered' then occurred_at end) as delivered_at,
        min(case when metric = 'opened' then occurred_at end) as opened_at,
        min(case when metric = 'clicked' then occurred_at end) as clicked_at,
        count(case when metric = 'sent' then 1 end) > 0 as is_sent,
        count(case when metric = 'delivered' then 1 end) > 0 as is_delivered,
        count(case when metric = 'opened' then 1 end) > 0 as is_opened,
        count(case when metric = 'clicked' and not is_machine_click then 1 end) > 0 as is_clicked,
        count(case when metric = 'unsubscribed' then 1 end) > 0 as is_unsubscribed,
        count(case when metric = 'bounced' then 1 end) > 0 as is_bounced,
        count(case when metric = 'dropped' then 1 end) > 0 as is_dropped,
        count(case when metric = 'failed' then 1 end) > 0 as is_failed,
        max(failure_message) as failure_message

    from delivery_events
    group by delivery_id, campaign_id

),

-- The send's local day, once per campaign: converted per order pair below, the
-- time zone conversion cost more than the rest of the model.
campaign_send_days as (

    select
        campaign_id,
        {{ utc_to_local_date('campaign_sent_at') }} as campaign_sent_date

    from campaigns

),

-- Per campaign and guest: days from the guest's last order before the send
-- day to the send day, looking back winback_lapsed_within_days. Every order
-- the platform recorded counts (cancelled and soft-deleted too): it was an
-- order when the segment was evaluated.
last_orders_before_send as (

    select
        campaign_send_days.campaign_id,
        orders.customer_id,
        min(
            {{ dbt.datediff('orders.placed_date', 'campaign_send_days.campaign_sent_date', 'day') }}
        ) as days_since_last_order

    from campaign_send_days
    inner join orders
        on
            campaign_send_days.campaign_sent_date > orders.placed_date
            and cast({{ dbt.dateadd(
                'day',
                -1 * var('winback_lapsed_within_days', 120),
                'campaign_send_days.campaign_sent_date'
            ) }} as date) <= orders.placed_date
    group by campaign_send_days.campaign_id, orders.customer_id

),

lapsed_guests as (

    select
        campaign_id,
        customer_id

    from last_orders_before_send
    where days_since_last_order > {{ var('winback_lapsed_after_days', 30) }}

),

lapsed_campaigns as (

    select messages.campaign_id

    from messages
    left join lapsed_guests
        on
            messages.campaign_id = lapsed_guests.campaign_id
            and messages.customer_id = lapsed_guests.customer_id
    group by messages.campaign_id
    having
        avg(case when lapsed_guests.customer_id is not null then 1.0 else 0.0 end)
        >= {{ var('winback_min_lapsed_share', 0.95) }}

),

audience as (

    select
        campaigns.campaign_id,
        customers.customer_id

    from campaigns
    inner join customers
        on
            campaigns.campaign_sent_at > customers.signed_up_at
            -- The row as the send saw it: consent and phone read now are as then.
            and campaigns.campaign_sent_at >= customers.updated_at
            and not customers.is_deleted
            and (
                (campaigns.channel = 'email' and customers.has_email_consent)
                or (
                    campaigns.channel = 'sms'
                    and customers.has_sms_consent
                    and customers.phone is not null
                )
            )
    left join lapsed_campaigns
        on campaigns.campaign_id = lapsed_campaigns.campaign_id
    left join lapsed_guests
        on
            campaigns.campaign_id = lapsed_guests.campaign_id
            and customers.customer_id = lapsed_guests.customer_id
    where lapsed_campaigns.campaign_id is null or lapsed_guests.customer_id is not null

),

members as (

    select
        messages.delivery_id,
        messages.sent_at,
        messages.delivered_at,
        messages.opened_at,
        messages.clicked_at,
        messages.failure_message,
        coalesce(messages.campaign_id, audience.campaign_id) as campaign_id,
        coalesce(messages.customer_id, audience.customer_id) as customer_id,
        messages.delivery_id is null as is_holdout,
        audience.customer_id is not null as is_comparable,
        coalesce(messages.is_sent, false) as is_sent,
        coalesce(messages.is_delivered, false) as is_delivered,
        coalesce(messages.is_opened, false) as is_opened,
        coalesce(messages.is_clicked, false) as is_clicked,
        coalesce(messages.is_unsubscribed, false) as is_unsubscribed,
        coalesce(messages.is_bounced, false) as is_bounced,
        coalesce(messages.is_dropped, false) as is_dropped,
        coalesce(messages.is_failed, false) as is_failed

    from messages
    full outer join audience
        on
            messages.campaign_id = audience.campaign_id
            and messages.customer_id = audience.customer_id

),

members_in_window as (

    select
        members.*,
        campaigns.channel,
        campaigns.subject,
        campaigns.campaign_sent_at,
        {{ dbt.dateadd(
            'day', var('message_conversion_window_days'), 'campaigns.campaign_sent_at'
        ) }} as window_ends_at

    from members
    inner join campaigns
        on members.campaign_id = campaigns.campaign_id

),

window_orders as (

    select
        members_in_window.campaign_id,
        members_in_window.customer_id,
        count(orders.order_id) as orders_in_window,
        {{ to_money('sum(orders.total)') }} as net_revenue_in_window

    from members_in_window
    inner join orders
        on
            members_in_window.customer_id = orders.customer_id
            and members_in_window.campaign_sent_at < orders.placed_at
            and members_in_window.window_ends_at >= orders.placed_at
    where orders.status = 'completed' and not orders.is_deleted
    group by members_in_window.campaign_id, members_in_window.customer_id

),

data_horizon as (

    select max(placed_at) as last_order_placed_at
    from orders

),

final as (

    select
        -- ids
        cast(members_in_window.campaign_id as {{ dbt.type_string() }})
        || '-'
        || cast(members_in_window.customer_id as {{ dbt.type_string() }}) as message_key,
        members_in_window.delivery_id,
        members_in_window.campaign_id,
        members_in_window.customer_id,

        -- attributes
        members_in_window.channel,
        members_in_window.subject,
        members_in_window.failure_message,

        -- flags
        members_in_window.is_holdout,
        members_in_window.is_comparable,
        members_in_window.is_sent,
        members_in_window.is_delivered,
        members_in_window.is_opened,
        members_in_window.is_clicked,
        members_in_window.is_unsubscribed,
        members_in_window.is_bounced,
        members_in_window.is_dropped,
        members_in_window.is_failed,
        -- Without the platform's orders (a chain with messaging but no ordering DB) no window's
        -- outcome is known: none is closed.
        coalesce(
            members_in_window.window_ends_at <= data_horizon.last_order_placed_at, false
        ) as is_window_closed,
        coalesce(window_orders.orders_in_window, 0) > 0 as has_ordered_in_window,

        -- conversions within the window
        coalesce(window_orders.orders_in_window, 0) as orders_in_window,
        coalesce(window_orders.net_revenue_in_window, {{ to_money(0) }})
            as net_revenue_in_window,

        -- timestamps (UTC)
        members_in_window.campaign_sent_at,
        {{ utc_to_local_date('members_in_window.campaign_sent_at') }} as campaign_sent_date,
        members_in_window.window_ends_at,
        members_in_window.sent_at,
        members_in_window.delivered_at,
        members_in_window.opened_at,
        members_in_window.clicked_at

    from members_in_window
    cross join data_horizon
    left join window_orders
        on
            members_in_window.campaign_id = window_orders.campaign_id
            and members_in_window.customer_id = window_orders.customer_id

)

select * from final
