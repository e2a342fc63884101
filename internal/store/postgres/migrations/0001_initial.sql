-- The initial schema, the PostgreSQL form of the SQLite store's 0001: the
-- same tables, columns and constraints. Every resource table is keyed by
-- (customer_id, id) and every foreign key carries customer_id, so no
-- reference can cross customers. Personal fields live only in the sealed
-- column; *_bidx columns hold keyed hashes for exact lookups.
--
-- Text columns use the "C" collation: they compare and sort byte by byte,
-- as SQLite and the service's own sorting do, whatever the database's
-- default collation. Times are timestamptz (microseconds, like the API).
-- Constraints are named: a unique violation is reported by constraint
-- name, and the store maps that name to the constrained column.

CREATE TABLE customers (
    id         text COLLATE "C" NOT NULL,
    name       text COLLATE "C" NOT NULL,
    created_at timestamptz      NOT NULL,
    CONSTRAINT customers_pkey PRIMARY KEY (id)
);

-- Customers' wrapped keys are not here: they live in the key store (see
-- internal/keystore), apart from the data.

CREATE TABLE clients (
    id                 text COLLATE "C" NOT NULL,
    customer_id        text COLLATE "C" NOT NULL,
    application_id     text COLLATE "C" NOT NULL,
    service_id         text COLLATE "C" NOT NULL,
    service_version_id text COLLATE "C" NOT NULL,
    client_ct          text COLLATE "C" NOT NULL,
    secret_digest      bytea            NOT NULL,
    scope              text COLLATE "C" NOT NULL,
    created_at         timestamptz      NOT NULL,
    revoked_at         timestamptz,
    CONSTRAINT clients_pkey PRIMARY KEY (id),
    CONSTRAINT clients_scope_check CHECK (scope IN ('read', 'read_write')),
    CONSTRAINT clients_customer_fkey FOREIGN KEY (customer_id) REFERENCES customers (id)
);

CREATE INDEX clients_customer ON clients (customer_id, created_at);

-- list_versions counts the writes to each resource table of a customer. A
-- write transaction bumps it once per table (INSERT ... ON CONFLICT DO
-- UPDATE, whose row lock is held until commit, so versions grow in commit
-- order) and stamps the rows it writes with the new value (seq), so a
-- process that cached a customer's decoded rows can tell whether they are
-- current, and which rows changed since.
CREATE TABLE list_versions (
    customer_id text COLLATE "C" NOT NULL,
    table_name  text COLLATE "C" NOT NULL,
    version     bigint           NOT NULL,
    CONSTRAINT list_versions_pkey PRIMARY KEY (customer_id, table_name),
    CONSTRAINT list_versions_customer_fkey FOREIGN KEY (customer_id) REFERENCES customers (id)
);

-- References between resources: the service nulls them (stamping the rows)
-- or deletes the cascading objects itself before it deletes a target; the
-- ON DELETE actions make the database do the same should a referencing row
-- appear anyway. SET NULL names the reference column only: customer_id is
-- part of every key and stays.

CREATE TABLE organizations (
    customer_id     text COLLATE "C" NOT NULL,
    id              text COLLATE "C" NOT NULL,
    created_at      timestamptz      NOT NULL,
    seq             bigint           NOT NULL,
    name            text COLLATE "C" NOT NULL,
    organization_id text COLLATE "C",
    custom_id       text COLLATE "C",
    sealed          bytea,
    CONSTRAINT organizations_pkey PRIMARY KEY (customer_id, id),
    CONSTRAINT organizations_name_unique UNIQUE (customer_id, name),
    CONSTRAINT organizations_customer_fkey FOREIGN KEY (customer_id) REFERENCES customers (id),
    CONSTRAINT organizations_organization_fkey FOREIGN KEY (customer_id, organization_id)
        REFERENCES organizations (customer_id, id) ON DELETE SET NULL (organization_id)
);

CREATE INDEX organizations_created ON organizations (customer_id, created_at, id);
CREATE INDEX organizations_seq ON organizations (customer_id, seq);
CREATE INDEX organizations_organization ON organizations (customer_id, organization_id);

CREATE TABLE addresses (
    customer_id     text COLLATE "C" NOT NULL,
    id              text COLLATE "C" NOT NULL,
    created_at      timestamptz      NOT NULL,
    seq             bigint           NOT NULL,
    country         text COLLATE "C" NOT NULL,
    custom_id       text COLLATE "C",
    organization_id text COLLATE "C",
    sealed          bytea            NOT NULL,
    CONSTRAINT addresses_pkey PRIMARY KEY (customer_id, id),
    CONSTRAINT addresses_customer_fkey FOREIGN KEY (customer_id) REFERENCES customers (id),
    CONSTRAINT addresses_organization_fkey FOREIGN KEY (customer_id, organization_id)
        REFERENCES organizations (customer_id, id) ON DELETE SET NULL (organization_id)
);

CREATE INDEX addresses_created ON addresses (customer_id, created_at, id);
CREATE INDEX addresses_seq ON addresses (customer_id, seq);
CREATE INDEX addresses_organization ON addresses (customer_id, organization_id);

CREATE TABLE tenants (
    customer_id                   text COLLATE "C" NOT NULL,
    id                            text COLLATE "C" NOT NULL,
    created_at                    timestamptz      NOT NULL,
    seq                           bigint           NOT NULL,
    ssn_bidx                      bytea,
    email_bidx                    bytea,
    phone_number_bidx             bytea,
    custom_id                     text COLLATE "C",
    organization_id               text COLLATE "C",
    current_registered_address_id text COLLATE "C",
    future_address_id             text COLLATE "C",
    ssn_is_coordination_number    boolean          NOT NULL DEFAULT false,
    sealed                        bytea            NOT NULL,
    CONSTRAINT tenants_pkey PRIMARY KEY (customer_id, id),
    CONSTRAINT tenants_customer_fkey FOREIGN KEY (customer_id) REFERENCES customers (id),
    CONSTRAINT tenants_organization_fkey FOREIGN KEY (customer_id, organization_id)
        REFERENCES organizations (customer_id, id) ON DELETE SET NULL (organization_id),
    CONSTRAINT tenants_current_registered_address_fkey FOREIGN KEY (customer_id, current_registered_address_id)
        REFERENCES addresses (customer_id, id) ON DELETE SET NULL (current_registered_address_id),
    CONSTRAINT tenants_future_address_fkey FOREIGN KEY (customer_id, future_address_id)
        REFERENCES addresses (customer_id, id) ON DELETE SET NULL (future_address_id)
);

CREATE INDEX tenants_created ON tenants (customer_id, created_at, id);
CREATE INDEX tenants_seq ON tenants (customer_id, seq);
CREATE INDEX tenants_ssn ON tenants (customer_id, ssn_bidx);
CREATE INDEX tenants_organization ON tenants (customer_id, organization_id);
CREATE INDEX tenants_current_registered_address ON tenants (customer_id, current_registered_address_id);
CREATE INDEX tenants_future_address ON tenants (customer_id, future_address_id);

CREATE TABLE subtenants (
    customer_id                   text COLLATE "C" NOT NULL,
    id                            text COLLATE "C" NOT NULL,
    created_at                    timestamptz      NOT NULL,
    seq                           bigint           NOT NULL,
    ssn_bidx                      bytea,
    email_bidx                    bytea,
    phone_number_bidx             bytea,
    custom_id                     text COLLATE "C",
    organization_id               text COLLATE "C",
    current_registered_address_id text COLLATE "C",
    future_address_id             text COLLATE "C",
    is_active                     boolean          NOT NULL DEFAULT true,
    sealed                        bytea            NOT NULL,
    CONSTRAINT subtenants_pkey PRIMARY KEY (customer_id, id),
    CONSTRAINT subtenants_customer_fkey FOREIGN KEY (customer_id) REFERENCES customers (id),
    CONSTRAINT subtenants_organization_fkey FOREIGN KEY (customer_id, organization_id)
        REFERENCES organizations (customer_id, id) ON DELETE SET NULL (organization_id),
    CONSTRAINT subtenants_current_registered_address_fkey FOREIGN KEY (customer_id, current_registered_address_id)
        REFERENCES addresses (customer_id, id) ON DELETE SET NULL (current_registered_address_id),
    CONSTRAINT subtenants_future_address_fkey FOREIGN KEY (customer_id, future_address_id)
        REFERENCES addresses (customer_id, id) ON DELETE SET NULL (future_address_id)
);

CREATE INDEX subtenants_created ON subtenants (customer_id, created_at, id);
CREATE INDEX subtenants_seq ON subtenants (customer_id, seq);
CREATE INDEX subtenants_ssn ON subtenants (customer_id, ssn_bidx);
CREATE INDEX subtenants_organization ON subtenants (customer_id, organization_id);
CREATE INDEX subtenants_current_registered_address ON subtenants (customer_id, current_registered_address_id);
CREATE INDEX subtenants_future_address ON subtenants (customer_id, future_address_id);

CREATE TABLE protected_identities (
    customer_id                   text COLLATE "C" NOT NULL,
    id                            text COLLATE "C" NOT NULL,
    created_at                    timestamptz      NOT NULL,
    seq                           bigint           NOT NULL,
    tenant_id                     text COLLATE "C",
    sub_tenant_id                 text COLLATE "C",
    organization_id               text COLLATE "C",
    email_bidx                    bytea,
    phone_number_bidx             bytea,
    ssn_bidx                      bytea,
    custom_id                     text COLLATE "C",
    current_registered_address_id text COLLATE "C",
    previous_address_id           text COLLATE "C",
    future_address_id             text COLLATE "C",
    sealed                        bytea            NOT NULL,
    CONSTRAINT protected_identities_pkey PRIMARY KEY (customer_id, id),
    CONSTRAINT protected_identities_tenant_unique UNIQUE (customer_id, tenant_id),
    CONSTRAINT protected_identities_sub_tenant_unique UNIQUE (customer_id, sub_tenant_id),
    CONSTRAINT protected_identities_one_person CHECK ((tenant_id IS NULL) <> (sub_tenant_id IS NULL)),
    CONSTRAINT protected_identities_customer_fkey FOREIGN KEY (customer_id) REFERENCES customers (id),
    CONSTRAINT protected_identities_tenant_fkey FOREIGN KEY (customer_id, tenant_id)
        REFERENCES tenants (customer_id, id) ON DELETE CASCADE,
    CONSTRAINT protected_identities_sub_tenant_fkey FOREIGN KEY (customer_id, sub_tenant_id)
        REFERENCES subtenants (customer_id, id) ON DELETE CASCADE,
    CONSTRAINT protected_identities_organization_fkey FOREIGN KEY (customer_id, organization_id)
        REFERENCES organizations (customer_id, id) ON DELETE SET NULL (organization_id),
    CONSTRAINT protected_identities_current_registered_address_fkey FOREIGN KEY (customer_id, current_registered_address_id)
        REFERENCES addresses (customer_id, id) ON DELETE SET NULL (current_registered_address_id),
    CONSTRAINT protected_identities_previous_address_fkey FOREIGN KEY (customer_id, previous_address_id)
        REFERENCES addresses (customer_id, id) ON DELETE SET NULL (previous_address_id),
    CONSTRAINT protected_identities_future_address_fkey FOREIGN KEY (customer_id, future_address_id)
        REFERENCES addresses (customer_id, id) ON DELETE SET NULL (future_address_id)
);

CREATE INDEX protected_identities_created ON protected_identities (customer_id, created_at, id);
CREATE INDEX protected_identities_seq ON protected_identities (customer_id, seq);
CREATE INDEX protected_identities_ssn ON protected_identities (customer_id, ssn_bidx);
CREATE INDEX protected_identities_organization ON protected_identities (customer_id, organization_id);
CREATE INDEX protected_identities_current_registered_address ON protected_identities (customer_id, current_registered_address_id);
CREATE INDEX protected_identities_previous_address ON protected_identities (customer_id, previous_address_id);
CREATE INDEX protected_identities_future_address ON protected_identities (customer_id, future_address_id);
