-- name: trafficking
-- grain: account
-- time_column: ts
-- windows: 7d, 30d, 24h (cash-out delay)
-- typology: sex_trafficking, labor_trafficking
-- source: FinCEN FIN-2020-A008 (human trafficking red flags): online escort ads, lodging in several cities, late-night transactions, many small payments, prepaid cards, paying others' travel and lodging without payroll, rapid moves to crypto
-- parameters:
--   as_of: timestamp, required
--   w_7d: interval 7 days
--   w_30d: interval 30 days
--   w_cashout: interval 24 hours
--   small_payment: 500
--   night_hours: hours counted as night (UTC), required
--   mcc_ads: online classified-ad and ad-hosting codes, required
--   mcc_lodging: lodging codes, required
--   mcc_travel: airline, bus, rail and ride codes, required
--   mcc_prepaid: prepaid-card codes, required
--   mcc_crypto: crypto exchange / on-ramp codes, required
--   names_ads: merchant-name substrings of ad sites (for exports without MCC), required
--   names_lodging: merchant-name substrings of lodging, required
--   names_travel: merchant-name substrings of travel, required
--   names_prepaid: merchant-name substrings of prepaid cards, required
--   names_crypto: merchant-name substrings of crypto on-ramps, required
-- evidence:
--   trafficking: red_flag_legs
-- zero_when_absent: count_ad_payments_30d, max_lodging_cities_in_7d_30d, count_lodging_30d,
--   count_night_card_cash_30d, distinct_small_p2p_senders_30d, count_prepaid_30d, count_travel_30d,
--   count_crypto_out_after_inflow_30d
-- columns:
--   count_ad_payments_30d: payments to online-ad sites
--   max_lodging_cities_in_7d_30d: most distinct cities with lodging payments within any 7 days of the lookback
--   count_lodging_30d: lodging payments
--   count_night_card_cash_30d: card and cash transactions at night hours
--   distinct_small_p2p_senders_30d: distinct senders of small P2P inflows
--   count_prepaid_30d: prepaid-card purchases
--   count_travel_30d: airline, bus, rail or ride payments
--   count_crypto_out_after_inflow_30d: payments to a crypto exchange within w_cashout of an inflow
with window_legs as (
    select *, upper(coalesce(counterparty_name, '')) as merchant from stg_legs where ts > $as_of - $w_30d
),
legs as (
    select
        *,
        list_contains($mcc_ads, mcc) or list_bool_or([contains(merchant, p) for p in $names_ads]) as is_ads,
        list_contains($mcc_lodging, mcc) or list_bool_or([contains(merchant, p) for p in $names_lodging])
            as is_lodging,
        list_contains($mcc_travel, mcc) or list_bool_or([contains(merchant, p) for p in $names_travel]) as is_travel,
        list_contains($mcc_prepaid, mcc) or list_bool_or([contains(merchant, p) for p in $names_prepaid])
            as is_prepaid,
        list_contains($mcc_crypto, mcc) or list_bool_or([contains(merchant, p) for p in $names_crypto]) as is_crypto,
        direction = 'in' and channel = 'p2p' and amount_base < $small_payment as is_small_p2p_in,
        channel in ('card', 'cash') and list_contains($night_hours, hour_utc) as is_night_card_cash,
    from window_legs
),
red_flag_legs as (
    -- evidence: payments to the merchants above, small P2P inflows and night card or cash activity
    select * from legs
    where (direction = 'out' and (is_ads or is_lodging or is_travel or is_prepaid or is_crypto))
       or is_small_p2p_in or is_night_card_cash
),
outs as (
    select * from legs where direction = 'out'
),
lodging as (
    select account_id, ts, city from legs where direction = 'out' and is_lodging and city is not null
),
lodging_spread as (
    select a.account_id, max(n) as max_lodging_cities_in_7d_30d
    from (select a.account_id, a.ts, count(distinct b.city) as n
          from lodging a join lodging b on b.account_id = a.account_id and b.ts <= a.ts and b.ts > a.ts - $w_7d
          group by all) a
    group by all
),
crypto_after_in as (
    select o.account_id, count(distinct o.txn_id) as count_crypto_out_after_inflow_30d
    from outs o join legs i
      on i.account_id = o.account_id and i.direction = 'in' and i.ts <= o.ts and o.ts - i.ts <= $w_cashout
    where o.is_crypto
    group by all
),
final as (
    select
        l.account_id,
        count(*) filter (where l.direction = 'out' and l.is_ads) as count_ad_payments_30d,
        coalesce(max(s.max_lodging_cities_in_7d_30d), 0) as max_lodging_cities_in_7d_30d,
        count(*) filter (where l.direction = 'out' and l.is_lodging) as count_lodging_30d,
        count(*) filter (where l.is_night_card_cash) as count_night_card_cash_30d,
        count(distinct l.counterparty) filter (where l.is_small_p2p_in) as distinct_small_p2p_senders_30d,
        count(*) filter (where l.direction = 'out' and l.is_prepaid) as count_prepaid_30d,
        count(*) filter (where l.direction = 'out' and l.is_travel) as count_travel_30d,
        coalesce(max(c.count_crypto_out_after_inflow_30d), 0) as count_crypto_out_after_inflow_30d,
    from legs l left join crypto_after_in c using (account_id) left join lodging_spread s using (account_id)
    group by l.account_id
)
select * from final
