-- Every customer with a home store counts in exactly that store and its
-- province, so for each month the store rows add up to the province rows.
-- A guest without one (an imported member whose store the platform does not
-- know) counts in the chain only, so province rows add up to at most the
-- chain row, and to exactly the chain row when every guest has a home store.
-- Returns the months and scopes where a flow does not add up.
-- Dagster shows it as a check on churn_monthly.

{{ config(meta={'dagster': {'ref': {'name': 'churn_monthly'}}}) }}

with

churn as (

    select * from {{ ref('churn_monthly') }}

),

flows as (

    select
        activity_month,
        grain,
        province,
        new_customers,
        reactivated_customers,
        churned_customers,
        active_customers_end

    from churn

),

store_sums as (

    select
        activity_month,
        province,
        sum(new_customers) as new_customers,
        sum(reactivated_customers) as reactivated_customers,
        sum(churned_customers) as churned_customers,
        sum(active_customers_end) as active_customers_end

    from flows
    where grain = 'store'
    group by
        activity_month,
        province

),

province_sums as (

    select
        activity_month,
        sum(new_customers) as new_customers,
        sum(reactivated_customers) as reactivated_customers,
        sum(churned_customers) as churned_customers,
        sum(active_customers_end) as active_customers_end

    from flows
    where grain = 'province'
    group by activity_month

),

stores_against_provinces as (

    select
        provinces.activity_month,
        'store' as grain,
        provinces.province

    from flows as provinces
    left join store_sums
        on
            provinces.activity_month = store_sums.activity_month
            and provinces.province = store_sums.province
    where
        provinces.grain = 'province'
        and (
            coalesce(store_sums.new_customers, 0) != provinces.new_customers
            or coalesce(store_sums.reactivated_customers, 0) != provinces.reactivated_customers
            or coalesce(store_sums.churned_customers, 0) != provinces.churned_customers
            or coalesce(store_sums.active_customers_end, 0) != provinces.active_customers_end
        )

),

provinces_against_chain as (

    select
        chain_rows.activity_month,
        'province' as grain,
        cast(null as {{ dbt.type_string() }}) as province

    from flows as chain_rows
    left join province_sums
        on chain_rows.activity_month = province_sums.activity_month
    where
        chain_rows.grain = 'chain'
        and (
            coalesce(province_sums.new_customers, 0) > chain_rows.new_customers
            or coalesce(province_sums.reactivated_customers, 0) > chain_rows.reactivated_customers
            or coalesce(province_sums.churned_customers, 0) > chain_rows.churned_customers
            or coalesce(province_sums.active_customers_end, 0) > chain_rows.active_customers_end
        )

),

final as (

    select * from stores_against_provinces
    union all
    select * from provinces_against_chain

)

select * from final
