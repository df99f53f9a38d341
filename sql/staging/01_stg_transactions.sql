-- name: stg_transactions
-- grain: transaction
-- time_column: ts
-- source: the store's canonical transactions (docs/data-model.md)
-- parameters:
--   files: list of Parquet files the store's manifests vouch for, required
--   as_of: timestamp, required
--   threshold: the reporting threshold in the base currency (converted from its own currency at as_of), required
--   near_share: 0.8
--   reportable_at_threshold: an amount equal to the threshold is reportable, required
-- columns:
--   hour_utc: hour of day of ts (UTC)
--   is_weekend: Saturday or Sunday
--   is_near_threshold: amount_base in the near-threshold band, the one definition of it: from near_share ×
--     threshold up to the threshold, the threshold itself excluded when an amount equal to it is reportable
--     ([near_share × threshold, threshold)) and included when only more than it is ([…, threshold])
--   amount_base: the store's amount_base (a float) as an exact DECIMAL(38, 12), the one form every model reads:
--     sums of it are exact, so they never depend on row order or thread count (cast a sum to double for
--     output); is_near_threshold is decided on the store's float, before the conversion
with source as (
    select * from read_parquet($files)
),
renamed as (
    select
        txn_id,
        ts,
        src_account,
        dst_account,
        src_institution,
        dst_institution,
        amount,
        currency,
        amount_base,
        channel,
        mcc,
        counterparty_name,
        description,
        country,
        city,
        branch,
        chain,
        extract(hour from ts at time zone 'UTC') as hour_utc,
        isodow(ts at time zone 'UTC') >= 6 as is_weekend,
        amount_base >= $near_share * $threshold
            and (amount_base < $threshold or (not $reportable_at_threshold and amount_base = $threshold))
            as is_near_threshold,
    from source
    where ts <= $as_of
),
final as (
    -- the one conversion to an exact type: a float sum depends on the order DuckDB's threads add rows in
    select * replace (cast(amount_base as decimal(38, 12)) as amount_base) from renamed
)
select * from final
