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
--
-- The tokens are kept in the FTS5 index only, not in the row as well: a
-- contentless index that can delete a row's tokens by its row number
-- (contentless_delete), which the service writes after the row
-- (sqlbuild.Table.IndexTokens) and a trigger deletes with it, cascades
-- included. The row's search_tokens_v2 holds their number, null for a
-- row without them (found by the partial index <table>_unindexed).

DROP TRIGGER tenants_search_insert;
DROP TRIGGER tenants_search_delete;
DROP TRIGGER tenants_search_update;
DROP TABLE tenants_search;
DROP INDEX tenants_unindexed;
ALTER TABLE tenants DROP COLUMN search_tokens;
ALTER TABLE tenants ADD COLUMN search_tokens_v2 INTEGER;
CREATE INDEX tenants_unindexed ON tenants (customer_id) WHERE search_tokens_v2 IS NULL;
CREATE VIRTUAL TABLE tenants_search USING fts5 (tokens, content = '', contentless_delete = 1, detail = none);
CREATE TRIGGER tenants_search_delete AFTER DELETE ON tenants WHEN old.search_tokens_v2 IS NOT NULL BEGIN
    DELETE FROM tenants_search WHERE rowid = old.search_row;
END;

DROP TRIGGER subtenants_search_insert;
DROP TRIGGER subtenants_search_delete;
DROP TRIGGER subtenants_search_update;
DROP TABLE subtenants_search;
DROP INDEX subtenants_unindexed;
ALTER TABLE subtenants DROP COLUMN search_tokens;
ALTER TABLE subtenants ADD COLUMN search_tokens_v2 INTEGER;
CREATE INDEX subtenants_unindexed ON subtenants (customer_id) WHERE search_tokens_v2 IS NULL;
CREATE VIRTUAL TABLE subtenants_search USING fts5 (tokens, content = '', contentless_delete = 1, detail = none);
CREATE TRIGGER subtenants_search_delete AFTER DELETE ON subtenants WHEN old.search_tokens_v2 IS NOT NULL BEGIN
    DELETE FROM subtenants_search WHERE rowid = old.search_row;
END;

DROP TRIGGER protected_identities_search_insert;
DROP TRIGGER protected_identities_search_delete;
DROP TRIGGER protected_identities_search_update;
DROP TABLE protected_identities_search;
DROP INDEX protected_identities_unindexed;
ALTER TABLE protected_identities DROP COLUMN search_tokens;
ALTER TABLE protected_identities ADD COLUMN search_tokens_v2 INTEGER;
CREATE INDEX protected_identities_unindexed ON protected_identities (customer_id) WHERE search_tokens_v2 IS NULL;
CREATE VIRTUAL TABLE protected_identities_search USING fts5 (tokens, content = '', contentless_delete = 1, detail = none);
CREATE TRIGGER protected_identities_search_delete AFTER DELETE ON protected_identities WHEN old.search_tokens_v2 IS NOT NULL BEGIN
    DELETE FROM protected_identities_search WHERE rowid = old.search_row;
END;
