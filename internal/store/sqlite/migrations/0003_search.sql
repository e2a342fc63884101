-- Search over encrypted fields (docs/encrypted-search.md). The rows of each
-- resource with a searchable personal field, addresses excepted (see
-- schema.Resource.NoSearchTokens), carry search tokens: keyed,
-- truncated digests of their searchable values (internal/searchindex),
-- as words, indexed by an FTS5 table that finds them by search_row, an
-- integer given at insert that never changes (a rowid may, at VACUUM).
-- Triggers keep each index in step with its table, cascaded deletes
-- included. Rows written before this migration have no tokens (null)
-- until they are written again; the service does not use the index for
-- a customer that still has such rows.
--
-- The blind-index lookups get indexes that also give the lists' default
-- order (created_at, id), so that an equality lookup reads only its
-- matches instead of walking the customer's rows in that order.

ALTER TABLE tenants ADD COLUMN search_tokens TEXT;
ALTER TABLE tenants ADD COLUMN search_row INTEGER;
UPDATE tenants SET search_row = rowid;
CREATE UNIQUE INDEX tenants_search_row ON tenants (search_row);
CREATE INDEX tenants_unindexed ON tenants (customer_id) WHERE search_tokens IS NULL;
CREATE VIRTUAL TABLE tenants_search USING fts5 (
    search_tokens, content = 'tenants', content_rowid = 'search_row', detail = none, columnsize = 0);
CREATE TRIGGER tenants_search_insert AFTER INSERT ON tenants WHEN new.search_tokens IS NOT NULL BEGIN
    INSERT INTO tenants_search (rowid, search_tokens) VALUES (new.search_row, new.search_tokens);
END;
CREATE TRIGGER tenants_search_delete AFTER DELETE ON tenants WHEN old.search_tokens IS NOT NULL BEGIN
    INSERT INTO tenants_search (tenants_search, rowid, search_tokens) VALUES ('delete', old.search_row, old.search_tokens);
END;
CREATE TRIGGER tenants_search_update AFTER UPDATE OF search_tokens ON tenants BEGIN
    INSERT INTO tenants_search (tenants_search, rowid, search_tokens)
        SELECT 'delete', old.search_row, old.search_tokens WHERE old.search_tokens IS NOT NULL;
    INSERT INTO tenants_search (rowid, search_tokens)
        SELECT new.search_row, new.search_tokens WHERE new.search_tokens IS NOT NULL;
END;
DROP INDEX tenants_ssn;
CREATE INDEX tenants_ssn ON tenants (customer_id, ssn_bidx, created_at, id);
CREATE INDEX tenants_email ON tenants (customer_id, email_bidx, created_at, id);
CREATE INDEX tenants_phone_number ON tenants (customer_id, phone_number_bidx, created_at, id);

ALTER TABLE subtenants ADD COLUMN search_tokens TEXT;
ALTER TABLE subtenants ADD COLUMN search_row INTEGER;
UPDATE subtenants SET search_row = rowid;
CREATE UNIQUE INDEX subtenants_search_row ON subtenants (search_row);
CREATE INDEX subtenants_unindexed ON subtenants (customer_id) WHERE search_tokens IS NULL;
CREATE VIRTUAL TABLE subtenants_search USING fts5 (
    search_tokens, content = 'subtenants', content_rowid = 'search_row', detail = none, columnsize = 0);
CREATE TRIGGER subtenants_search_insert AFTER INSERT ON subtenants WHEN new.search_tokens IS NOT NULL BEGIN
    INSERT INTO subtenants_search (rowid, search_tokens) VALUES (new.search_row, new.search_tokens);
END;
CREATE TRIGGER subtenants_search_delete AFTER DELETE ON subtenants WHEN old.search_tokens IS NOT NULL BEGIN
    INSERT INTO subtenants_search (subtenants_search, rowid, search_tokens) VALUES ('delete', old.search_row, old.search_tokens);
END;
CREATE TRIGGER subtenants_search_update AFTER UPDATE OF search_tokens ON subtenants BEGIN
    INSERT INTO subtenants_search (subtenants_search, rowid, search_tokens)
        SELECT 'delete', old.search_row, old.search_tokens WHERE old.search_tokens IS NOT NULL;
    INSERT INTO subtenants_search (rowid, search_tokens)
        SELECT new.search_row, new.search_tokens WHERE new.search_tokens IS NOT NULL;
END;
DROP INDEX subtenants_ssn;
CREATE INDEX subtenants_ssn ON subtenants (customer_id, ssn_bidx, created_at, id);
CREATE INDEX subtenants_email ON subtenants (customer_id, email_bidx, created_at, id);
CREATE INDEX subtenants_phone_number ON subtenants (customer_id, phone_number_bidx, created_at, id);

ALTER TABLE protected_identities ADD COLUMN search_tokens TEXT;
ALTER TABLE protected_identities ADD COLUMN search_row INTEGER;
UPDATE protected_identities SET search_row = rowid;
CREATE UNIQUE INDEX protected_identities_search_row ON protected_identities (search_row);
CREATE INDEX protected_identities_unindexed ON protected_identities (customer_id) WHERE search_tokens IS NULL;
CREATE VIRTUAL TABLE protected_identities_search USING fts5 (
    search_tokens, content = 'protected_identities', content_rowid = 'search_row', detail = none, columnsize = 0);
CREATE TRIGGER protected_identities_search_insert AFTER INSERT ON protected_identities WHEN new.search_tokens IS NOT NULL BEGIN
    INSERT INTO protected_identities_search (rowid, search_tokens) VALUES (new.search_row, new.search_tokens);
END;
CREATE TRIGGER protected_identities_search_delete AFTER DELETE ON protected_identities WHEN old.search_tokens IS NOT NULL BEGIN
    INSERT INTO protected_identities_search (protected_identities_search, rowid, search_tokens) VALUES ('delete', old.search_row, old.search_tokens);
END;
CREATE TRIGGER protected_identities_search_update AFTER UPDATE OF search_tokens ON protected_identities BEGIN
    INSERT INTO protected_identities_search (protected_identities_search, rowid, search_tokens)
        SELECT 'delete', old.search_row, old.search_tokens WHERE old.search_tokens IS NOT NULL;
    INSERT INTO protected_identities_search (rowid, search_tokens)
        SELECT new.search_row, new.search_tokens WHERE new.search_tokens IS NOT NULL;
END;
DROP INDEX protected_identities_ssn;
CREATE INDEX protected_identities_ssn ON protected_identities (customer_id, ssn_bidx, created_at, id);
CREATE INDEX protected_identities_email ON protected_identities (customer_id, email_bidx, created_at, id);
CREATE INDEX protected_identities_phone_number ON protected_identities (customer_id, phone_number_bidx, created_at, id);
