-- name: cycle_members
-- grain: account
-- time_column: ts
-- windows: lookback (the cycles found), cycle_window (span of one cycle)
-- typology: cycle, shell_circulation
-- source: the cycles family (feat_cycles), seen from each account on a cycle
-- parameters:
-- evidence:
--   cycles: cycle_legs
-- zero_when_absent: cycles_30d, max_cycle_length_30d
-- columns:
--   cycles_30d / max_cycle_length_30d / min_cycle_hours_30d: temporal cycles (see cycles) the account is on
with hops as (
    -- each account on a cycle with the transaction it sent on (accounts[k] pays txn_ids[k])
    select unnest(list_slice(accounts, 1, length)) as account_id, unnest(txn_ids) as txn_id, cycle_id, length,
           started_at, closed_at,
    from feat_cycles
),
cycle_legs as (
    -- every transfer of every cycle the account is on: the whole loop supports the cycle reasons
    select distinct m.account_id, c.txn_id, t.ts, t.amount_base
    from (select distinct account_id, cycle_id from hops) m
    join (select cycle_id, unnest(txn_ids) as txn_id from feat_cycles) c using (cycle_id)
    join stg_transactions t using (txn_id)
),
final as (
    select account_id, count(distinct cycle_id) as cycles_30d, max(length) as max_cycle_length_30d,
           min(date_diff('second', started_at, closed_at)) / 3600.0 as min_cycle_hours_30d
    from hops
    group by all
)
select * from final
