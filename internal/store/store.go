// Package store defines the persistence the service needs, independent of
// the database engine. Implementations live in sub-packages (sqlite, and
// postgres), on the statements sqlbuild writes once for both; every method
// takes the customer id and every statement filters on it, so one
// customer's data can't reach another's by omission.
package store

import (
	"context"
	"errors"
	"time"

	"accounts/internal/audit"
	"accounts/internal/schema"
)

// WriteStall is how long a write batch may take to commit before the
// store's readiness fails: a disk or a database that stopped answering
// (an fsync that does not return), which a load balancer should learn of
// before the requests behind it run out of time. A bulk write of 1,000
// objects commits in about a second.
const WriteStall = 5 * time.Second

// ErrWritesStalled is Ready's error while a write batch is stalled.
var ErrWritesStalled = errors.New("store: a write has been committing for longer than " + WriteStall.String())

// Unavailable reports whether err says that the database could not be
// reached, or that the connection of a statement was lost before anything
// of it committed: the request changed nothing, and may be sent again once
// the database is back (the API's 503), where any other failure is the
// service's (500). An engine's errors say so by an Unavailable method; the
// outermost error of err's chain that has one decides, so a wrapper can
// say that a lost connection left the outcome unknown (a COMMIT that went
// out).
func Unavailable(err error) bool {
	var u interface{ Unavailable() bool }
	return errors.As(err, &u) && u.Unavailable()
}

// UnavailableBeneath reports whether any error of err's chain says
// unavailability, even beneath one that says the outcome is unknown (a
// COMMIT that went out on a connection then lost). It is for a request
// whose answer does not depend on that outcome: a read, whose audit entry
// may or may not have been written (a read attempted), but whose data was
// not given, may be sent again all the same.
func UnavailableBeneath(err error) bool {
	for ; err != nil; err = errors.Unwrap(err) {
		if u, ok := err.(interface{ Unavailable() bool }); ok && u.Unavailable() {
			return true
		}
	}
	return false
}

// MarkUnavailable returns err marked as unavailability (Unavailable), for
// an engine that knows nothing of the request was done: the database's
// lock stayed taken, or the network beneath a statement failed.
func MarkUnavailable(err error) error { return &unavailableError{err} }

type unavailableError struct{ err error }

func (e *unavailableError) Error() string     { return e.err.Error() }
func (e *unavailableError) Unwrap() error     { return e.err }
func (e *unavailableError) Unavailable() bool { return true }

// OutcomeUnknown returns err marked as a failure that may have taken
// effect all the same: a COMMIT whose connection was lost, or whose flush
// to disk failed. It is not unavailability (Unavailable is false, a
// request sent again could write twice), whatever err says beneath
// (UnavailableBeneath still sees it).
func OutcomeUnknown(err error) error { return &outcomeUnknownError{err} }

// IsOutcomeUnknown reports whether err's chain holds an OutcomeUnknown.
func IsOutcomeUnknown(err error) bool {
	var u *outcomeUnknownError
	return errors.As(err, &u)
}

type outcomeUnknownError struct{ err error }

func (e *outcomeUnknownError) Error() string     { return e.err.Error() }
func (e *outcomeUnknownError) Unwrap() error     { return e.err }
func (e *outcomeUnknownError) Unavailable() bool { return false }

// ErrNotFound is returned when a row does not exist for the given customer.
var ErrNotFound = errors.New("store: not found")

// UniqueViolation is returned when a write breaks a per-customer unique
// constraint. Column names the constrained column; it never holds a value.
type UniqueViolation struct{ Column string }

func (e *UniqueViolation) Error() string { return "store: unique constraint on " + e.Column }

// ReferenceViolation is returned when a write references a row the customer
// does not have: the service checked it, but a concurrent delete came first.
// Column names the referencing column; it is empty only where the engine
// can't tell which key failed and nothing in the write names it (a delete
// of a row SQLite still has references to).
type ReferenceViolation struct{ Column string }

func (e *ReferenceViolation) Error() string {
	if e.Column == "" {
		return "store: foreign key violation"
	}
	return "store: foreign key on " + e.Column
}

// Row is one object of a resource as stored.
type Row struct {
	ID        string
	CreatedAt time.Time
	// Plain maps each clear column (schema.Field.Column of non-personal
	// fields, and IndexColumn of blind-indexed fields) to its value: string,
	// bool, []byte or nil.
	Plain map[string]any
	// Sealed holds the personal fields, encrypted.
	Sealed []byte
	// Search holds the row's search tokens when its resource is
	// schema.Resource.SearchIndexed (an empty slice: none), else nil.
	Search []int64
}

// Customer is a property-management company whose data the service keeps.
type Customer struct {
	ID        string
	Name      string
	CreatedAt time.Time
}

// Client is an API client (a Pigello client entity) of one customer.
type Client struct {
	ID               string // the X-PIGELLO-CLIENT-ENTITY value
	CustomerID       string
	ApplicationID    string
	ServiceID        string
	ServiceVersionID string
	ClientCT         string
	SecretDigest     []byte
	Scope            string
	CreatedAt        time.Time
	RevokedAt        *time.Time
}

// writeRowsKey is the context key of WithWriteRows.
type writeRowsKey struct{}

// WithWriteRows returns a context saying that the Update run with it writes
// about n rows (a bulk write). The stores share transactions between
// concurrent Updates, and keep a transaction's rows bounded by this count,
// so that large writes don't gather into one transaction that holds them
// all, and all their callers' memory, until it commits.
func WithWriteRows(ctx context.Context, n int) context.Context {
	return context.WithValue(ctx, writeRowsKey{}, n)
}

// WriteRows returns the rows an Update run with ctx writes, as
// WithWriteRows said: 1 when it said nothing.
func WriteRows(ctx context.Context) int {
	if n, ok := ctx.Value(writeRowsKey{}).(int); ok {
		return n
	}
	return 1
}

// Store is the database.
type Store interface {
	// View runs fn in a read-only transaction.
	View(ctx context.Context, fn func(Tx) error) error
	// Get returns one row of the customer, read by a single statement
	// outside any explicit transaction (one statement is one snapshot):
	// the read of a GET by id, which a BEGIN and COMMIT around it would
	// cost as much as the select itself. Tx.Get reads within a transaction.
	Get(ctx context.Context, customerID string, res *schema.Resource, id string) (Row, error)
	// Version is Tx.Version read by a single statement outside any
	// explicit transaction: all a list needs when the objects it has
	// cached turn out to be current.
	Version(ctx context.Context, customerID string, res *schema.Resource) (int64, error)
	// AppendAuditAlone appends entries (of one or more customers, in
	// order) to their customers' chains, as Tx.AppendAudit, in a
	// transaction of their own, and returns once it has committed: the
	// read log's batches, which every read waits for.
	AppendAuditAlone(ctx context.Context, entries []audit.Entry) error
	// Update runs fn in a read-write transaction, committed when fn returns
	// nil, and returns once it has committed. The transaction may be shared
	// with concurrent Updates (group commit), fn's writes in a savepoint of
	// it, so fn's failure undoes only its own writes; and fn may run more
	// than once (when the database aborts a transaction as a deadlock
	// victim), so it must leave nothing behind but through the transaction.
	// When ctx ends before fn's turn has come, Update returns ctx's error
	// at once and fn never runs (a stalled disk holds the batch, not its
	// callers); once fn has begun to run, Update returns the batch's
	// outcome, however late: an error always means nothing was written.
	Update(ctx context.Context, fn func(Tx) error) error
	// Ready reports whether the database answers, its schema is current,
	// and no write batch has been committing for longer than WriteStall
	// (ErrWritesStalled).
	Ready(ctx context.Context) error
	// Migrated returns the names of the migrations that opening the store
	// applied, oldest first: none when the schema was already current.
	Migrated() []string
	Close() error

	// CreateCustomer stores a customer. Its keys live in the key store.
	CreateCustomer(ctx context.Context, c Customer) error
	// Customer returns one customer.
	Customer(ctx context.Context, id string) (Customer, error)
	// Customers lists every customer, oldest first.
	Customers(ctx context.Context) ([]Customer, error)
	// DeleteCustomer deletes a customer with all its objects and clients, in
	// one transaction. Its audit trail stays.
	DeleteCustomer(ctx context.Context, customerID string) error

	// CreateClient stores a new API client.
	CreateClient(ctx context.Context, c Client) error
	// Client returns the client with the given entity id, revoked or not.
	Client(ctx context.Context, id string) (Client, error)
	// Clients lists a customer's clients, oldest first.
	Clients(ctx context.Context, customerID string) ([]Client, error)
	// RevokeClient marks a client revoked; revoking twice keeps the first time.
	RevokeClient(ctx context.Context, id string, at time.Time) error

	// AuditCustomers lists the customers that have an audit chain.
	AuditCustomers(ctx context.Context) ([]string, error)
	// AuditHead returns the recorded head of a customer's audit chain.
	AuditHead(ctx context.Context, customerID string) (audit.Chain, error)
	// AuditEntries calls fn with each of a customer's audit entries, in
	// position order, as they are read.
	AuditEntries(ctx context.Context, customerID string, fn func(audit.Entry) error) error
}

// Lock is how a transaction's read of a row holds that row until the
// transaction ends. PostgreSQL runs write transactions side by side at READ
// COMMITTED, where a read holds nothing: two writers that each read a row,
// change it and write it back would lose one change. SQLite needs no lock:
// its one writer runs write transactions one at a time.
type Lock int

const (
	// ForUpdate is for a row the transaction will change from what it
	// read: a concurrent writer of the row waits until this transaction
	// ends and then reads what it wrote, and a row another transaction
	// deleted first is not found.
	ForUpdate Lock = iota
	// Unlocked reads the row as last committed and holds nothing: for a
	// row the transaction's decision rests on where a lock of another kind
	// keeps it from changing (an organization's ancestors, read under
	// Tx.LockAncestry).
	Unlocked
	// ForDelete is for a row the transaction will delete, after it has
	// dealt with the rows that reference it: a concurrent writer of a row
	// that references it (a protected identity created for a tenant being
	// deleted) waits until this transaction ends and then finds it gone,
	// and the read itself waits for such a writer that came first, so the
	// rows referencing it are all seen. Else the database's own ON DELETE
	// would remove or change them unseen: no audit entry, no new list
	// version.
	ForDelete
)

// Tx is a transaction over resource rows of one or more customers; each
// method is scoped to the customer it is given.
type Tx interface {
	Insert(ctx context.Context, customerID string, res *schema.Resource, row Row) error
	// Get reads one row and holds it as lock says until the transaction
	// ends.
	Get(ctx context.Context, customerID string, res *schema.Resource, id string, lock Lock) (Row, error)
	// LockAncestry holds, until the transaction ends, the customer's lock
	// on the links of res's acyclic references (an organization's parent).
	// Every write that sets such a link takes it before it reads the
	// ancestors to rule out a cycle, and before it locks the row it writes:
	// such writes run one at a time per customer, so the ancestors one
	// reads can't change before it commits, and two can't deadlock on each
	// other's rows (which each locking the ancestors it read did).
	LockAncestry(ctx context.Context, customerID string, res *schema.Resource) error
	// LockRows holds the rows of ids (those that exist) as ForUpdate until
	// the transaction ends, taking their locks in the order of their ids:
	// a write of many rows (a bulk write) locks them first, so that two
	// such writes of the same rows in other orders wait for each other
	// instead of deadlocking.
	LockRows(ctx context.Context, customerID string, res *schema.Resource, ids []string) error
	// Update replaces the row's clear columns and sealed value.
	Update(ctx context.Context, customerID string, res *schema.Resource, row Row) error
	Delete(ctx context.Context, customerID string, res *schema.Resource, id string) error
	Exists(ctx context.Context, customerID string, res *schema.Resource, id string) (bool, error)
	// Referencing lists the ids of res rows whose field f references target.
	Referencing(ctx context.Context, customerID string, res *schema.Resource, f *schema.Field, target string) ([]string, error)
	// ClearReferences sets field f to null on every res row that references target.
	ClearReferences(ctx context.Context, customerID string, res *schema.Resource, f *schema.Field, target string) error
	// List calls fn with each row the spec selects, in order, as the rows
	// are read; it stops at the first error fn returns and returns it.
	List(ctx context.Context, customerID string, res *schema.Resource, spec ListSpec, fn func(Row) error) error
	// Version is the customer's list version of res: it grows with every
	// committed write to res's rows (deletes included), and every written
	// row carries the version of the write, so "rows with a version above
	// V" are exactly the rows written since V was read.
	Version(ctx context.Context, customerID string, res *schema.Resource) (int64, error)
	// Count counts the rows the conditions select.
	Count(ctx context.Context, customerID string, res *schema.Resource, where []Condition) (int, error)
	// Larger reports whether the customer has more than n rows of res,
	// reading at most n+1 of them.
	Larger(ctx context.Context, customerID string, res *schema.Resource, n int) (bool, error)
	// Unindexed counts the customer's rows of a search-indexed res that
	// have no search tokens: those written before res was indexed, which
	// a ListSpec.Match would miss.
	Unindexed(ctx context.Context, customerID string, res *schema.Resource) (int, error)
	// Savepoint runs fn so that when it fails, only its own writes are undone
	// and the transaction goes on.
	Savepoint(ctx context.Context, fn func() error) error
	// AppendAudit links entries (of one or more customers, in order) to the
	// end of their customers' chains and stores them with the transaction:
	// when it is about to commit, it sets each entry's Position, PrevHash
	// and Hash. Appends to one customer's chain are serialized across
	// transactions and processes.
	AppendAudit(ctx context.Context, entries []audit.Entry) error
}
