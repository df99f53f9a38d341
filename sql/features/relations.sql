-- name: relations
-- grain: account
-- time_column: ts
-- windows: 30d
-- typology: fan_in, fan_out, gather_scatter, scatter_gather, stack, bipartite (members whose own activity looks ordinary)
-- source: feat_fan, feat_pass_through and stg_accounts of the counterparties; AMLworld laundering patterns (Altman et al., NeurIPS 2023): a fan-in source or a fan-out receiver is unremarkable alone; its counterparty is not. FATF, "Professional Money Laundering" (2018): networks of money mules
-- parameters:
--   as_of: timestamp, required
--   w_30d: interval 30 days
-- evidence:
--   largest_transfers: largest_transfers
-- columns:
--   max_payee_distinct_senders_30d: the most distinct senders any account this one paid had in the last 30 days
--     (paying into a collector)
--   max_payee_distinct_receivers_30d: the most distinct receivers any account this one paid had (paying a hub
--     that pays many onward)
--   max_payer_distinct_receivers_30d: the most distinct receivers any account that paid this one had (paid by a
--     distributor)
--   max_payer_distinct_senders_30d: the most distinct senders any account that paid this one had (paid by a hub
--     that collects from many)
--   max_counterparty_passed_on_share_30d: the highest share of outgoing volume sent on within 24 h of an inflow
--     among this account's counterparties (dealing with relays)
--   max_private_payee_distinct_senders_30d / max_private_payer_distinct_receivers_30d: the same two measures over
--     counterparties not known to be businesses or merchants (a private account collecting from, or paying out
--     to, many others is a mule's signature; a utility or an employer is not)
--   max_transfer_out_30d / max_transfer_in_30d: the largest transfer sent / received (base currency)
--   max_transfer_to_private_30d / max_transfer_from_private_30d: the largest transfer sent to / received from a
--     counterparty not known to be a business or merchant
--   share_volume_with_relays_30d: share of this account's volume with counterparties that passed on at least 80 %
--     of their outgoing volume within 24 h of an inflow
with legs as (
    -- transfers between accounts over the lookback: card payments to merchants are not relations
    select account_id, counterparty, direction, amount_base, txn_id, ts
    from stg_legs
    where ts > $as_of - $w_30d and counterparty is not null and channel <> 'card' and counterparty <> account_id
),
counterparties as (
    -- each transfer with the counterparty's own measures as of the same time (families built before this one)
    select l.account_id, l.direction, l.amount_base, l.txn_id, l.ts, d.senders, d.receivers, r.passed_on,
           not coalesce(a.is_business, false) as private,
    from legs l
    join (select account_id, distinct_senders_30d as senders, distinct_receivers_30d as receivers from feat_fan) d
      on d.account_id = l.counterparty
    left join (select account_id, share_out_within_24h_of_in_30d as passed_on from feat_pass_through) r
      on r.account_id = l.counterparty
    left join stg_accounts a on a.account_id = l.counterparty
),
largest_transfers as (
    -- the transfers behind the largest-transfer measures: the largest each way, overall and with a private account
    select distinct account_id, txn_id, ts, amount_base
    from (
        select *,
               max(amount_base) over (partition by account_id, direction) as top,
               max(amount_base) filter (where private) over (partition by account_id, direction) as top_private,
        from counterparties
    )
    where amount_base = top or (private and amount_base = top_private)
),
final as (
    select
        account_id,
        max(senders) filter (where direction = 'out') as max_payee_distinct_senders_30d,
        max(receivers) filter (where direction = 'out') as max_payee_distinct_receivers_30d,
        max(receivers) filter (where direction = 'in') as max_payer_distinct_receivers_30d,
        max(senders) filter (where direction = 'in') as max_payer_distinct_senders_30d,
        coalesce(max(senders) filter (where direction = 'out' and private), 0) as max_private_payee_distinct_senders_30d,
        coalesce(max(receivers) filter (where direction = 'in' and private), 0)
            as max_private_payer_distinct_receivers_30d,
        max(amount_base) filter (where direction = 'out')::double as max_transfer_out_30d,
        max(amount_base) filter (where direction = 'in')::double as max_transfer_in_30d,
        coalesce(max(amount_base) filter (where direction = 'out' and private), 0)::double
            as max_transfer_to_private_30d,
        coalesce(max(amount_base) filter (where direction = 'in' and private), 0)::double
            as max_transfer_from_private_30d,
        max(passed_on) as max_counterparty_passed_on_share_30d,
        coalesce(sum(amount_base) filter (where passed_on >= 0.8) / nullif(sum(amount_base), 0), 0)
            as share_volume_with_relays_30d,
    from counterparties
    group by account_id
)
select * from final
