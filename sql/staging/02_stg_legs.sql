-- name: stg_legs
-- grain: account, transaction, direction
-- time_column: ts
-- source: stg_transactions, each movement seen from both accounts
-- parameters:
-- columns:
--   direction: 'out' for the sender's leg, 'in' for the receiver's
--   counterparty: the other account (null for cash)
with transactions as (
    select * from stg_transactions
),
outgoing as (
    select src_account as account_id, dst_account as counterparty, 'out' as direction, *
    from transactions where src_account is not null
),
incoming as (
    select dst_account as account_id, src_account as counterparty, 'in' as direction, *
    from transactions where dst_account is not null
),
final as (
    select account_id, counterparty, direction, txn_id, ts, amount_base, channel, mcc, counterparty_name,
           country, city, branch, chain, hour_utc, is_weekend, is_near_threshold
    from outgoing
    union all
    select account_id, counterparty, direction, txn_id, ts, amount_base, channel, mcc, counterparty_name,
           country, city, branch, chain, hour_utc, is_weekend, is_near_threshold
    from incoming
)
select * from final
