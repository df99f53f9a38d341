-- name: stg_transactions
-- grain: transaction
-- time_column: ts
-- source: the store's canonical transactions (docs/data-model.md)
-- parameters:
--   files: list of Parquet files the store's manifests vouch for, required
--   as_of: timestamp, required
-- columns:
--   hour_utc: hour of day of ts (UTC)
--   is_weekend: Saturday or Sunday
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
    from source
    where ts <= $as_of
),
final as (
    select * from renamed
)
select * from final
