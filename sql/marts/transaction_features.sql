-- name: transaction_features
-- grain: transaction (every transaction up to as_of)
-- time_column: ts
-- windows: 24h, 7d, 30d (trailing: ts − w < other ts <= ts, so transactions at the same time count); 48h relays
-- typology: all (the AMLworld benchmark scores transactions)
-- source: stg_legs and the cycles family; features of each side computed in timestamp order, without look-ahead
-- parameters:
--   w_24h: interval 24 hours
--   w_7d: interval 7 days
--   w_30d: interval 30 days
--   w_5d: interval 5 days
--   sg_tolerance: 0.2
-- columns:
--   src_count_out_24h / src_sum_out_24h / src_distinct_receivers_7d: the sender's activity up to this transaction
--   src_count_in_24h / src_sum_in_24h: what the sender received in the 24 h up to it
--   dst_count_in_24h / dst_sum_in_24h / dst_distinct_senders_7d: the receiver's activity up to it
--   dst_count_out_24h: what the receiver paid out in the 24 h up to it
--   src_forwards_recent_inflow: the sender received, within 48 h before, an amount this one is within
--     sg_tolerance below (a relay: scatter-gather, stack, pass-through)
--   closes_cycle / cycle_length: this transaction closes a temporal cycle (its path is in the cycles evidence);
--     cycle_length is the longest when several close on it
--   amount_base: the amount in the base currency
--   src_count_out_30d / src_sum_out_30d / dst_count_in_30d / dst_sum_in_30d: each side's 30-day activity up to it
--   src_distinct_receivers_24h / dst_distinct_senders_24h: counterparties of each side in the 24 h up to it
--   src_hours_known / dst_hours_known: hours since the account's first transaction in the store (0: its first)
--   pair_count_before: earlier transactions from this sender to this receiver (strictly before it)
--   amount_to_src_mean_30d: the amount over the sender's mean outgoing amount in the 30 days up to it
--   amount_to_dst_mean_30d: the amount over the receiver's mean incoming amount in the 30 days up to it
--   src_new_receivers_24h / dst_new_senders_24h: counterparties in the 24 h up to it dealt with for the first time
--   dst_in_amount_cv_24h: spread (standard deviation over mean) of the receiver's inflows in the 24 h up to it
--   src_hours_since_previous_out / dst_hours_since_previous_in: hours since the sender's previous payment out /
--     the receiver's previous inflow (null: the first)
--   is_cash_near_threshold: a cash movement in the near-threshold band (stg_transactions.is_near_threshold)
--   dst_cash_near_threshold_5d / src_cash_near_threshold_5d: such cash movements of the receiver / sender in the
--     5 days up to and including this one (structuring)
--   hour_utc / is_weekend: when it happened (UTC)
--   is_round_amount: a whole multiple of 100 in its own currency
--   is_self_transfer: sender and receiver are the same account (cash handling in some exports)
--   is_cross_institution: sender and receiver hold their accounts at different institutions
--   channel_cash / channel_wire / channel_ach / channel_card / channel_cheque / channel_p2p / channel_crypto / channel_internal: how the money moved, one indicator per canonical channel
with pairs as (
    select txn_id,
           count(*) over (partition by src_account, dst_account order by ts
                          range between unbounded preceding and interval 1 microsecond preceding) as pair_count_before
    from stg_transactions
    where src_account is not null and dst_account is not null
),
legs as (
    select l.*, coalesce(p.pair_count_before, 0) = 0 as first_with_counterparty,
           l.channel = 'cash' and l.is_near_threshold as cash_near_threshold,
           -- squared in floating point, then exact like amount_base: a sum of squares for the spread
           cast(l.amount_base::double * l.amount_base::double as decimal(38, 8)) as amount_base_squared,
    from stg_legs l left join pairs p using (txn_id)
),
windowed as (
    select
        account_id, txn_id, direction,
        count(*) filter (where direction = 'out') over w24 as count_out_24h,
        coalesce(sum(amount_base) filter (where direction = 'out') over w24, 0)::double as sum_out_24h,
        count(*) filter (where direction = 'in') over w24 as count_in_24h,
        coalesce(sum(amount_base) filter (where direction = 'in') over w24, 0)::double as sum_in_24h,
        count(distinct counterparty) filter (where direction = 'out') over w7 as distinct_receivers_7d,
        count(distinct counterparty) filter (where direction = 'in') over w7 as distinct_senders_7d,
        count(distinct counterparty) filter (where direction = 'out') over w24 as distinct_receivers_24h,
        count(distinct counterparty) filter (where direction = 'in') over w24 as distinct_senders_24h,
        count(*) filter (where direction = 'out') over w30 as count_out_30d,
        coalesce(sum(amount_base) filter (where direction = 'out') over w30, 0)::double as sum_out_30d,
        count(*) filter (where direction = 'in') over w30 as count_in_30d,
        coalesce(sum(amount_base) filter (where direction = 'in') over w30, 0)::double as sum_in_30d,
        count(distinct counterparty) filter (where direction = 'out' and first_with_counterparty) over w24
            as new_receivers_24h,
        count(distinct counterparty) filter (where direction = 'in' and first_with_counterparty) over w24
            as new_senders_24h,
        sum(amount_base_squared) filter (where direction = 'in') over w24 as sum_squares_in_24h,
        min(amount_base) filter (where direction = 'in') over w24 as min_in_24h,
        max(amount_base) filter (where direction = 'in') over w24 as max_in_24h,
        count(*) filter (where cash_near_threshold) over w5 as cash_near_threshold_5d,
        -- the earliest transaction of the account is never later than this one: no look-ahead
        date_diff('second', min(ts) over (partition by account_id), ts) / 3600.0 as hours_known,
        date_diff('second', lag(ts) over (partition by account_id, direction order by ts, txn_id), ts) / 3600.0
            as hours_since_previous,
    from legs
    -- (ts − w, ts]: the same half-open windows as the account level
    window w24 as (partition by account_id order by ts
                   range between ($w_24h - interval 1 microsecond) preceding and current row),
           w5 as (partition by account_id order by ts
                  range between ($w_5d - interval 1 microsecond) preceding and current row),
           w7 as (partition by account_id order by ts
                  range between ($w_7d - interval 1 microsecond) preceding and current row),
           w30 as (partition by account_id order by ts
                   range between ($w_30d - interval 1 microsecond) preceding and current row)
),
spread as (
    -- the receiver's inflows' standard deviation over their mean, from exact sums (stddev_pop over floats depends
    -- on the order rows are combined in): the population variance Σx²/n − mean², 0 when every amount is the same
    select *,
           case when min_in_24h = max_in_24h then 0.0
                else coalesce(sqrt(greatest(sum_squares_in_24h::double / count_in_24h
                                            - power(sum_in_24h / count_in_24h, 2), 0))
                              / nullif(sum_in_24h / count_in_24h, 0), 0)
           end as in_amount_cv_24h,
    from windowed
),
relays as (
    select distinct o.txn_id
    from legs o join legs i
      on i.account_id = o.account_id and i.direction = 'in' and o.direction = 'out'
     and i.ts < o.ts and i.ts >= o.ts - interval 48 hours
     and o.amount_base <= i.amount_base and o.amount_base >= (1 - $sg_tolerance) * i.amount_base
),
closing as (
    select txn_ids[-1] as txn_id, max(length) as cycle_length from feat_cycles group by all
),
final as (
    select
        t.txn_id, t.ts, t.src_account, t.dst_account, t.amount_base::double as amount_base, t.channel,
        s.count_out_24h as src_count_out_24h, s.sum_out_24h as src_sum_out_24h,
        s.count_in_24h as src_count_in_24h, s.sum_in_24h as src_sum_in_24h,
        s.distinct_receivers_7d as src_distinct_receivers_7d,
        d.count_in_24h as dst_count_in_24h, d.sum_in_24h as dst_sum_in_24h,
        d.count_out_24h as dst_count_out_24h, d.distinct_senders_7d as dst_distinct_senders_7d,
        r.txn_id is not null as src_forwards_recent_inflow,
        c.txn_id is not null as closes_cycle,
        coalesce(c.cycle_length, 0) as cycle_length,
        s.count_out_30d as src_count_out_30d, s.sum_out_30d as src_sum_out_30d,
        d.count_in_30d as dst_count_in_30d, d.sum_in_30d as dst_sum_in_30d,
        s.distinct_receivers_24h as src_distinct_receivers_24h, d.distinct_senders_24h as dst_distinct_senders_24h,
        s.hours_known as src_hours_known, d.hours_known as dst_hours_known,
        s.new_receivers_24h as src_new_receivers_24h, d.new_senders_24h as dst_new_senders_24h,
        d.in_amount_cv_24h as dst_in_amount_cv_24h,
        s.hours_since_previous as src_hours_since_previous_out, d.hours_since_previous as dst_hours_since_previous_in,
        coalesce(p.pair_count_before, 0) as pair_count_before,
        t.amount_base / nullif(s.sum_out_30d / nullif(s.count_out_30d, 0), 0) as amount_to_src_mean_30d,
        t.amount_base / nullif(d.sum_in_30d / nullif(d.count_in_30d, 0), 0) as amount_to_dst_mean_30d,
        t.channel = 'cash' and t.is_near_threshold as is_cash_near_threshold,
        d.cash_near_threshold_5d as dst_cash_near_threshold_5d, s.cash_near_threshold_5d as src_cash_near_threshold_5d,
        t.hour_utc, t.is_weekend,
        t.amount % 100 = 0 as is_round_amount,
        coalesce(t.src_account = t.dst_account, false) as is_self_transfer,
        coalesce(t.src_institution <> t.dst_institution, false) as is_cross_institution,
        -- the canonical channels (finwatch.schema.Channel), one indicator each
        t.channel = 'cash' as channel_cash, t.channel = 'wire' as channel_wire, t.channel = 'ach' as channel_ach,
        t.channel = 'card' as channel_card, t.channel = 'cheque' as channel_cheque, t.channel = 'p2p' as channel_p2p,
        t.channel = 'crypto' as channel_crypto, t.channel = 'internal' as channel_internal,
    from stg_transactions t
    left join spread s on s.txn_id = t.txn_id and s.direction = 'out' and s.account_id = t.src_account
    left join spread d on d.txn_id = t.txn_id and d.direction = 'in' and d.account_id = t.dst_account
    left join relays r on r.txn_id = t.txn_id
    left join closing c on c.txn_id = t.txn_id
    left join pairs p on p.txn_id = t.txn_id
)
select * from final order by ts, txn_id
