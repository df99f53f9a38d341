-- name: exposure
-- grain: account
-- time_column: ts
-- windows: 30d
-- typology: all (network exposure)
-- source: Wolfsberg Group guidance on correspondent and network risk: exposure to high-risk counterparties directly and through one intermediary
-- parameters:
--   as_of: timestamp, required
--   w_30d: interval 30 days
--   high_risk_countries: ISO codes, required
-- columns:
--   share_volume_high_risk_1hop_30d: share of volume with high-risk counterparties (held in, or transacting
--     from, a high-risk jurisdiction)
--   share_volume_high_risk_2hop_30d: share of volume with counterparties that themselves deal with one
with legs as (
    select * from stg_legs where ts > $as_of - $w_30d and counterparty is not null
),
high_risk as (
    select account_id from stg_accounts where list_contains($high_risk_countries, country)
    union
    select counterparty from legs where list_contains($high_risk_countries, country)
),
near_high_risk as (
    select distinct account_id from legs where counterparty in (select account_id from high_risk)
),
final as (
    select
        account_id,
        coalesce(sum(amount_base) filter (where counterparty in (select account_id from high_risk)), 0)
            / nullif(sum(amount_base), 0) as share_volume_high_risk_1hop_30d,
        coalesce(sum(amount_base) filter (where counterparty in (select account_id from near_high_risk)), 0)
            / nullif(sum(amount_base), 0) as share_volume_high_risk_2hop_30d,
    from legs group by all
)
select * from final
