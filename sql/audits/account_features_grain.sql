-- name: account_features_grain
-- grain: audit (rows returned are violations)
-- source: one row per account
-- parameters:
select account_id, count(*) as rows from account_features group by account_id having count(*) > 1
