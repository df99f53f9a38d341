-- name: pass_through
-- grain: account
-- time_column: ts
-- windows: 24h, 48h (re-send delay), 30d (lookback)
-- typology: pass_through, funnel_account
-- source: FFIEC BSA/AML Examination Manual, funnel and pass-through accounts: funds moved in and out quickly with little retained
-- parameters:
--   as_of: timestamp, required
--   w_30d: interval 30 days
--   w_resend_24h: interval 24 hours
--   w_resend_48h: interval 48 hours
-- evidence:
--   flow_through: bank_transfers
-- zero_when_absent: count_in_then_out_24h_30d
-- columns:
--   share_out_within_24h_of_in_30d / _48h_: share of outgoing volume sent within 24 h / 48 h after an inflow
--   retained_share_30d: (in − out) / in over the lookback (null without inflows; near 0 = everything passed on)
--   count_in_then_out_24h_30d: outgoing transfers that follow an inflow within 24 h
with window_legs as (
    select * from stg_legs where ts > $as_of - $w_30d
),
bank_transfers as (
    -- evidence of money flowing through (relays, pass-through, shells): wires, ACH and instant P2P, in and out
    select * from window_legs where channel in ('wire', 'ach', 'p2p')
),
legs as (
    select * from window_legs where channel <> 'card'
),
outs as (
    select o.account_id, o.txn_id, o.ts, o.amount_base, max(i.ts) as last_in
    from legs o
    left join legs i on i.account_id = o.account_id and i.direction = 'in' and i.ts <= o.ts
    where o.direction = 'out'
    group by all
),
out_stats as (
    select
        account_id,
        sum(amount_base) as vol_out,
        sum(amount_base) filter (where ts - last_in <= $w_resend_24h) as vol_out_24h,
        sum(amount_base) filter (where ts - last_in <= $w_resend_48h) as vol_out_48h,
        count(*) filter (where ts - last_in <= $w_resend_24h) as count_in_then_out_24h_30d,
    from outs group by all
),
in_stats as (
    select account_id, sum(amount_base) as vol_in from legs where direction = 'in' group by all
),
final as (
    select
        coalesce(i.account_id, o.account_id) as account_id,
        coalesce(o.vol_out_24h, 0) / nullif(o.vol_out, 0) as share_out_within_24h_of_in_30d,
        coalesce(o.vol_out_48h, 0) / nullif(o.vol_out, 0) as share_out_within_48h_of_in_30d,
        (coalesce(i.vol_in, 0) - coalesce(o.vol_out, 0)) / nullif(i.vol_in, 0) as retained_share_30d,
        coalesce(o.count_in_then_out_24h_30d, 0) as count_in_then_out_24h_30d,
    from in_stats i full join out_stats o on o.account_id = i.account_id
)
select * from final
