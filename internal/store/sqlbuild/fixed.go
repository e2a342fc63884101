package sqlbuild

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	"accounts/internal/audit"
	"accounts/internal/store"
	"accounts/internal/store/dialect"
)

// The savepoint statements: the same text on both engines, without
// placeholders. A transaction has at most one savepoint open at each
// nesting level, so one name serves.
const (
	Savepoint        = "SAVEPOINT item"
	RollbackTo       = "ROLLBACK TO SAVEPOINT item"
	ReleaseSavepoint = "RELEASE SAVEPOINT item"
)

// fixedStatements are the statements that are not a resource's, bound.
type fixedStatements struct {
	bumpVersion, selectVersion              string
	auditHead, auditCustomers, auditEntries string
	// insertAuditEntries[n-1] stores n entries.
	insertAuditEntries                                  []string
	createCustomer, customer, customerExists, customers string
	createClient, client, clients, revokeClient         string
	deleteCustomerRows                                  []string
	deleteCustomer                                      string
}

const clientColumns = `id, customer_id, application_id, service_id, service_version_id, client_ct,
	secret_digest, scope, created_at, revoked_at`

// customerTables are the tables holding a customer's rows, referencing
// tables before the tables they reference.
var customerTables = []string{"protected_identities", "tenants", "subtenants", "addresses", "organizations", "list_versions", "clients"}

func newFixed(d dialect.Dialect) fixedStatements {
	f := fixedStatements{
		// The bumped row is named by its table in the update: PostgreSQL
		// finds a bare "version" ambiguous there, SQLite takes either.
		bumpVersion: d.Bind(`INSERT INTO list_versions (customer_id, table_name, version) VALUES (?, ?, 1)
		ON CONFLICT (customer_id, table_name) DO UPDATE SET version = list_versions.version + 1 RETURNING version`),
		selectVersion: d.Bind(`SELECT version FROM list_versions WHERE customer_id = ? AND table_name = ?`),

		auditHead: d.Bind(`SELECT position, hash FROM audit_heads WHERE customer_id = ?`),
		// A head at position 0 stands for an empty chain (the PostgreSQL
		// store creates heads before it locks them). The entries are
		// asked too: a chain whose head row was deleted or set back to 0
		// still has them, and verifying must find it broken, not pass it
		// over.
		auditCustomers: `SELECT customer_id FROM audit_heads WHERE position > 0
		UNION SELECT customer_id FROM audit_entries ORDER BY customer_id`,
		auditEntries: d.Bind(`SELECT position, at, client_id, request_id, action, resource, object_ids, fields,
		prev_hash, hash FROM audit_entries WHERE customer_id = ? ORDER BY position`),

		createCustomer: d.Bind(`INSERT INTO customers (id, name, created_at) VALUES (?, ?, ?)`),
		customer:       d.Bind(`SELECT id, name, created_at FROM customers WHERE id = ?`),
		customerExists: d.Bind(`SELECT 1 FROM customers WHERE id = ?`),
		customers:      `SELECT id, name, created_at FROM customers ORDER BY created_at, id`,
		deleteCustomer: d.Bind(`DELETE FROM customers WHERE id = ?`),

		createClient: d.Bind(`INSERT INTO clients (id, customer_id, application_id, service_id,
		service_version_id, client_ct, secret_digest, scope, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`),
		client:       d.Bind(`SELECT ` + clientColumns + ` FROM clients WHERE id = ?`),
		clients:      d.Bind(`SELECT ` + clientColumns + ` FROM clients WHERE customer_id = ? ORDER BY created_at, id`),
		revokeClient: d.Bind(`UPDATE clients SET revoked_at = coalesce(revoked_at, ?) WHERE id = ?`),
	}
	row := "(" + strings.Repeat("?, ", auditEntryColumns-1) + "?)"
	for n := 1; n <= AuditEntriesPerInsert; n++ {
		f.insertAuditEntries = append(f.insertAuditEntries, d.Bind(`INSERT INTO audit_entries (customer_id, position, at,
		client_id, request_id, action, resource, object_ids, fields, prev_hash, hash) VALUES `+
			strings.Repeat(row+", ", n-1)+row))
	}
	for _, table := range customerTables {
		f.deleteCustomerRows = append(f.deleteCustomerRows, d.Bind("DELETE FROM "+table+" WHERE customer_id = ?"))
	}
	return f
}

// BumpVersion raises a customer's list version of a table (from 0 to 1 on
// its first write) and returns the new version.
func (b *Builder) BumpVersion(customerID, table string) Stmt {
	return Stmt{b.fixed.bumpVersion, []any{customerID, table}}
}

// Version selects a customer's list version of a table; no row is 0.
func (b *Builder) Version(customerID, table string) Stmt {
	return Stmt{b.fixed.selectVersion, []any{customerID, table}}
}

// AuditHead selects the position and hash of a customer's chain head.
func (b *Builder) AuditHead(customerID string) Stmt {
	return Stmt{b.fixed.auditHead, []any{customerID}}
}

// auditEntryColumns is the number of columns (and parameters) of an audit
// entry's row.
const auditEntryColumns = 11

// AuditEntriesPerInsert is the most entries one InsertAuditEntries
// statement stores. A batch of reads commits hundreds of entries, and a
// statement per entry cost more than the entries' own work; a statement
// per 64 entries binds 704 parameters, well below the least limit SQLite
// has ever had on a statement (999), and its text for every count up to
// the cap is fixed, so that it can be prepared once.
const AuditEntriesPerInsert = 64

// InsertAuditEntries stores linked entries, in order: one statement per
// AuditEntriesPerInsert of them.
func (b *Builder) InsertAuditEntries(entries []*audit.Entry) ([]Stmt, error) {
	stmts := make([]Stmt, 0, (len(entries)+AuditEntriesPerInsert-1)/AuditEntriesPerInsert)
	for chunk := range slices.Chunk(entries, AuditEntriesPerInsert) {
		args := make([]any, 0, len(chunk)*auditEntryColumns)
		for _, e := range chunk {
			ids, err := b.d.List(e.ObjectIDs)
			if err != nil {
				return nil, err
			}
			fields, err := b.d.List(e.Fields)
			if err != nil {
				return nil, err
			}
			args = append(args, e.CustomerID, e.Position, b.d.Time(e.Time), e.ClientID,
				e.RequestID, string(e.Action), e.Resource, ids, fields, e.PrevHash, e.Hash)
		}
		stmts = append(stmts, Stmt{b.fixed.insertAuditEntries[len(chunk)-1], args})
	}
	return stmts, nil
}

// AuditCustomers selects the customers whose chain has an entry, ordered.
func (b *Builder) AuditCustomers() Stmt { return Stmt{b.fixed.auditCustomers, nil} }

// AuditEntries selects a customer's entries in position order, for
// ScanAuditEntry.
func (b *Builder) AuditEntries(customerID string) Stmt {
	return Stmt{b.fixed.auditEntries, []any{customerID}}
}

// ScanAuditEntry reads one entry of customerID selected by AuditEntries.
func ScanAuditEntry(customerID string, src Scanner) (audit.Entry, error) {
	e := audit.Entry{CustomerID: customerID}
	var at, ids, fields any
	var action string
	if err := src.Scan(&e.Position, &at, &e.ClientID, &e.RequestID, &action, &e.Resource, &ids, &fields,
		&e.PrevHash, &e.Hash); err != nil {
		return e, err
	}
	e.Action = audit.Action(action)
	var err error
	if e.Time, err = readTime(at); err != nil {
		return e, fmt.Errorf("sqlbuild: audit entry time: %w", err)
	}
	if e.ObjectIDs, err = readList(ids); err != nil {
		return e, fmt.Errorf("sqlbuild: audit entry object ids: %w", err)
	}
	if e.Fields, err = readList(fields); err != nil {
		return e, fmt.Errorf("sqlbuild: audit entry fields: %w", err)
	}
	return e, nil
}

// readList decodes a list of strings: JSON text, or an array.
func readList(v any) ([]string, error) {
	switch v := v.(type) {
	case string:
		var l []string
		err := json.Unmarshal([]byte(v), &l)
		return l, err
	case []string:
		return v, nil
	case []any:
		l := make([]string, len(v))
		for i, s := range v {
			var ok bool
			if l[i], ok = s.(string); !ok {
				return nil, errNotList
			}
		}
		return l, nil
	}
	return nil, errNotList
}

// CreateCustomer stores a customer.
func (b *Builder) CreateCustomer(c store.Customer) Stmt {
	return Stmt{b.fixed.createCustomer, []any{c.ID, c.Name, b.d.Time(c.CreatedAt)}}
}

// Customer selects one customer, for ScanCustomer.
func (b *Builder) Customer(id string) Stmt { return Stmt{b.fixed.customer, []any{id}} }

// CustomerExists selects 1 when the customer exists.
func (b *Builder) CustomerExists(id string) Stmt { return Stmt{b.fixed.customerExists, []any{id}} }

// Customers selects every customer, oldest first, for ScanCustomer.
func (b *Builder) Customers() Stmt { return Stmt{b.fixed.customers, nil} }

// ScanCustomer reads one customer selected by Customer or Customers.
func ScanCustomer(src Scanner) (store.Customer, error) {
	var c store.Customer
	var created any
	if err := src.Scan(&c.ID, &c.Name, &created); err != nil {
		return store.Customer{}, err
	}
	var err error
	c.CreatedAt, err = readTime(created)
	return c, err
}

// DeleteCustomer deletes a customer's rows of every table, referencing
// tables first, and then the customer: run in order, in one transaction.
// The last statement changes no row when there is no such customer.
func (b *Builder) DeleteCustomer(customerID string) []Stmt {
	out := make([]Stmt, 0, len(b.fixed.deleteCustomerRows)+1)
	for _, q := range b.fixed.deleteCustomerRows {
		out = append(out, Stmt{q, []any{customerID}})
	}
	return append(out, Stmt{b.fixed.deleteCustomer, []any{customerID}})
}

// CreateClient stores a new API client.
func (b *Builder) CreateClient(c store.Client) Stmt {
	return Stmt{b.fixed.createClient, []any{c.ID, c.CustomerID, c.ApplicationID, c.ServiceID, c.ServiceVersionID,
		c.ClientCT, c.SecretDigest, c.Scope, b.d.Time(c.CreatedAt)}}
}

// Client selects one client by its entity id, for ScanClient.
func (b *Builder) Client(id string) Stmt { return Stmt{b.fixed.client, []any{id}} }

// Clients selects a customer's clients, oldest first, for ScanClient.
func (b *Builder) Clients(customerID string) Stmt { return Stmt{b.fixed.clients, []any{customerID}} }

// RevokeClient marks a client revoked at a time, unless it already is.
func (b *Builder) RevokeClient(id string, at time.Time) Stmt {
	return Stmt{b.fixed.revokeClient, []any{b.d.Time(at), id}}
}

// ScanClient reads one client selected by Client or Clients.
func ScanClient(src Scanner) (store.Client, error) {
	var c store.Client
	var created, revoked any
	if err := src.Scan(&c.ID, &c.CustomerID, &c.ApplicationID, &c.ServiceID, &c.ServiceVersionID, &c.ClientCT,
		&c.SecretDigest, &c.Scope, &created, &revoked); err != nil {
		return store.Client{}, err
	}
	var err error
	if c.CreatedAt, err = readTime(created); err != nil {
		return store.Client{}, err
	}
	if c.RevokedAt, err = readOptionalTime(revoked); err != nil {
		return store.Client{}, err
	}
	return c, nil
}
