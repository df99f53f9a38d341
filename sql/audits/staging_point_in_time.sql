-- name: staging_point_in_time
-- grain: audit (rows returned are violations)
-- source: nothing after as_of may reach a feature
-- parameters:
--   as_of: timestamp, required
select txn_id, ts from stg_transactions where ts > $as_of
