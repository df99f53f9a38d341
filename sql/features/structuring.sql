-- name: structuring
-- grain: account
-- time_column: ts
-- windows: 24h, 5d, 30d
-- typology: structuring, smurfing
-- source: 31 CFR 1010.314 (structuring); FinCEN FIN-2014-A005 red flags: cash deposits just below the $10,000 CTR threshold, at several branches, by several depositors, followed by wires
-- parameters:
--   as_of: timestamp, required
--   threshold: reporting threshold in the base currency, required
--   near_share: 0.8
--   w_24h: interval 24 hours
--   w_5d: interval 5 days
--   w_30d: interval 30 days
--   w_wire_after: interval 72 hours
-- columns:
--   count_cash_near_threshold_24h / _5d / _30d: cash deposits in [near_share × threshold, threshold)
--   sum_cash_near_threshold_30d: their total
--   max_cash_near_threshold_day_total_30d: largest one-day total of such deposits (over the threshold = split)
--   distinct_branches_near_threshold_30d / distinct_cities_near_threshold_30d: where they were made
--   distinct_depositors_near_threshold_30d: distinct named depositors (third parties bringing cash)
--   repeated_near_amounts_30d: near-threshold deposits sharing the same hundreds with another one
--   count_cash_in_then_wire_out_30d: near-threshold deposits followed by a wire out within w_wire_after
with deposits as (
    select * from stg_legs
    where direction = 'in' and channel = 'cash' and counterparty is null and ts > $as_of - $w_30d
),
near as (
    select d.*, t.counterparty_name
    from deposits d join stg_transactions t using (txn_id)
    where d.amount_base >= $near_share * $threshold and d.amount_base < $threshold
),
daily as (
    select account_id, cast(ts as date) as day, sum(amount_base) as day_total from near group by all
),
repeated as (
    select account_id, sum(n) as repeated_near_amounts_30d
    from (select account_id, floor(amount_base / 100) as bucket, count(*) as n from near group by all)
    where n > 1 group by account_id
),
wired as (
    select n.account_id, count(distinct n.txn_id) as count_cash_in_then_wire_out_30d
    from near n join stg_legs w
      on w.account_id = n.account_id and w.direction = 'out' and w.channel = 'wire'
     and w.ts > n.ts and w.ts <= n.ts + $w_wire_after
    group by n.account_id
),
final as (
    select
        account_id,
        count(*) filter (where ts > $as_of - $w_24h) as count_cash_near_threshold_24h,
        count(*) filter (where ts > $as_of - $w_5d) as count_cash_near_threshold_5d,
        count(*) as count_cash_near_threshold_30d,
        sum(amount_base) as sum_cash_near_threshold_30d,
        count(distinct branch) as distinct_branches_near_threshold_30d,
        count(distinct city) as distinct_cities_near_threshold_30d,
        count(distinct counterparty_name) as distinct_depositors_near_threshold_30d,
    from near group by account_id
)
select
    final.*,
    (select max(day_total) from daily where daily.account_id = final.account_id)
        as max_cash_near_threshold_day_total_30d,
    coalesce(repeated.repeated_near_amounts_30d, 0) as repeated_near_amounts_30d,
    coalesce(wired.count_cash_in_then_wire_out_30d, 0) as count_cash_in_then_wire_out_30d,
from final
left join repeated using (account_id)
left join wired using (account_id)
