-- Search tokens, format 3 (internal/searchindex.Format): computed over the
-- values' query.Fold form, in which texts are equal without case exactly
-- when PostgreSQL's upper() makes them so (what Pigello's Django compares),
-- where format 2 lower-cased them: "YILDIZ" now finds "Yıldız", and
-- "ΣΊΣΥΦΟΣ" "Σίσυφος". A value with such a character has other tokens in
-- the two formats, so the format 2 tokens go and the new ones get a new
-- column, search_tokens_v3, as migration 4 did: a process of the earlier
-- version, still running beside a new one, then fails to write rather than
-- writing tokens the new one's lookups would not find. Every row is left
-- without tokens, and so read the way rows from before migration 3 are,
-- until it is written again: `accounts keys rotate-data` re-indexes them
-- all.

DROP TRIGGER tenants_search_delete;
DROP TABLE tenants_search;
DROP INDEX tenants_unindexed;
ALTER TABLE tenants DROP COLUMN search_tokens_v2;
ALTER TABLE tenants ADD COLUMN search_tokens_v3 INTEGER;
CREATE INDEX tenants_unindexed ON tenants (customer_id) WHERE search_tokens_v3 IS NULL;
CREATE VIRTUAL TABLE tenants_search USING fts5 (tokens, content = '', contentless_delete = 1, detail = none);
CREATE TRIGGER tenants_search_delete AFTER DELETE ON tenants WHEN old.search_tokens_v3 IS NOT NULL BEGIN
    DELETE FROM tenants_search WHERE rowid = old.search_row;
END;

DROP TRIGGER subtenants_search_delete;
DROP TABLE subtenants_search;
DROP INDEX subtenants_unindexed;
ALTER TABLE subtenants DROP COLUMN search_tokens_v2;
ALTER TABLE subtenants ADD COLUMN search_tokens_v3 INTEGER;
CREATE INDEX subtenants_unindexed ON subtenants (customer_id) WHERE search_tokens_v3 IS NULL;
CREATE VIRTUAL TABLE subtenants_search USING fts5 (tokens, content = '', contentless_delete = 1, detail = none);
CREATE TRIGGER subtenants_search_delete AFTER DELETE ON subtenants WHEN old.search_tokens_v3 IS NOT NULL BEGIN
    DELETE FROM subtenants_search WHERE rowid = old.search_row;
END;

DROP TRIGGER protected_identities_search_delete;
DROP TABLE protected_identities_search;
DROP INDEX protected_identities_unindexed;
ALTER TABLE protected_identities DROP COLUMN search_tokens_v2;
ALTER TABLE protected_identities ADD COLUMN search_tokens_v3 INTEGER;
CREATE INDEX protected_identities_unindexed ON protected_identities (customer_id) WHERE search_tokens_v3 IS NULL;
CREATE VIRTUAL TABLE protected_identities_search USING fts5 (tokens, content = '', contentless_delete = 1, detail = none);
CREATE TRIGGER protected_identities_search_delete AFTER DELETE ON protected_identities WHEN old.search_tokens_v3 IS NOT NULL BEGIN
    DELETE FROM protected_identities_search WHERE rowid = old.search_row;
END;
