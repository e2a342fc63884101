-- The audit trail: one row per audited operation, chained per customer by
-- hashes (see internal/audit). audit_heads records each chain's last
-- position and hash, so that entries cut from the end are detected; its row
-- is locked by every append, which serializes appends to one chain across
-- processes. No foreign key to customers: a customer's trail outlives the
-- customer.
CREATE TABLE audit_entries (
    customer_id text COLLATE "C" NOT NULL,
    position    bigint           NOT NULL,
    at          timestamptz      NOT NULL,
    client_id   text COLLATE "C" NOT NULL,
    request_id  text COLLATE "C" NOT NULL,
    action      text COLLATE "C" NOT NULL,
    resource    text COLLATE "C" NOT NULL,
    object_ids  text[]           NOT NULL,
    fields      text[]           NOT NULL,
    prev_hash   bytea            NOT NULL,
    hash        bytea            NOT NULL,
    CONSTRAINT audit_entries_pkey PRIMARY KEY (customer_id, position)
);

CREATE TABLE audit_heads (
    customer_id text COLLATE "C" NOT NULL,
    position    bigint           NOT NULL,
    hash        bytea            NOT NULL,
    CONSTRAINT audit_heads_pkey PRIMARY KEY (customer_id)
);
