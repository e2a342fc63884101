-- The audit trail: one row per audited operation, chained per customer by
-- hashes (see internal/audit). audit_heads records each chain's last
-- position and hash, so that entries cut from the end are detected, and
-- serializes appends to a chain. No foreign key to customers: a customer's
-- trail outlives the customer.
CREATE TABLE audit_entries (
    customer_id TEXT    NOT NULL,
    position    INTEGER NOT NULL,
    at          TEXT    NOT NULL,
    client_id   TEXT    NOT NULL,
    request_id  TEXT    NOT NULL,
    action      TEXT    NOT NULL,
    resource    TEXT    NOT NULL,
    object_ids  TEXT    NOT NULL, -- JSON array of ids
    fields      TEXT    NOT NULL, -- JSON array of personal field names
    prev_hash   BLOB    NOT NULL,
    hash        BLOB    NOT NULL,
    PRIMARY KEY (customer_id, position)
) STRICT;

CREATE TABLE audit_heads (
    customer_id TEXT PRIMARY KEY,
    position    INTEGER NOT NULL,
    hash        BLOB    NOT NULL
) STRICT;
