-- name: shell
-- grain: account
-- time_column: ts
-- windows: 30d
-- typology: shell_circulation
-- source: FATF/Egmont "Concealment of Beneficial Ownership" (2018): companies with little real trade, no staff, funds in ≈ funds out, recently formed, dealing with similar companies
-- parameters:
--   as_of: timestamp, required
--   w_30d: interval 30 days
--   payroll_keywords: words that mark a payroll payment in descriptions, required
-- zero_when_absent: is_business, has_payroll_30d
-- columns:
--   is_business: the account holder is a business or merchant (from the accounts table; false when unknown)
--   has_payroll_30d: pays wages (a description with a payroll keyword) in the lookback
--   in_out_imbalance_30d: |in − out| / max(in, out); near 0 = what comes in goes out
--   account_age_days: days since the account was opened (null when unknown)
--   top_counterparty_share_30d: share of volume with the single largest counterparty
--   share_volume_with_businesses_30d: share of volume with business or merchant counterparties
with legs as (
    select l.*, t.description from stg_legs l join stg_transactions t using (txn_id)
    where l.ts > $as_of - $w_30d
),
volumes as (
    select account_id,
           sum(amount_base) filter (where direction = 'in') as vol_in,
           sum(amount_base) filter (where direction = 'out') as vol_out,
           bool_or(direction = 'out' and list_bool_or(
               [contains(upper(coalesce(description, '')), k) for k in $payroll_keywords])) as has_payroll_30d,
    from legs group by all
),
by_counterparty as (
    select l.account_id, l.counterparty, sum(l.amount_base) as volume,
           bool_or(coalesce(a.is_business, false)) as counterparty_is_business
    from legs l left join stg_accounts a on a.account_id = l.counterparty
    where l.counterparty is not null
    group by all
),
concentration as (
    select account_id,
           max(volume) / nullif(sum(volume), 0) as top_counterparty_share_30d,
           sum(volume) filter (where counterparty_is_business) / nullif(sum(volume), 0)
               as share_volume_with_businesses_30d,
    from by_counterparty group by all
),
final as (
    select
        v.account_id,
        coalesce(a.is_business, false) as is_business,
        coalesce(v.has_payroll_30d, false) as has_payroll_30d,
        abs(coalesce(v.vol_in, 0) - coalesce(v.vol_out, 0))
            / nullif(greatest(coalesce(v.vol_in, 0), coalesce(v.vol_out, 0)), 0) as in_out_imbalance_30d,
        date_diff('day', a.opened_date, cast($as_of as date)) as account_age_days,
        c.top_counterparty_share_30d,
        coalesce(c.share_volume_with_businesses_30d, 0) as share_volume_with_businesses_30d,
    from volumes v
    left join stg_accounts a using (account_id)
    left join concentration c using (account_id)
)
select * from final
