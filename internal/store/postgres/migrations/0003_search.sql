-- Search over encrypted fields (docs/encrypted-search.md). The rows of each
-- resource with a searchable personal field, addresses excepted (see
-- schema.Resource.NoSearchTokens), carry search tokens: keyed,
-- truncated digests of their searchable values (internal/searchindex),
-- in an array with a GIN index. The index takes new entries into a pending
-- list that every lookup reads whole until it is merged: at most 256 kB
-- of it (not the default 4 MB, which costs milliseconds a lookup after a
-- bulk load). Rows written before this migration have
-- no tokens (null) until they are written again; the service does not
-- use the index for a customer that still has such rows.
--
-- The blind-index lookups get indexes that also give the lists' default
-- order (created_at, id), so that an equality lookup reads only its
-- matches instead of walking the customer's rows in that order.

ALTER TABLE tenants ADD COLUMN search_tokens bigint[];
CREATE INDEX tenants_search ON tenants USING gin (search_tokens) WITH (gin_pending_list_limit = 256);
CREATE INDEX tenants_unindexed ON tenants (customer_id) WHERE search_tokens IS NULL;
DROP INDEX tenants_ssn;
CREATE INDEX tenants_ssn ON tenants (customer_id, ssn_bidx, created_at, id);
CREATE INDEX tenants_email ON tenants (customer_id, email_bidx, created_at, id);
CREATE INDEX tenants_phone_number ON tenants (customer_id, phone_number_bidx, created_at, id);

ALTER TABLE subtenants ADD COLUMN search_tokens bigint[];
CREATE INDEX subtenants_search ON subtenants USING gin (search_tokens) WITH (gin_pending_list_limit = 256);
CREATE INDEX subtenants_unindexed ON subtenants (customer_id) WHERE search_tokens IS NULL;
DROP INDEX subtenants_ssn;
CREATE INDEX subtenants_ssn ON subtenants (customer_id, ssn_bidx, created_at, id);
CREATE INDEX subtenants_email ON subtenants (customer_id, email_bidx, created_at, id);
CREATE INDEX subtenants_phone_number ON subtenants (customer_id, phone_number_bidx, created_at, id);

ALTER TABLE protected_identities ADD COLUMN search_tokens bigint[];
CREATE INDEX protected_identities_search ON protected_identities USING gin (search_tokens) WITH (gin_pending_list_limit = 256);
CREATE INDEX protected_identities_unindexed ON protected_identities (customer_id) WHERE search_tokens IS NULL;
DROP INDEX protected_identities_ssn;
CREATE INDEX protected_identities_ssn ON protected_identities (customer_id, ssn_bidx, created_at, id);
CREATE INDEX protected_identities_email ON protected_identities (customer_id, email_bidx, created_at, id);
CREATE INDEX protected_identities_phone_number ON protected_identities (customer_id, phone_number_bidx, created_at, id);
