-- name: crypto
-- grain: account
-- time_column: ts
-- windows: 30d (lookback), peel_window (between hops)
-- typology: crypto_layering
-- source: FATF "Virtual Assets Red Flag Indicators" (2020): peel chains, transfers to newly created addresses, quick moves to exchanges
-- parameters:
--   as_of: timestamp, required
--   w_30d: interval 30 days
--   peel_window: interval 12 hours
--   peel_keep_share: 0.8
--   peel_max_hops: 12
-- evidence:
--   crypto: onchain_legs
-- zero_when_absent: peel_chain_length_30d, count_fresh_address_out_30d
-- columns:
--   peel_chain_length_30d: hops of the longest peel chain through the address (each hop passes on at least
--     peel_keep_share of what arrived, within peel_window, to an address with no earlier history)
--   count_fresh_address_out_30d: on-chain payments to addresses seen for the first time
--   share_crypto_out_to_exchange_30d: share of on-chain outflow to exchange-held addresses (accounts table)
with recursive onchain as (
    select txn_id, src_account as src, dst_account as dst, ts, amount_base as amount
    from stg_transactions where chain is not null and src_account is not null and dst_account is not null
),
onchain_legs as (
    -- evidence: the address's on-chain transfers in and out over the lookback
    select * from stg_legs where chain is not null and ts > $as_of - $w_30d
),
first_seen as (
    select account, min(ts) as first_ts
    from (select src as account, ts from onchain union all select dst as account, ts from onchain)
    group by all
),
hops as (
    select a.txn_id as in_txn, b.txn_id as out_txn, a.dst as address, b.dst as next_address, b.ts
    from onchain a
    join onchain b on b.src = a.dst and b.ts > a.ts and b.ts <= a.ts + $peel_window
                  and b.amount >= $peel_keep_share * a.amount and b.amount <= a.amount
    join first_seen f on f.account = b.dst and f.first_ts = b.ts
    where a.ts > $as_of - $w_30d
),
chains as (
    select address as start, next_address as address, out_txn as last_txn, ts, 1 as hops from hops
    union all
    select c.start, h.next_address, h.out_txn, h.ts, c.hops + 1
    from chains c join hops h on h.in_txn = c.last_txn
    where c.hops < $peel_max_hops
),
chain_members as (
    select start as account_id, max(hops) as length from chains group by all
    union all
    select address as account_id, max(hops) as length from chains group by all
),
flows as (
    select o.src as account_id,
           count(*) filter (where f.first_ts = o.ts) as count_fresh_address_out_30d,
           sum(o.amount) filter (where a.holder_type = 'exchange') / nullif(sum(o.amount), 0)
               as share_crypto_out_to_exchange_30d,
    from onchain o
    join first_seen f on f.account = o.dst
    left join stg_accounts a on a.account_id = o.dst
    where o.ts > $as_of - $w_30d
    group by all
),
final as (
    select
        coalesce(f.account_id, m.account_id) as account_id,
        coalesce(m.length, 0) as peel_chain_length_30d,
        coalesce(f.count_fresh_address_out_30d, 0) as count_fresh_address_out_30d,
        coalesce(f.share_crypto_out_to_exchange_30d, 0) as share_crypto_out_to_exchange_30d,
    from flows f
    full join (select account_id, max(length) as length from chain_members group by all) m
        on m.account_id = f.account_id
)
select * from final
