-- name: account_features
-- grain: account (one row per account active in the lookback up to as_of)
-- time_column: as_of
-- source: every table under sql/features, joined on account_id
-- parameters:
--   as_of: timestamp, required
--   lookback: interval 30 days
-- columns:
--   as_of: the point in time the features describe (only transactions at or before it are used)
--   cycles_30d / max_cycle_length_30d / min_cycle_hours_30d: temporal cycles (see cycles) the account is on
with accounts as (
    select distinct account_id from stg_legs where ts > $as_of - $lookback
),
cycle_members as (
    select account_id, count(distinct cycle_id) as cycles_30d, max(length) as max_cycle_length_30d,
           min(date_diff('second', started_at, closed_at)) / 3600.0 as min_cycle_hours_30d
    from (select distinct unnest(accounts) as account_id, cycle_id, length, started_at, closed_at from feat_cycles)
    group by all
),
final as (
    select
        accounts.account_id,
        $as_of as as_of,
        * exclude (account_id),
    from accounts
    left join feat_activity using (account_id)
    left join feat_structuring using (account_id)
    left join feat_fan using (account_id)
    left join feat_scatter_gather using (account_id)
    left join cycle_members using (account_id)
    left join feat_pass_through using (account_id)
    left join feat_relations using (account_id)
    left join feat_funnel using (account_id)
    left join feat_shell using (account_id)
    left join feat_trafficking using (account_id)
    left join feat_crypto using (account_id)
    left join feat_geography using (account_id)
    left join feat_exposure using (account_id)
)
select * from final order by account_id
