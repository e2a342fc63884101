-- The initial schema. Every resource table is keyed by (customer_id, id) and
-- every foreign key carries customer_id, so no reference can cross customers.
-- Personal fields live only in the sealed column; *_bidx columns hold keyed
-- hashes for exact lookups.

CREATE TABLE customers (
    id         TEXT PRIMARY KEY,
    name       TEXT NOT NULL,
    created_at TEXT NOT NULL
) STRICT;

-- Customers' wrapped keys are not here: they live in the key store (see
-- internal/keystore), apart from the data.

CREATE TABLE clients (
    id                 TEXT PRIMARY KEY,
    customer_id        TEXT NOT NULL REFERENCES customers (id),
    application_id     TEXT NOT NULL,
    service_id         TEXT NOT NULL,
    service_version_id TEXT NOT NULL,
    client_ct          TEXT NOT NULL,
    secret_digest      BLOB NOT NULL,
    scope              TEXT NOT NULL CHECK (scope IN ('read', 'read_write')),
    created_at         TEXT NOT NULL,
    revoked_at         TEXT
) STRICT;

CREATE INDEX clients_customer ON clients (customer_id, created_at);

-- list_versions counts the writes to each resource table of a customer. A
-- write transaction bumps it once per table and stamps the rows it writes
-- with the new value (seq), so a process that cached a customer's decoded
-- rows can tell whether they are current, and which rows changed since.
CREATE TABLE list_versions (
    customer_id TEXT    NOT NULL REFERENCES customers (id),
    table_name  TEXT    NOT NULL,
    version     INTEGER NOT NULL,
    PRIMARY KEY (customer_id, table_name)
) STRICT;

CREATE TABLE organizations (
    customer_id     TEXT NOT NULL REFERENCES customers (id),
    id              TEXT NOT NULL,
    created_at      TEXT NOT NULL,
    seq             INTEGER NOT NULL,
    name            TEXT NOT NULL,
    organization_id TEXT,
    custom_id       TEXT,
    sealed          BLOB,
    PRIMARY KEY (customer_id, id),
    UNIQUE (customer_id, name),
    FOREIGN KEY (customer_id, organization_id) REFERENCES organizations (customer_id, id)
) STRICT;

CREATE INDEX organizations_created ON organizations (customer_id, created_at, id);
CREATE INDEX organizations_seq ON organizations (customer_id, seq);

CREATE TABLE addresses (
    customer_id     TEXT NOT NULL REFERENCES customers (id),
    id              TEXT NOT NULL,
    created_at      TEXT NOT NULL,
    seq             INTEGER NOT NULL,
    country         TEXT NOT NULL,
    custom_id       TEXT,
    organization_id TEXT,
    sealed          BLOB NOT NULL,
    PRIMARY KEY (customer_id, id),
    FOREIGN KEY (customer_id, organization_id) REFERENCES organizations (customer_id, id)
) STRICT;

CREATE INDEX addresses_created ON addresses (customer_id, created_at, id);
CREATE INDEX addresses_seq ON addresses (customer_id, seq);

CREATE TABLE tenants (
    customer_id                   TEXT    NOT NULL REFERENCES customers (id),
    id                            TEXT    NOT NULL,
    created_at                    TEXT    NOT NULL,
    seq                           INTEGER NOT NULL,
    ssn_bidx                      BLOB,
    email_bidx                    BLOB,
    phone_number_bidx             BLOB,
    custom_id                     TEXT,
    organization_id               TEXT,
    current_registered_address_id TEXT,
    future_address_id             TEXT,
    ssn_is_coordination_number    INTEGER NOT NULL DEFAULT 0 CHECK (ssn_is_coordination_number IN (0, 1)),
    sealed                        BLOB    NOT NULL,
    PRIMARY KEY (customer_id, id),
    FOREIGN KEY (customer_id, organization_id) REFERENCES organizations (customer_id, id),
    FOREIGN KEY (customer_id, current_registered_address_id) REFERENCES addresses (customer_id, id),
    FOREIGN KEY (customer_id, future_address_id) REFERENCES addresses (customer_id, id)
) STRICT;

CREATE INDEX tenants_created ON tenants (customer_id, created_at, id);
CREATE INDEX tenants_seq ON tenants (customer_id, seq);

CREATE TABLE subtenants (
    customer_id                   TEXT    NOT NULL REFERENCES customers (id),
    id                            TEXT    NOT NULL,
    created_at                    TEXT    NOT NULL,
    seq                           INTEGER NOT NULL,
    ssn_bidx                      BLOB,
    email_bidx                    BLOB,
    phone_number_bidx             BLOB,
    custom_id                     TEXT,
    organization_id               TEXT,
    current_registered_address_id TEXT,
    future_address_id             TEXT,
    is_active                     INTEGER NOT NULL DEFAULT 1 CHECK (is_active IN (0, 1)),
    sealed                        BLOB    NOT NULL,
    PRIMARY KEY (customer_id, id),
    FOREIGN KEY (customer_id, organization_id) REFERENCES organizations (customer_id, id),
    FOREIGN KEY (customer_id, current_registered_address_id) REFERENCES addresses (customer_id, id),
    FOREIGN KEY (customer_id, future_address_id) REFERENCES addresses (customer_id, id)
) STRICT;

CREATE INDEX subtenants_created ON subtenants (customer_id, created_at, id);
CREATE INDEX subtenants_seq ON subtenants (customer_id, seq);

CREATE TABLE protected_identities (
    customer_id                   TEXT NOT NULL REFERENCES customers (id),
    id                            TEXT NOT NULL,
    created_at                    TEXT NOT NULL,
    seq                           INTEGER NOT NULL,
    tenant_id                     TEXT,
    sub_tenant_id                 TEXT,
    organization_id               TEXT,
    email_bidx                    BLOB,
    phone_number_bidx             BLOB,
    ssn_bidx                      BLOB,
    custom_id                     TEXT,
    current_registered_address_id TEXT,
    previous_address_id           TEXT,
    future_address_id             TEXT,
    sealed                        BLOB NOT NULL,
    PRIMARY KEY (customer_id, id),
    UNIQUE (customer_id, tenant_id),
    UNIQUE (customer_id, sub_tenant_id),
    CHECK ((tenant_id IS NULL) <> (sub_tenant_id IS NULL)),
    FOREIGN KEY (customer_id, tenant_id) REFERENCES tenants (customer_id, id) ON DELETE CASCADE,
    FOREIGN KEY (customer_id, sub_tenant_id) REFERENCES subtenants (customer_id, id) ON DELETE CASCADE,
    FOREIGN KEY (customer_id, organization_id) REFERENCES organizations (customer_id, id),
    FOREIGN KEY (customer_id, current_registered_address_id) REFERENCES addresses (customer_id, id),
    FOREIGN KEY (customer_id, previous_address_id) REFERENCES addresses (customer_id, id),
    FOREIGN KEY (customer_id, future_address_id) REFERENCES addresses (customer_id, id)
) STRICT;

CREATE INDEX protected_identities_created ON protected_identities (customer_id, created_at, id);
CREATE INDEX protected_identities_seq ON protected_identities (customer_id, seq);
CREATE INDEX protected_identities_ssn ON protected_identities (customer_id, ssn_bidx);
CREATE INDEX tenants_ssn ON tenants (customer_id, ssn_bidx);
CREATE INDEX subtenants_ssn ON subtenants (customer_id, ssn_bidx);
