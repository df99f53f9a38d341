-- name: account_features
-- grain: account (one row per account active in the lookback up to as_of)
-- time_column: as_of
-- source: every account-grain family under sql/features, joined on account_id by the loader as account_families (a new family's columns appear here without editing this file; see sql/README.md)
-- parameters:
--   as_of: timestamp, required
--   lookback: interval 30 days
-- columns:
--   as_of: the point in time the features describe (only transactions at or before it are used)
with accounts as (
    select distinct account_id from stg_legs where ts > $as_of - $lookback
),
final as (
    select
        accounts.account_id,
        $as_of as as_of,
        * exclude (account_id),
    from accounts
    left join account_families using (account_id)
)
select * from final order by account_id
