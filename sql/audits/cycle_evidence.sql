-- name: cycle_evidence
-- grain: audit (rows returned are violations)
-- source: a cycle closes on its origin, has one transaction per hop and fits its window
-- parameters:
--   cycle_window: interval 7 days
select cycle_id, accounts, txn_ids from feat_cycles
where accounts[1] <> accounts[-1] or len(txn_ids) <> length or len(accounts) <> length + 1
   or closed_at - started_at > $cycle_window
