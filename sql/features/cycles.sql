-- name: cycles
-- grain: cycle (evidence: one row per temporal cycle, its accounts and transactions in order)
-- time_column: ts
-- windows: cycle_window (span of one cycle), lookback (edges considered)
-- typology: cycle, shell_circulation
-- source: AMLworld "cycle" pattern (Altman et al., NeurIPS 2023); FATF "Trade-Based Money Laundering" (2020): round-tripping through related companies
-- parameters:
--   as_of: timestamp, required
--   lookback: interval 30 days
--   cycle_window: interval 7 days
--   cycle_max_length: 6
--   cycle_tolerance: 0.1
--   cycle_min_amount: 100
-- columns:
--   cycle_id: stable id of the cycle (hash of its transactions)
--   accounts: the accounts in order, first = last
--   txn_ids: the transactions in time order
--   length: number of hops (2..cycle_max_length)
--   started_at / closed_at: time of the first and last hop (closed_at - started_at <= cycle_window)
--   amount_first / amount_last: amounts of the first and last hop (each hop within cycle_tolerance of the one before)
with recursive edges as (
    select txn_id, src_account as src, dst_account as dst, ts, amount_base as amount
    from stg_transactions
    where src_account is not null and dst_account is not null and src_account <> dst_account
      and channel <> 'card' and ts > $as_of - $lookback and amount_base >= $cycle_min_amount
),
nodes as (
    select src as node from edges intersect select dst as node from edges
),
candidate as (
    select * from edges where src in (select node from nodes) and dst in (select node from nodes)
),
paths as (
    select src as origin, ts as started_at, dst as node, ts as last_ts, amount as first_amount,
           amount as last_amount, [src, dst] as accounts, [txn_id] as txn_ids, 1 as length
    from candidate
    union all
    select p.origin, p.started_at, e.dst, e.ts, p.first_amount, e.amount, list_append(p.accounts, e.dst),
           list_append(p.txn_ids, e.txn_id), p.length + 1
    from paths p
    join candidate e on e.src = p.node
    where p.length < $cycle_max_length and p.node <> p.origin
      and e.ts > p.last_ts and e.ts <= p.started_at + $cycle_window
      and abs(e.amount - p.last_amount) <= $cycle_tolerance * p.last_amount
      and (e.dst = p.origin or not list_contains(p.accounts, e.dst))
),
final as (
    select
        md5(array_to_string(txn_ids, ',')) as cycle_id,
        accounts,
        txn_ids,
        length,
        started_at,
        last_ts as closed_at,
        first_amount::double as amount_first,
        last_amount::double as amount_last,
    from paths
    where node = origin and length >= 2
)
select * from final order by started_at, cycle_id
