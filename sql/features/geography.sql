-- name: geography
-- grain: account
-- time_column: ts
-- windows: 7d, 30d
-- typology: all cross-border typologies
-- source: FATF high-risk and other monitored jurisdictions (features/reference/high_risk_jurisdictions.csv)
-- parameters:
--   as_of: timestamp, required
--   w_7d: interval 7 days
--   w_30d: interval 30 days
--   home_country: the country domestic activity happens in, required
--   high_risk_countries: ISO codes, required
-- evidence:
--   geography: high_risk_legs
-- zero_when_absent: sum_high_risk_30d, distinct_countries_7d
-- columns:
--   share_cross_border_30d: share of transactions located outside the account's (or the home) country
--   sum_high_risk_30d: volume to or from high-risk jurisdictions
--   distinct_countries_7d: countries transacted in during the last week
with legs as (
    select l.*, coalesce(a.country, $home_country) as own_country,
           list_contains($high_risk_countries, l.country) as is_high_risk,
    from stg_legs l left join stg_accounts a using (account_id)
    where l.ts > $as_of - $w_30d
),
high_risk_legs as (
    select * from legs where is_high_risk
),
final as (
    select
        account_id,
        avg(case when country is not null and country <> own_country then 1.0 else 0.0 end)
            as share_cross_border_30d,
        coalesce(sum(amount_base) filter (where is_high_risk), 0)::double as sum_high_risk_30d,
        count(distinct country) filter (where ts > $as_of - $w_7d) as distinct_countries_7d,
    from legs group by all
)
select * from final
