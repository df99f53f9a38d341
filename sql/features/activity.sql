-- name: activity
-- grain: account
-- time_column: ts
-- windows: 24h, 7d, 30d
-- typology: all (context for every other family)
-- source: FATF, "Money Laundering and Terrorist Financing Red Flag Indicators" (2021): unusual volume, velocity and timing
-- parameters:
--   as_of: timestamp, required
--   w_24h: interval 24 hours
--   w_7d: interval 7 days
--   w_30d: interval 30 days
--   night_hours: hours counted as night (UTC), required
-- zero_when_absent: count_in_24h, count_out_24h, count_in_7d, count_out_7d, count_in_30d, count_out_30d,
--   sum_in_24h, sum_out_24h, sum_in_7d, sum_out_7d, sum_in_30d, sum_out_30d, distinct_counterparties_7d,
--   distinct_counterparties_30d, active_days_30d
-- columns:
--   count_in_24h / count_out_24h (also 7d, 30d): transactions received / sent in the window
--   sum_in_24h / sum_out_24h (also 7d, 30d): their total in the base currency
--   distinct_counterparties_7d / _30d: distinct accounts dealt with
--   active_days_30d: days with at least one transaction
--   median_hour_30d: median hour of day (UTC) of the account's transactions
--   share_night_30d / share_weekend_30d: share of transactions at night hours / on weekends
with legs as (
    select * from stg_legs where ts > $as_of - $w_30d
),
final as (
    select
        account_id,
        count(*) filter (where direction = 'in' and ts > $as_of - $w_24h) as count_in_24h,
        count(*) filter (where direction = 'out' and ts > $as_of - $w_24h) as count_out_24h,
        count(*) filter (where direction = 'in' and ts > $as_of - $w_7d) as count_in_7d,
        count(*) filter (where direction = 'out' and ts > $as_of - $w_7d) as count_out_7d,
        count(*) filter (where direction = 'in') as count_in_30d,
        count(*) filter (where direction = 'out') as count_out_30d,
        coalesce(sum(amount_base) filter (where direction = 'in' and ts > $as_of - $w_24h), 0)::double as sum_in_24h,
        coalesce(sum(amount_base) filter (where direction = 'out' and ts > $as_of - $w_24h), 0)::double as sum_out_24h,
        coalesce(sum(amount_base) filter (where direction = 'in' and ts > $as_of - $w_7d), 0)::double as sum_in_7d,
        coalesce(sum(amount_base) filter (where direction = 'out' and ts > $as_of - $w_7d), 0)::double as sum_out_7d,
        coalesce(sum(amount_base) filter (where direction = 'in'), 0)::double as sum_in_30d,
        coalesce(sum(amount_base) filter (where direction = 'out'), 0)::double as sum_out_30d,
        count(distinct counterparty) filter (where ts > $as_of - $w_7d) as distinct_counterparties_7d,
        count(distinct counterparty) as distinct_counterparties_30d,
        count(distinct cast(ts as date)) as active_days_30d,
        median(hour_utc) as median_hour_30d,
        avg(case when list_contains($night_hours, hour_utc) then 1.0 else 0.0 end) as share_night_30d,
        avg(case when is_weekend then 1.0 else 0.0 end) as share_weekend_30d,
    from legs
    group by account_id
)
select * from final
