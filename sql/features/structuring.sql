-- name: structuring
-- grain: account
-- time_column: ts
-- windows: 24h, 5d, 30d, aggregation_window (default: the UTC calendar day)
-- typology: structuring, smurfing
-- source: the jurisdiction's structuring law (law.structuring: 31 CFR 1010.314 by default); FinCEN FIN-2014-A005 red flags: cash deposits just below the configured reporting threshold (law.threshold), at several branches, by several depositors, followed by wires
-- parameters:
--   as_of: timestamp, required
--   w_24h: interval 24 hours
--   w_5d: interval 5 days
--   w_30d: interval 30 days
--   w_wire_after: interval 72 hours
--   aggregate_by_day: cash adds up over the UTC calendar day (no aggregation_window configured), required
--   aggregation_window: the rolling period cash adds up over otherwise, required
-- evidence:
--   structuring: cash_deposits_near
-- zero_when_absent: count_cash_near_threshold_24h, count_cash_near_threshold_5d, count_cash_near_threshold_30d,
--   sum_cash_near_threshold_30d, distinct_branches_near_threshold_30d, distinct_cities_near_threshold_30d,
--   distinct_depositors_near_threshold_30d, max_cash_near_threshold_day_total_30d, repeated_near_amounts_30d,
--   count_cash_in_then_wire_out_30d
-- columns:
--   count_cash_near_threshold_24h / _5d / _30d: cash deposits in the near-threshold band (stg_transactions)
--   sum_cash_near_threshold_30d: their total
--   max_cash_near_threshold_day_total_30d: largest total of such deposits within one aggregation period: a UTC
--     calendar day, or any rolling aggregation_window (over the threshold = split)
--   distinct_branches_near_threshold_30d / distinct_cities_near_threshold_30d: where they were made
--   distinct_depositors_near_threshold_30d: distinct named depositors (third parties bringing cash)
--   repeated_near_amounts_30d: near-threshold deposits sharing the same hundreds with another one
--   count_cash_in_then_wire_out_30d: near-threshold deposits followed by a wire out within w_wire_after
with cash_deposits_near as (
    select * from stg_legs
    where direction = 'in' and channel = 'cash' and is_near_threshold and ts > $as_of - $w_30d
),
near as (
    select * from cash_deposits_near where counterparty is null
),
period_totals as (
    select account_id, sum(amount_base) as total
    from near where $aggregate_by_day group by account_id, cast(ts as date)
    union all
    select account_id, sum(amount_base) over (partition by account_id order by ts
                                             range between ($aggregation_window - interval 1 microsecond) preceding
                                                       and current row)
    from near where not $aggregate_by_day
),
largest as (
    select account_id, max(total)::double as max_cash_near_threshold_day_total_30d from period_totals group by all
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
counts as (
    select
        account_id,
        count(*) filter (where ts > $as_of - $w_24h) as count_cash_near_threshold_24h,
        count(*) filter (where ts > $as_of - $w_5d) as count_cash_near_threshold_5d,
        count(*) as count_cash_near_threshold_30d,
        sum(amount_base)::double as sum_cash_near_threshold_30d,
        count(distinct branch) as distinct_branches_near_threshold_30d,
        count(distinct city) as distinct_cities_near_threshold_30d,
        count(distinct counterparty_name) as distinct_depositors_near_threshold_30d,
    from near group by account_id
),
final as (
    select
        counts.*,
        largest.max_cash_near_threshold_day_total_30d,
        coalesce(repeated.repeated_near_amounts_30d, 0) as repeated_near_amounts_30d,
        coalesce(wired.count_cash_in_then_wire_out_30d, 0) as count_cash_in_then_wire_out_30d,
    from counts
    left join largest using (account_id)
    left join repeated using (account_id)
    left join wired using (account_id)
)
select * from final
