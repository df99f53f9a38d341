-- name: fan
-- grain: account
-- time_column: ts
-- windows: 7d, 30d
-- typology: fan_in, fan_out, sex_trafficking (many small payments from distinct senders)
-- source: AMLSim / AMLworld fan-in and fan-out patterns (Altman et al., NeurIPS 2023); FinCEN FIN-2020-A008 red flag: many small payments from different senders
-- parameters:
--   as_of: timestamp, required
--   w_7d: interval 7 days
--   w_30d: interval 30 days
--   small_payment: 500
-- evidence:
--   fan_in: movements_in_7d
--   fan_out: movements_out_7d
-- zero_when_absent: distinct_senders_7d, distinct_senders_30d, distinct_receivers_7d, distinct_receivers_30d,
--   distinct_small_senders_30d
-- columns:
--   distinct_senders_7d / _30d, distinct_receivers_7d / _30d: distinct counterparties in and out
--   share_small_inbound_30d: share of inbound transfers (with a sender) below small_payment
--   distinct_small_senders_30d: distinct senders of such small payments
with movements as (
    select * from stg_legs where ts > $as_of - $w_30d and counterparty is not null
),
movements_in_7d as (
    -- evidence: what other accounts paid in during the last week (card payments included: who pays the account)
    select * from movements where direction = 'in' and ts > $as_of - $w_7d
),
movements_out_7d as (
    select * from movements where direction = 'out' and ts > $as_of - $w_7d
),
legs as (
    -- transfers between accounts: card payments to merchants are not fans
    select * from movements where channel <> 'card'
),
final as (
    select
        account_id,
        count(distinct counterparty) filter (where direction = 'in' and ts > $as_of - $w_7d) as distinct_senders_7d,
        count(distinct counterparty) filter (where direction = 'in') as distinct_senders_30d,
        count(distinct counterparty) filter (where direction = 'out' and ts > $as_of - $w_7d)
            as distinct_receivers_7d,
        count(distinct counterparty) filter (where direction = 'out') as distinct_receivers_30d,
        coalesce(
            avg(case when amount_base < $small_payment then 1.0 else 0.0 end) filter (where direction = 'in'), 0
        ) as share_small_inbound_30d,
        count(distinct counterparty) filter (where direction = 'in' and amount_base < $small_payment)
            as distinct_small_senders_30d,
    from legs
    group by account_id
)
select * from final
