-- name: staging_amounts
-- grain: audit (rows returned are violations)
-- source: amounts are positive and converted
-- parameters:
select txn_id, amount, amount_base from stg_transactions where amount <= 0 or amount_base is null or amount_base < 0
