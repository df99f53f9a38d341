-- name: evidence
-- grain: account, family, transaction (the transactions that support a family's features)
-- time_column: ts
-- windows: as in each family
-- source: the feature families under sql/features
-- parameters:
--   as_of: timestamp, required
--   w_7d: interval 7 days
--   w_30d: interval 30 days
--   threshold: reporting threshold in the base currency, required
--   near_share: 0.8
--   small_payment: 500
--   night_hours: hours counted as night (UTC), required
--   high_risk_countries: ISO codes, required
--   mcc_ads: required
--   mcc_lodging: required
--   mcc_travel: required
--   mcc_prepaid: required
--   mcc_crypto: required
-- columns:
--   family: structuring, cycles, fan_in, fan_out, flow_through, funnel, trafficking, crypto, geography
with legs as (
    select * from stg_legs where ts > $as_of - $w_30d
),
cycle_legs as (
    select distinct unnest(accounts) as account_id, unnest(txn_ids) as txn_id from feat_cycles
),
tagged as (
    select *,
        list_contains($mcc_ads, mcc) or list_contains($mcc_lodging, mcc) or list_contains($mcc_travel, mcc)
            or list_contains($mcc_prepaid, mcc) or list_contains($mcc_crypto, mcc) as is_trafficking_merchant
    from legs
),
final as (
    select account_id, 'structuring' as family, txn_id, ts, amount_base from legs
    where direction = 'in' and channel = 'cash' and amount_base >= $near_share * $threshold
      and amount_base < $threshold
    union all
    select c.account_id, 'cycles', c.txn_id, t.ts, t.amount_base from cycle_legs c join stg_transactions t using (txn_id)
    union all
    select account_id, 'fan_in', txn_id, ts, amount_base from legs
    where direction = 'in' and counterparty is not null and ts > $as_of - $w_7d
    union all
    select account_id, 'fan_out', txn_id, ts, amount_base from legs
    where direction = 'out' and counterparty is not null and ts > $as_of - $w_7d
    union all
    select account_id, 'flow_through', txn_id, ts, amount_base from legs where channel in ('wire', 'ach', 'p2p')
    union all
    select account_id, 'funnel', txn_id, ts, amount_base from legs where channel = 'cash' and counterparty is null
    union all
    select account_id, 'trafficking', txn_id, ts, amount_base from tagged
    where (direction = 'out' and is_trafficking_merchant)
       or (direction = 'in' and channel = 'p2p' and amount_base < $small_payment)
       or (channel in ('card', 'cash') and list_contains($night_hours, hour_utc))
    union all
    select account_id, 'crypto', txn_id, ts, amount_base from legs where chain is not null
    union all
    select account_id, 'geography', txn_id, ts, amount_base from legs where list_contains($high_risk_countries, country)
)
select * from final
