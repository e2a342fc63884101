-- Search tokens, format 2 (internal/searchindex.Format): long grams (five
-- characters) join the short ones, so that a long contains or startswith
-- query intersects short token lists at any size of customer
-- (docs/encrypted-search.md). Tokens of format 1 can't be compared with
-- them, so they go, and the new ones get a new column,
-- search_tokens_v2: a process of the earlier version, still running
-- beside a new one, then fails to write (its column is gone) rather than
-- writing tokens the new one's lookups would not find. Every row is left
-- without tokens, and so read the way rows from before migration 3 are,
-- until it is written again: `accounts keys rotate-data` re-indexes them
-- all.

ALTER TABLE tenants DROP COLUMN search_tokens;
ALTER TABLE tenants ADD COLUMN search_tokens_v2 bigint[];
CREATE INDEX tenants_search ON tenants USING gin (search_tokens_v2) WITH (gin_pending_list_limit = 256);
CREATE INDEX tenants_unindexed ON tenants (customer_id) WHERE search_tokens_v2 IS NULL;

ALTER TABLE subtenants DROP COLUMN search_tokens;
ALTER TABLE subtenants ADD COLUMN search_tokens_v2 bigint[];
CREATE INDEX subtenants_search ON subtenants USING gin (search_tokens_v2) WITH (gin_pending_list_limit = 256);
CREATE INDEX subtenants_unindexed ON subtenants (customer_id) WHERE search_tokens_v2 IS NULL;

ALTER TABLE protected_identities DROP COLUMN search_tokens;
ALTER TABLE protected_identities ADD COLUMN search_tokens_v2 bigint[];
CREATE INDEX protected_identities_search ON protected_identities USING gin (search_tokens_v2) WITH (gin_pending_list_limit = 256);
CREATE INDEX protected_identities_unindexed ON protected_identities (customer_id) WHERE search_tokens_v2 IS NULL;
