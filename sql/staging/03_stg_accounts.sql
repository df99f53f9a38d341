-- name: stg_accounts
-- grain: account
-- source: the store's accounts (KYC attributes where an export gives them; may be empty)
-- parameters:
-- columns:
--   is_business: holder is a business or merchant
with source as (
    select * from store_accounts
),
final as (
    select
        account_id,
        kind,
        holder_type,
        holder_type in ('business', 'merchant') as is_business,
        country,
        mcc,
        opened_date,
    from source
    qualify row_number() over (partition by account_id order by source_row) = 1
)
select * from final
