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

DROP TRIGGER tenants_search_insert;
DROP TRIGGER tenants_search_delete;
DROP TRIGGER tenants_search_update;
DROP TABLE tenants_search;
DROP INDEX tenants_unindexed;
ALTER TABLE tenants DROP COLUMN search_tokens;
ALTER TABLE tenants ADD COLUMN search_tokens_v2 TEXT;
CREATE INDEX tenants_unindexed ON tenants (customer_id) WHERE search_tokens_v2 IS NULL;
CREATE VIRTUAL TABLE tenants_search USING fts5 (
    search_tokens_v2, content = 'tenants', content_rowid = 'search_row', detail = none, columnsize = 0);
CREATE TRIGGER tenants_search_insert AFTER INSERT ON tenants WHEN new.search_tokens_v2 IS NOT NULL BEGIN
    INSERT INTO tenants_search (rowid, search_tokens_v2) VALUES (new.search_row, new.search_tokens_v2);
END;
CREATE TRIGGER tenants_search_delete AFTER DELETE ON tenants WHEN old.search_tokens_v2 IS NOT NULL BEGIN
    INSERT INTO tenants_search (tenants_search, rowid, search_tokens_v2) VALUES ('delete', old.search_row, old.search_tokens_v2);
END;
CREATE TRIGGER tenants_search_update AFTER UPDATE OF search_tokens_v2 ON tenants BEGIN
    INSERT INTO tenants_search (tenants_search, rowid, search_tokens_v2)
        SELECT 'delete', old.search_row, old.search_tokens_v2 WHERE old.search_tokens_v2 IS NOT NULL;
    INSERT INTO tenants_search (rowid, search_tokens_v2)
        SELECT new.search_row, new.search_tokens_v2 WHERE new.search_tokens_v2 IS NOT NULL;
END;

DROP TRIGGER subtenants_search_insert;
DROP TRIGGER subtenants_search_delete;
DROP TRIGGER subtenants_search_update;
DROP TABLE subtenants_search;
DROP INDEX subtenants_unindexed;
ALTER TABLE subtenants DROP COLUMN search_tokens;
ALTER TABLE subtenants ADD COLUMN search_tokens_v2 TEXT;
CREATE INDEX subtenants_unindexed ON subtenants (customer_id) WHERE search_tokens_v2 IS NULL;
CREATE VIRTUAL TABLE subtenants_search USING fts5 (
    search_tokens_v2, content = 'subtenants', content_rowid = 'search_row', detail = none, columnsize = 0);
CREATE TRIGGER subtenants_search_insert AFTER INSERT ON subtenants WHEN new.search_tokens_v2 IS NOT NULL BEGIN
    INSERT INTO subtenants_search (rowid, search_tokens_v2) VALUES (new.search_row, new.search_tokens_v2);
END;
CREATE TRIGGER subtenants_search_delete AFTER DELETE ON subtenants WHEN old.search_tokens_v2 IS NOT NULL BEGIN
    INSERT INTO subtenants_search (subtenants_search, rowid, search_tokens_v2) VALUES ('delete', old.search_row, old.search_tokens_v2);
END;
CREATE TRIGGER subtenants_search_update AFTER UPDATE OF search_tokens_v2 ON subtenants BEGIN
    INSERT INTO subtenants_search (subtenants_search, rowid, search_tokens_v2)
        SELECT 'delete', old.search_row, old.search_tokens_v2 WHERE old.search_tokens_v2 IS NOT NULL;
    INSERT INTO subtenants_search (rowid, search_tokens_v2)
        SELECT new.search_row, new.search_tokens_v2 WHERE new.search_tokens_v2 IS NOT NULL;
END;

DROP TRIGGER protected_identities_search_insert;
DROP TRIGGER protected_identities_search_delete;
DROP TRIGGER protected_identities_search_update;
DROP TABLE protected_identities_search;
DROP INDEX protected_identities_unindexed;
ALTER TABLE protected_identities DROP COLUMN search_tokens;
ALTER TABLE protected_identities ADD COLUMN search_tokens_v2 TEXT;
CREATE INDEX protected_identities_unindexed ON protected_identities (customer_id) WHERE search_tokens_v2 IS NULL;
CREATE VIRTUAL TABLE protected_identities_search USING fts5 (
    search_tokens_v2, content = 'protected_identities', content_rowid = 'search_row', detail = none, columnsize = 0);
CREATE TRIGGER protected_identities_search_insert AFTER INSERT ON protected_identities WHEN new.search_tokens_v2 IS NOT NULL BEGIN
    INSERT INTO protected_identities_search (rowid, search_tokens_v2) VALUES (new.search_row, new.search_tokens_v2);
END;
CREATE TRIGGER protected_identities_search_delete AFTER DELETE ON protected_identities WHEN old.search_tokens_v2 IS NOT NULL BEGIN
    INSERT INTO protected_identities_search (protected_identities_search, rowid, search_tokens_v2) VALUES ('delete', old.search_row, old.search_tokens_v2);
END;
CREATE TRIGGER protected_identities_search_update AFTER UPDATE OF search_tokens_v2 ON protected_identities BEGIN
    INSERT INTO protected_identities_search (protected_identities_search, rowid, search_tokens_v2)
        SELECT 'delete', old.search_row, old.search_tokens_v2 WHERE old.search_tokens_v2 IS NOT NULL;
    INSERT INTO protected_identities_search (rowid, search_tokens_v2)
        SELECT new.search_row, new.search_tokens_v2 WHERE new.search_tokens_v2 IS NOT NULL;
END;
