-- name: transaction_features
-- grain: transaction (every transaction up to as_of)
-- time_column: ts
-- windows: 24h, 7d (trailing: ts − w < other ts <= ts, so transactions at the same time count)
-- typology: all (the AMLworld benchmark scores transactions)
-- source: stg_legs and the cycles family; features of each side computed in timestamp order, without look-ahead
-- parameters:
--   w_24h: interval 24 hours
--   w_7d: interval 7 days
--   sg_tolerance: 0.2
-- columns:
--   src_count_out_24h / src_sum_out_24h / src_distinct_receivers_7d: the sender's activity up to this transaction
--   src_count_in_24h / src_sum_in_24h: what the sender received in the 24 h up to it
--   dst_count_in_24h / dst_sum_in_24h / dst_distinct_senders_7d: the receiver's activity up to it
--   dst_count_out_24h: what the receiver paid out in the 24 h up to it
--   src_forwards_recent_inflow: the sender received, within 48 h before, an amount this one is within
--     sg_tolerance below (a relay: scatter-gather, stack, pass-through)
--   closes_cycle / cycle_length: this transaction closes a temporal cycle (its path is in the cycles evidence)
with legs as (
    select * from stg_legs
),
windowed as (
    select
        account_id, txn_id, direction,
        count(*) filter (where direction = 'out') over w24 as count_out_24h,
        coalesce(sum(amount_base) filter (where direction = 'out') over w24, 0) as sum_out_24h,
        count(*) filter (where direction = 'in') over w24 as count_in_24h,
        coalesce(sum(amount_base) filter (where direction = 'in') over w24, 0) as sum_in_24h,
        count(distinct counterparty) filter (where direction = 'out') over w7 as distinct_receivers_7d,
        count(distinct counterparty) filter (where direction = 'in') over w7 as distinct_senders_7d,
    from legs
    -- (ts − w, ts]: the same half-open windows as the account level
    window w24 as (partition by account_id order by ts
                   range between ($w_24h - interval 1 microsecond) preceding and current row),
           w7 as (partition by account_id order by ts
                  range between ($w_7d - interval 1 microsecond) preceding and current row)
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
        t.txn_id, t.ts, t.src_account, t.dst_account, t.amount_base, t.channel,
        s.count_out_24h as src_count_out_24h, s.sum_out_24h as src_sum_out_24h,
        s.count_in_24h as src_count_in_24h, s.sum_in_24h as src_sum_in_24h,
        s.distinct_receivers_7d as src_distinct_receivers_7d,
        d.count_in_24h as dst_count_in_24h, d.sum_in_24h as dst_sum_in_24h,
        d.count_out_24h as dst_count_out_24h, d.distinct_senders_7d as dst_distinct_senders_7d,
        r.txn_id is not null as src_forwards_recent_inflow,
        c.txn_id is not null as closes_cycle,
        coalesce(c.cycle_length, 0) as cycle_length,
    from stg_transactions t
    left join windowed s on s.txn_id = t.txn_id and s.direction = 'out' and s.account_id = t.src_account
    left join windowed d on d.txn_id = t.txn_id and d.direction = 'in' and d.account_id = t.dst_account
    left join relays r on r.txn_id = t.txn_id
    left join closing c on c.txn_id = t.txn_id
)
select * from final order by ts, txn_id
