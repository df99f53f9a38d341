-- name: funnel
-- grain: account
-- time_column: ts
-- windows: 30d
-- typology: funnel_account
-- source: FinCEN FIN-2014-A005 ("funnel accounts"): cash deposited in one geographic area, withdrawn in another
-- parameters:
--   as_of: timestamp, required
--   w_30d: interval 30 days
-- evidence:
--   funnel: cash
-- zero_when_absent: distinct_cash_in_cities_30d, distinct_cash_out_cities_30d
-- columns:
--   distinct_cash_in_cities_30d / distinct_cash_out_cities_30d: cities of cash deposits / withdrawals
--   share_cash_out_elsewhere_30d: share of cash withdrawn in cities where the account made no deposit
with cash as (
    select * from stg_legs where channel = 'cash' and counterparty is null and ts > $as_of - $w_30d
),
ins as (
    select distinct account_id, city from cash where direction = 'in' and city is not null
),
outs as (
    select account_id, city, amount_base from cash where direction = 'out'
),
final as (
    select
        c.account_id,
        count(distinct c.city) filter (where c.direction = 'in') as distinct_cash_in_cities_30d,
        count(distinct c.city) filter (where c.direction = 'out') as distinct_cash_out_cities_30d,
        (select sum(o.amount_base) from outs o
         where o.account_id = c.account_id and exists (select 1 from ins where ins.account_id = c.account_id)
           and not exists (select 1 from ins where ins.account_id = o.account_id and ins.city = o.city))
        / nullif((select sum(o.amount_base) from outs o where o.account_id = c.account_id), 0)
            as share_cash_out_elsewhere_30d,
    from cash c
    group by c.account_id
)
select * from final
