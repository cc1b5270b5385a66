-- Every customer counts in exactly one home store and its province, so for
-- each month the store rows and the province rows add up to the chain row.
-- Returns the months and scopes where a flow does not add up.
-- Dagster shows it as a check on churn_monthly.

{{ config(meta={'dagster': {'ref': {'name': 'churn_monthly'}}}) }}

with

churn as (

    select * from {{ ref('churn_monthly') }}

),

by_grain as (

    select
        activity_month,
        grain,
        sum(new_customers) as new_customers,
        sum(reactivated_customers) as reactivated_customers,
        sum(churned_customers) as churned_customers,
        sum(active_customers_end) as active_customers_end

    from churn
    group by
        activity_month,
        grain

),

chain as (

    select * from by_grain
    where grain = 'chain'

),

final as (

    select
        by_grain.activity_month,
        by_grain.grain,
        by_grain.churned_customers,
        chain.churned_customers as chain_churned_customers

    from by_grain
    inner join chain
        on by_grain.activity_month = chain.activity_month
    where
        by_grain.grain != 'chain'
        and (
            by_grain.new_customers != chain.new_customers
            or by_grain.reactivated_customers != chain.reactivated_customers
            or by_grain.churned_customers != chain.churned_customers
            or by_grain.active_customers_end != chain.active_customers_end
        )

)

select * from final
