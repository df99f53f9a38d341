-- name: scatter_gather
-- grain: account
-- time_column: ts
-- windows: 7d
-- typology: scatter_gather, gather_scatter
-- source: AMLworld "scatter-gather" and "gather-scatter" patterns (Altman et al., NeurIPS 2023)
-- parameters:
--   as_of: timestamp, required
--   w_7d: interval 7 days
--   sg_tolerance: 0.2
--   sg_min_amount: 100
-- zero_when_absent: scatter_gather_intermediates_7d, scatter_gather_role_intermediate_7d, gather_scatter_degree_7d
-- columns:
--   scatter_gather_intermediates_7d: most intermediates B of one A → {B} → C (account as A or as C), each B
--     forwarding after receiving, within the window, amount within sg_tolerance (not more than received)
--   scatter_gather_role_intermediate_7d: number of such A → account → C relays the account made
--   gather_scatter_degree_7d: least of distinct senders and of distinct receivers paid after the first inflow
with edges as (
    select txn_id, src_account as src, dst_account as dst, ts, amount_base as amount
    from stg_transactions
    where src_account is not null and dst_account is not null and src_account <> dst_account
      and channel <> 'card' and ts > $as_of - $w_7d and amount_base >= $sg_min_amount
),
relays as (
    select a.src as origin, a.dst as middle, b.dst as target
    from edges a join edges b on b.src = a.dst
    where b.ts > a.ts and b.dst <> a.src and b.dst <> a.dst
      and b.amount <= a.amount and b.amount >= (1 - $sg_tolerance) * a.amount
),
pairs as (
    select origin, target, count(distinct middle) as intermediates from relays group by all
),
by_end as (
    select account_id, max(intermediates) as scatter_gather_intermediates_7d
    from (select origin as account_id, intermediates from pairs
          union all select target as account_id, intermediates from pairs)
    where intermediates >= 2
    group by account_id
),
by_middle as (
    select middle as account_id, count(*) as scatter_gather_role_intermediate_7d from relays group by all
),
first_in as (
    select dst as account_id, min(ts) as first_in from edges group by all
),
gather as (
    select f.account_id,
           least(
               (select count(distinct src) from edges e where e.dst = f.account_id),
               (select count(distinct dst) from edges e where e.src = f.account_id and e.ts > f.first_in)
           ) as gather_scatter_degree_7d
    from first_in f
),
final as (
    select
        coalesce(g.account_id, e.account_id, m.account_id) as account_id,
        coalesce(e.scatter_gather_intermediates_7d, 0) as scatter_gather_intermediates_7d,
        coalesce(m.scatter_gather_role_intermediate_7d, 0) as scatter_gather_role_intermediate_7d,
        coalesce(g.gather_scatter_degree_7d, 0) as gather_scatter_degree_7d,
    from gather g
    full join by_end e on e.account_id = g.account_id
    full join by_middle m on m.account_id = coalesce(g.account_id, e.account_id)
)
select * from final
