// Package storetest is the conformance suite every store.Store
// implementation passes: the behaviour the service relies on, checked
// through the interface only, so that the engines behave the same.
package storetest

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"maps"
	"reflect"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"accounts/internal/audit"
	"accounts/internal/schema"
	"accounts/internal/store"

	"github.com/google/uuid"
)

// Opener returns a new, empty store opened with catalog. The store must
// be closed when the test ends (t.Cleanup).
type Opener func(t *testing.T, catalog *schema.Catalog) store.Store

// Run runs the suite, each case on a fresh store from open.
//
// The opener gets the catalog because a store knows the resources it was
// opened with by their declarations: the suite must pass the same
// *schema.Resource values to the Tx methods.
func Run(t *testing.T, open Opener) {
	cases := []struct {
		name string
		fn   func(*testing.T, *fixture)
	}{
		{"Ready", testReady},
		{"InsertGet", testInsertGet},
		{"Update", testUpdate},
		{"Delete", testDelete},
		{"UpdateRollsBackOnError", testRollback},
		{"CustomerScope", testCustomerScope},
		{"UniqueViolation", testUnique},
		{"Constraints", testConstraints},
		{"ListConditions", testListConditions},
		{"ListOrder", testListOrder},
		{"ListPaging", testListPaging},
		{"ListOffsetWithoutLimit", testListOffsetWithoutLimit},
		{"ListStopsAtError", testListStops},
		{"ListStreamsManyRows", testListStreamsManyRows},
		{"Versions", testVersions},
		{"VersionsConcurrent", testVersionsConcurrent},
		{"ConcurrentUpdatesFailAlone", testConcurrentUpdatesFailAlone},
		{"LockedReads", testLockedReads},
		{"UpdateLeftBeforeItsTurn", testUpdateLeftBeforeItsTurn},
		{"UpdateBegunWaitsForItsBatch", testUpdateBegunWaitsForItsBatch},
		{"PanicInUpdateFailsSafe", testPanicInUpdate},
		{"Savepoint", testSavepoint},
		{"SavepointForgetsRolledBackVersion", testSavepointVersion},
		{"References", testReferences},
		{"ViewIsReadOnly", testViewReadOnly},
		{"ViewIsOneSnapshot", testViewSnapshot},
		{"Customers", testCustomers},
		{"DeleteCustomer", testDeleteCustomer},
		{"Clients", testClients},
		{"ListEmptyIn", testListEmptyIn},
		{"SearchTokens", testSearchTokens},
		{"SearchTokensFollowWrites", testSearchTokensFollowWrites},
		{"SearchTokensInSharedTransactions", testSearchTokensInSharedTransactions},
		{"LookupPlans", testLookupPlans},
		{"ListRefusals", testListRefusals},
		{"UnknownResource", testUnknownResource},
		{"WriteValueTypes", testWriteValueTypes},
		{"ReferenceViolation", testReferenceViolation},
		{"TablesMatchDeclarations", testTablesMatchDeclarations},
		{"Audit", testAudit},
		{"AuditAlone", testAuditAlone},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			c.fn(t, newFixture(t, open))
		})
	}
}

// fixture is a fresh store with two customers, A and B.
type fixture struct {
	db                             store.Store
	catalog                        *schema.Catalog
	ctx                            context.Context
	pi, tenant, sub, org, addr     *schema.Resource
	custA, custB                   string
	base                           time.Time // a microsecond-precise time
	tenantCurrent, tenantFuture    *schema.Field
	piCurrent, tenantOrganization  *schema.Field
	orgParent, addressOrganization *schema.Field
}

func newFixture(t *testing.T, open Opener) *fixture {
	t.Helper()
	catalog := schema.New()
	f := &fixture{
		db:      open(t, catalog),
		catalog: catalog,
		ctx:     context.Background(),
		pi:      catalog.Resource(schema.ProtectedIdentity),
		sub:     catalog.Resource(schema.Subtenant),
		org:     catalog.Resource(schema.Organization),
		addr:    catalog.Resource(schema.Address),
		base:    time.Date(2024, 5, 6, 7, 8, 9, 123456000, time.UTC),
		custA:   uuid.NewString(),
		custB:   uuid.NewString(),
	}
	f.tenant = catalog.Resource(schema.Tenant)
	f.tenantCurrent = f.tenant.Field("current_registered_address")
	f.tenantFuture = f.tenant.Field("future_address")
	f.tenantOrganization = f.tenant.Field("organization")
	f.piCurrent = f.pi.Field("current_registered_address")
	f.orgParent = f.org.Field("organization")
	f.addressOrganization = f.addr.Field("organization")
	for _, id := range []string{f.custA, f.custB} {
		f.createCustomer(t, id)
	}
	return f
}

func (f *fixture) createCustomer(t *testing.T, id string) {
	t.Helper()
	if err := f.db.CreateCustomer(f.ctx, store.Customer{ID: id, Name: "Customer " + id[:8], CreatedAt: f.base}); err != nil {
		t.Fatalf("CreateCustomer: %v", err)
	}
}

func randomBytes(n int) []byte {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(err)
	}
	return b
}

// row builds a row of res: every clear column present (nil, or the
// field's default for booleans, a name for organizations, a country for
// addresses), then the given values. Sealed is random bytes, or nil for
// organizations, which have no personal fields.
func (f *fixture) row(res *schema.Resource, created time.Time, values map[string]any) store.Row {
	return NewRow(res, created, values)
}

// NewRow is a new row of res: its required columns set to made-up text,
// booleans to their defaults, values over those, and random bytes for
// sealed fields.
func NewRow(res *schema.Resource, created time.Time, values map[string]any) store.Row {
	r := store.Row{ID: uuid.NewString(), CreatedAt: created, Plain: map[string]any{}}
	for _, c := range store.Columns(res) {
		var v any
		switch {
		case !c.Index && c.Field.Type == schema.Bool:
			v = c.Field.Default
		case c.Field.Required:
			v = c.Field.Name + " " + r.ID[:8]
		}
		r.Plain[c.Name] = v
	}
	for k, v := range values {
		if _, ok := r.Plain[k]; !ok {
			panic("storetest: " + res.Name + " has no column " + k)
		}
		r.Plain[k] = v
	}
	if len(res.PersonalFields()) > 0 {
		r.Sealed = randomBytes(40)
	}
	if res.SearchIndexed() {
		r.Search = []int64{}
	}
	return r
}

// insert stores rows of res for a customer in one transaction.
func (f *fixture) insert(t *testing.T, customerID string, res *schema.Resource, rows ...store.Row) {
	t.Helper()
	err := f.db.Update(f.ctx, func(tx store.Tx) error {
		for i, r := range rows {
			if err := tx.Insert(f.ctx, customerID, res, r); err != nil {
				return fmt.Errorf("row %d: %w", i, err)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatalf("inserting %s rows: %v", res.Name, err)
	}
}

func (f *fixture) update(fn func(tx store.Tx) error) error { return f.db.Update(f.ctx, fn) }

// get reads a row both ways a store reads one, Tx.Get in a View and
// Store.Get outside a transaction, and fails the test unless they agree;
// so every case that reads a row holds both to the same answer.
func (f *fixture) get(t *testing.T, customerID string, res *schema.Resource, id string) (store.Row, error) {
	t.Helper()
	var row store.Row
	err := f.db.View(f.ctx, func(tx store.Tx) error {
		var err error
		row, err = tx.Get(f.ctx, customerID, res, id, store.Unlocked)
		return err
	})
	single, singleErr := f.db.Get(f.ctx, customerID, res, id)
	switch {
	case (err == nil) != (singleErr == nil) || errors.Is(err, store.ErrNotFound) != errors.Is(singleErr, store.ErrNotFound):
		t.Errorf("Get of a %s: in a View err = %v, outside a transaction err = %v", res.Name, err, singleErr)
	case err == nil:
		checkRow(t, "Store.Get beside Tx.Get of a "+res.Name, single, row)
	}
	return row, err
}

func (f *fixture) exists(t *testing.T, customerID string, res *schema.Resource, id string) bool {
	t.Helper()
	var ok bool
	err := f.db.View(f.ctx, func(tx store.Tx) error {
		var err error
		ok, err = tx.Exists(f.ctx, customerID, res, id)
		return err
	})
	if err != nil {
		t.Fatalf("Exists: %v", err)
	}
	return ok
}

// list returns the ids spec selects, in order.
func (f *fixture) list(t *testing.T, customerID string, res *schema.Resource, spec store.ListSpec) []string {
	t.Helper()
	var ids []string
	err := f.db.View(f.ctx, func(tx store.Tx) error {
		return tx.List(f.ctx, customerID, res, spec, func(r store.Row) error {
			ids = append(ids, r.ID)
			return nil
		})
	})
	if err != nil {
		t.Fatalf("List: %v", err)
	}
	return ids
}

func (f *fixture) count(t *testing.T, customerID string, res *schema.Resource, where []store.Condition) int {
	t.Helper()
	var n int
	err := f.db.View(f.ctx, func(tx store.Tx) error {
		var err error
		n, err = tx.Count(f.ctx, customerID, res, where)
		return err
	})
	if err != nil {
		t.Fatalf("Count: %v", err)
	}
	return n
}

func (f *fixture) version(t *testing.T, customerID string, res *schema.Resource) int64 {
	t.Helper()
	var v int64
	err := f.db.View(f.ctx, func(tx store.Tx) error {
		var err error
		v, err = tx.Version(f.ctx, customerID, res)
		return err
	})
	if err != nil {
		t.Fatalf("Version: %v", err)
	}
	// The store's own Version, outside a transaction, reads the same.
	outside, err := f.db.Version(f.ctx, customerID, res)
	if err != nil {
		t.Fatalf("Store.Version: %v", err)
	}
	if outside != v {
		t.Errorf("%s version outside a transaction = %d, inside one %d", res.Table, outside, v)
	}
	return v
}

// checkRow compares a stored row with what was written, exactly: the
// values' Go types included.
func checkRow(t *testing.T, what string, got, want store.Row) {
	t.Helper()
	if got.ID != want.ID {
		t.Errorf("%s: id differs", what)
	}
	wantCreated := want.CreatedAt.UTC().Truncate(time.Microsecond)
	if !got.CreatedAt.Equal(wantCreated) || got.CreatedAt.Location() != time.UTC {
		t.Errorf("%s: created_at = %v, want %v in UTC", what, got.CreatedAt, wantCreated)
	}
	if !reflect.DeepEqual(got.Plain, want.Plain) {
		t.Errorf("%s: clear columns = %s, want %s", what, describe(got.Plain), describe(want.Plain))
	}
	if !bytes.Equal(got.Sealed, want.Sealed) || (got.Sealed == nil) != (want.Sealed == nil) {
		t.Errorf("%s: sealed value differs (got %d bytes, nil %v; want %d bytes, nil %v)",
			what, len(got.Sealed), got.Sealed == nil, len(want.Sealed), want.Sealed == nil)
	}
}

// describe shows a row's clear columns as types and values; test rows hold
// no personal data.
func describe(m map[string]any) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	var b strings.Builder
	for _, k := range keys {
		fmt.Fprintf(&b, "%s=%T(%v) ", k, m[k], m[k])
	}
	return b.String()
}

func sameIDs(t *testing.T, what string, got, want []string) {
	t.Helper()
	if len(got) == 0 && len(want) == 0 {
		return
	}
	if !slices.Equal(got, want) {
		t.Errorf("%s: got ids %v, want %v", what, got, want)
	}
}

func sorted(ids ...string) []string {
	out := slices.Clone(ids)
	slices.Sort(out)
	return out
}

var errTest = errors.New("storetest: fn failed")

func testReady(t *testing.T, f *fixture) {
	if err := f.db.Ready(f.ctx); err != nil {
		t.Fatalf("Ready on a fresh store: %v", err)
	}
	// A write that does not finish committing (a stalled disk, here a
	// function that waits) makes the store not ready once it has taken
	// longer than store.WriteStall, and ready again once it has committed.
	release := make(chan struct{})
	held := make(chan error, 1)
	go func() {
		held <- f.update(func(tx store.Tx) error { <-release; return nil })
	}()
	time.Sleep(store.WriteStall + 300*time.Millisecond)
	err := f.db.Ready(f.ctx)
	close(release)
	if !errors.Is(err, store.ErrWritesStalled) {
		t.Errorf("Ready while a write has been committing for longer than %v: %v, want ErrWritesStalled", store.WriteStall, err)
	}
	if err := <-held; err != nil {
		t.Fatalf("the held write: %v", err)
	}
	if err := f.db.Ready(f.ctx); err != nil {
		t.Errorf("Ready once the held write has committed: %v", err)
	}
}

// people inserts an organization, an address of it and a tenant
// referencing both, for customer A.
func (f *fixture) people(t *testing.T) (org, addr, tenant store.Row) {
	t.Helper()
	org = f.row(f.org, f.base, map[string]any{"name": "Org One"})
	addr = f.row(f.addr, f.base.Add(time.Second), map[string]any{
		"country": "SE", "custom_id": "addr-1", "organization_id": org.ID,
	})
	tenant = f.row(f.tenant, time.Date(2024, 5, 6, 7, 8, 10, 987654321, time.UTC), map[string]any{
		"ssn_bidx":                      randomBytes(32),
		"phone_number_bidx":             randomBytes(32),
		"custom_id":                     "t-1",
		"organization_id":               org.ID,
		"current_registered_address_id": addr.ID,
		"ssn_is_coordination_number":    true,
	})
	f.insert(t, f.custA, f.org, org)
	f.insert(t, f.custA, f.addr, addr)
	f.insert(t, f.custA, f.tenant, tenant)
	return org, addr, tenant
}

func testInsertGet(t *testing.T, f *fixture) {
	org, addr, tenant := f.people(t)
	sub := f.row(f.sub, f.base, map[string]any{"is_active": false, "email_bidx": randomBytes(32)})
	pi := f.row(f.pi, f.base, map[string]any{"sub_tenant_id": sub.ID, "previous_address_id": addr.ID})
	f.insert(t, f.custA, f.sub, sub)
	f.insert(t, f.custA, f.pi, pi)
	for _, c := range []struct {
		res *schema.Resource
		row store.Row
	}{{f.org, org}, {f.addr, addr}, {f.tenant, tenant}, {f.sub, sub}, {f.pi, pi}} {
		got, err := f.get(t, f.custA, c.res, c.row.ID)
		if err != nil {
			t.Fatalf("Get %s: %v", c.res.Name, err)
		}
		checkRow(t, "Get "+c.res.Name, got, c.row)
		if !f.exists(t, f.custA, c.res, c.row.ID) {
			t.Errorf("Exists %s = false, want true", c.res.Name)
		}
		// A write transaction reads the same.
		err = f.update(func(tx store.Tx) error {
			got, err := tx.Get(f.ctx, f.custA, c.res, c.row.ID, store.ForUpdate)
			if err != nil {
				return err
			}
			checkRow(t, "Get in Update "+c.res.Name, got, c.row)
			return nil
		})
		if err != nil {
			t.Fatalf("Get %s in Update: %v", c.res.Name, err)
		}
	}
	missing := uuid.NewString()
	if _, err := f.get(t, f.custA, f.tenant, missing); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("Get of a missing id: err = %v, want store.ErrNotFound", err)
	}
	if f.exists(t, f.custA, f.tenant, missing) {
		t.Error("Exists of a missing id = true")
	}
	if f.exists(t, f.custA, f.addr, tenant.ID) {
		t.Error("Exists of a tenant id among addresses = true")
	}
}

func testUpdate(t *testing.T, f *fixture) {
	_, _, tenant := f.people(t)
	changed := tenant
	changed.CreatedAt = f.base.Add(time.Hour) // Update keeps created_at
	changed.Plain = map[string]any{}
	for k, v := range tenant.Plain {
		changed.Plain[k] = v
	}
	changed.Plain["custom_id"] = nil
	changed.Plain["organization_id"] = nil
	changed.Plain["ssn_is_coordination_number"] = false
	changed.Plain["email_bidx"] = randomBytes(32)
	changed.Plain["ssn_bidx"] = nil
	changed.Sealed = randomBytes(50)
	if err := f.update(func(tx store.Tx) error { return tx.Update(f.ctx, f.custA, f.tenant, changed) }); err != nil {
		t.Fatalf("Update: %v", err)
	}
	got, err := f.get(t, f.custA, f.tenant, tenant.ID)
	if err != nil {
		t.Fatalf("Get after Update: %v", err)
	}
	want := changed
	want.CreatedAt = tenant.CreatedAt
	checkRow(t, "after Update", got, want)

	missing := f.row(f.tenant, f.base, nil)
	err = f.update(func(tx store.Tx) error { return tx.Update(f.ctx, f.custA, f.tenant, missing) })
	if !errors.Is(err, store.ErrNotFound) {
		t.Errorf("Update of a missing row: err = %v, want store.ErrNotFound", err)
	}
	if f.exists(t, f.custA, f.tenant, missing.ID) {
		t.Error("Update of a missing row created it")
	}
}

func testDelete(t *testing.T, f *fixture) {
	_, _, tenant := f.people(t)
	if err := f.update(func(tx store.Tx) error { return tx.Delete(f.ctx, f.custA, f.tenant, tenant.ID) }); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	if _, err := f.get(t, f.custA, f.tenant, tenant.ID); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("Get after Delete: err = %v, want store.ErrNotFound", err)
	}
	if f.exists(t, f.custA, f.tenant, tenant.ID) {
		t.Error("Exists after Delete = true")
	}
	err := f.update(func(tx store.Tx) error { return tx.Delete(f.ctx, f.custA, f.tenant, tenant.ID) })
	if !errors.Is(err, store.ErrNotFound) {
		t.Errorf("second Delete: err = %v, want store.ErrNotFound", err)
	}
}

func testRollback(t *testing.T, f *fixture) {
	org, _, tenant := f.people(t)
	fresh := f.row(f.tenant, f.base, nil)
	err := f.update(func(tx store.Tx) error {
		if err := tx.Insert(f.ctx, f.custA, f.tenant, fresh); err != nil {
			return err
		}
		if err := tx.Delete(f.ctx, f.custA, f.tenant, tenant.ID); err != nil {
			return err
		}
		changed := org
		changed.Plain = map[string]any{"name": "renamed", "organization_id": nil, "custom_id": "x"}
		if err := tx.Update(f.ctx, f.custA, f.org, changed); err != nil {
			return err
		}
		return fmt.Errorf("wrapped: %w", errTest)
	})
	if !errors.Is(err, errTest) {
		t.Fatalf("Update returned %v, want fn's error", err)
	}
	if f.exists(t, f.custA, f.tenant, fresh.ID) {
		t.Error("insert of a failed transaction is visible")
	}
	if !f.exists(t, f.custA, f.tenant, tenant.ID) {
		t.Error("delete of a failed transaction took effect")
	}
	if got, err := f.get(t, f.custA, f.org, org.ID); err != nil {
		t.Errorf("Get organization: %v", err)
	} else {
		checkRow(t, "organization updated by a failed transaction", got, org)
	}
	if v := f.version(t, f.custA, f.tenant); v != 1 {
		t.Errorf("tenants version after one committed and one failed transaction = %d, want 1", v)
	}
}

func testCustomerScope(t *testing.T, f *fixture) {
	_, addr, tenant := f.people(t)
	a, b := f.custA, f.custB
	if _, err := f.get(t, b, f.tenant, tenant.ID); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("Get by another customer: err = %v, want store.ErrNotFound", err)
	}
	if f.exists(t, b, f.tenant, tenant.ID) {
		t.Error("Exists by another customer = true")
	}
	if ids := f.list(t, b, f.tenant, store.ListSpec{}); len(ids) != 0 {
		t.Errorf("List by another customer returned %d rows", len(ids))
	}
	if n := f.count(t, b, f.tenant, nil); n != 0 {
		t.Errorf("Count by another customer = %d", n)
	}
	other := tenant
	other.Sealed = randomBytes(10)
	if err := f.update(func(tx store.Tx) error { return tx.Update(f.ctx, b, f.tenant, other) }); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("Update by another customer: err = %v, want store.ErrNotFound", err)
	}
	if err := f.update(func(tx store.Tx) error { return tx.Delete(f.ctx, b, f.tenant, tenant.ID) }); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("Delete by another customer: err = %v, want store.ErrNotFound", err)
	}
	err := f.update(func(tx store.Tx) error {
		ids, err := tx.Referencing(f.ctx, b, f.tenant, f.tenantCurrent, addr.ID)
		if len(ids) != 0 {
			t.Errorf("Referencing by another customer returned %d ids", len(ids))
		}
		if err != nil {
			return err
		}
		return tx.ClearReferences(f.ctx, b, f.tenant, f.tenantCurrent, addr.ID)
	})
	if err != nil {
		t.Fatalf("Referencing/ClearReferences by another customer: %v", err)
	}
	got, err := f.get(t, a, f.tenant, tenant.ID)
	if err != nil {
		t.Fatalf("Get by the owner: %v", err)
	}
	checkRow(t, "row after another customer's writes", got, tenant)
	if v := f.version(t, a, f.tenant); v != 1 {
		t.Errorf("customer A's tenants version = %d after B's writes, want 1", v)
	}
	if v := f.version(t, b, f.addr); v != 0 {
		t.Errorf("customer B's addresses version = %d after A's writes, want 0", v)
	}

	// The same id may exist for two customers; each sees its own.
	twin := f.row(f.tenant, f.base, map[string]any{"custom_id": "twin"})
	twin.ID = tenant.ID
	f.insert(t, b, f.tenant, twin)
	if got, err := f.get(t, b, f.tenant, tenant.ID); err != nil {
		t.Errorf("Get of B's twin: %v", err)
	} else {
		checkRow(t, "B's twin", got, twin)
	}
	if got, err := f.get(t, a, f.tenant, tenant.ID); err != nil {
		t.Errorf("Get of A's row: %v", err)
	} else {
		checkRow(t, "A's row beside B's twin", got, tenant)
	}
	if v := f.version(t, a, f.tenant); v != 1 {
		t.Errorf("customer A's tenants version = %d after B's insert, want 1", v)
	}
}

func wantUnique(t *testing.T, what string, err error, column string, values ...string) {
	t.Helper()
	var v *store.UniqueViolation
	wantViolation(t, what, err, &v, func() string { return v.Column }, column, values...)
}

func wantReference(t *testing.T, what string, err error, column string, values ...string) {
	t.Helper()
	var v *store.ReferenceViolation
	wantViolation(t, what, err, &v, func() string { return v.Column }, column, values...)
}

// wantViolation checks that err is a violation of target's type on column,
// quoting none of the values.
func wantViolation(t *testing.T, what string, err error, target any, got func() string, column string, values ...string) {
	t.Helper()
	if !errors.As(err, target) {
		t.Errorf("%s: err = %v, want %v", what, err, reflect.TypeOf(target).Elem())
		return
	}
	if c := got(); c != column {
		t.Errorf("%s: violation on column %q, want %q", what, c, column)
	}
	noValues(t, what, err, values...)
}

// noValues checks that an error message quotes none of the values.
func noValues(t *testing.T, what string, err error, values ...string) {
	t.Helper()
	for i, v := range values {
		if strings.Contains(err.Error(), v) {
			t.Errorf("%s: the error message quotes value %d", what, i)
		}
	}
}

func testUnique(t *testing.T, f *fixture) {
	tenant := f.row(f.tenant, f.base, nil)
	sub := f.row(f.sub, f.base, nil)
	f.insert(t, f.custA, f.tenant, tenant)
	f.insert(t, f.custA, f.sub, sub)
	f.insert(t, f.custA, f.pi, f.row(f.pi, f.base, map[string]any{"tenant_id": tenant.ID}))
	f.insert(t, f.custA, f.pi, f.row(f.pi, f.base, map[string]any{"sub_tenant_id": sub.ID}))

	insert := func(customerID string, res *schema.Resource, row store.Row) error {
		return f.update(func(tx store.Tx) error { return tx.Insert(f.ctx, customerID, res, row) })
	}
	err := insert(f.custA, f.pi, f.row(f.pi, f.base, map[string]any{"tenant_id": tenant.ID}))
	wantUnique(t, "second protected identity of a tenant", err, "tenant_id", tenant.ID)
	err = insert(f.custA, f.pi, f.row(f.pi, f.base, map[string]any{"sub_tenant_id": sub.ID}))
	wantUnique(t, "second protected identity of a subtenant", err, "sub_tenant_id", sub.ID)
	if n := f.count(t, f.custA, f.pi, nil); n != 2 {
		t.Errorf("protected identities after violations = %d, want 2", n)
	}

	one := f.row(f.org, f.base, map[string]any{"name": "Acme Fastigheter"})
	two := f.row(f.org, f.base, map[string]any{"name": "Bolaget Två"})
	f.insert(t, f.custA, f.org, one, two)
	err = insert(f.custA, f.org, f.row(f.org, f.base, map[string]any{"name": "Acme Fastigheter"}))
	wantUnique(t, "insert of a taken organization name", err, "name", "Acme")
	renamed := two
	renamed.Plain = map[string]any{"name": "Acme Fastigheter", "organization_id": nil, "custom_id": nil}
	err = f.update(func(tx store.Tx) error { return tx.Update(f.ctx, f.custA, f.org, renamed) })
	wantUnique(t, "update to a taken organization name", err, "name", "Acme")
	if got, err := f.get(t, f.custA, f.org, two.ID); err != nil || got.Plain["name"] != "Bolaget Två" {
		t.Errorf("organization renamed by a failed update (err %v)", err)
	}
	// Names are unique per customer only.
	if err := insert(f.custB, f.org, f.row(f.org, f.base, map[string]any{"name": "Acme Fastigheter"})); err != nil {
		t.Errorf("another customer's organization of the same name: %v", err)
	}
	// Names compare exactly.
	if err := insert(f.custA, f.org, f.row(f.org, f.base, map[string]any{"name": "acme fastigheter"})); err != nil {
		t.Errorf("a name differing in case only: %v", err)
	}

	dup := f.row(f.tenant, f.base, nil)
	dup.ID = tenant.ID
	wantUnique(t, "duplicate id", insert(f.custA, f.tenant, dup), "id", tenant.ID)
}

func testConstraints(t *testing.T, f *fixture) {
	insert := func(customerID string, res *schema.Resource, row store.Row) error {
		return f.update(func(tx store.Tx) error { return tx.Insert(f.ctx, customerID, res, row) })
	}
	// References are testReferenceViolation's.
	if err := insert(f.custA, f.pi, f.row(f.pi, f.base, nil)); err == nil {
		t.Error("protected identity with neither tenant nor subtenant was stored")
	}
	tenant, sub := f.row(f.tenant, f.base, nil), f.row(f.sub, f.base, nil)
	f.insert(t, f.custA, f.tenant, tenant)
	f.insert(t, f.custA, f.sub, sub)
	both := f.row(f.pi, f.base, map[string]any{"tenant_id": tenant.ID, "sub_tenant_id": sub.ID})
	if err := insert(f.custA, f.pi, both); err == nil {
		t.Error("protected identity with both tenant and subtenant was stored")
	}
	if n := f.count(t, f.custA, f.pi, nil); n != 0 {
		t.Errorf("%d protected identities stored by failed inserts", n)
	}
}

// listRows inserts five tenants of customer A with varied clear columns,
// one tenant of B, and returns A's.
func (f *fixture) listRows(t *testing.T) []store.Row {
	t.Helper()
	o1, o2 := f.row(f.org, f.base, nil), f.row(f.org, f.base, nil)
	f.insert(t, f.custA, f.org, o1, o2)
	h1 := append([]byte{0x10}, randomBytes(31)...)
	h2 := append([]byte{0xf0}, randomBytes(31)...)
	at := func(s int) time.Time { return f.base.Add(time.Duration(s) * time.Second) }
	rows := []store.Row{
		f.row(f.tenant, at(0), nil),
		f.row(f.tenant, at(1), map[string]any{"custom_id": "a", "ssn_is_coordination_number": true, "ssn_bidx": h1, "organization_id": o1.ID}),
		f.row(f.tenant, at(2), map[string]any{"custom_id": "b", "ssn_bidx": h2, "organization_id": o2.ID}),
		f.row(f.tenant, at(3), map[string]any{"custom_id": "c", "ssn_is_coordination_number": true, "ssn_bidx": h1, "organization_id": o1.ID}),
		f.row(f.tenant, at(4), map[string]any{"custom_id": "B"}),
	}
	// Insert out of order, so no order comes from insertion.
	f.insert(t, f.custA, f.tenant, rows[3], rows[0], rows[4], rows[1], rows[2])
	f.insert(t, f.custB, f.tenant, f.row(f.tenant, at(1), map[string]any{"custom_id": "a", "ssn_bidx": h1}))
	return rows
}

// manyHashes is n values for a list of bytes, random but for the last,
// which is last.
func manyHashes(n int, last any) []any {
	out := make([]any, n)
	for i := range out[:n-1] {
		out[i] = randomBytes(32)
	}
	out[n-1] = last
	return out
}

func ids(rows []store.Row, idx ...int) []string {
	out := make([]string, len(idx))
	for i, j := range idx {
		out[i] = rows[j].ID
	}
	return out
}

func testListConditions(t *testing.T, f *fixture) {
	rows := f.listRows(t)
	at := func(s int) string { return f.base.Add(time.Duration(s) * time.Second).Format(store.TimeLayout) }
	h1 := rows[1].Plain["ssn_bidx"]
	h2 := rows[2].Plain["ssn_bidx"]
	o1 := rows[1].Plain["organization_id"]
	cond := func(col string, op store.CondOp, negate bool, values ...any) store.Condition {
		return store.Condition{Column: col, Op: op, Negate: negate, Values: values}
	}
	cases := []struct {
		name  string
		where []store.Condition
		want  []int
	}{
		{"none", nil, []int{0, 1, 2, 3, 4}},
		{"eq text", []store.Condition{cond("custom_id", store.Eq, false, "a")}, []int{1}},
		{"eq text is exact", []store.Condition{cond("custom_id", store.Eq, false, "A")}, nil},
		{"not eq text keeps null", []store.Condition{cond("custom_id", store.Eq, true, "a")}, []int{0, 2, 3, 4}},
		{"in text", []store.Condition{cond("custom_id", store.In, false, "a", "c", "zz")}, []int{1, 3}},
		{"not in text keeps null", []store.Condition{cond("custom_id", store.In, true, "a", "c", "zz")}, []int{0, 2, 4}},
		{"is null", []store.Condition{cond("custom_id", store.IsNull, false, true)}, []int{0}},
		{"is not null", []store.Condition{cond("custom_id", store.IsNull, false, false)}, []int{1, 2, 3, 4}},
		{"negated is null", []store.Condition{cond("custom_id", store.IsNull, true, true)}, []int{1, 2, 3, 4}},
		{"negated is not null", []store.Condition{cond("custom_id", store.IsNull, true, false)}, []int{0}},
		// Text compares bytewise: "B" < "a".
		{"gt text", []store.Condition{cond("custom_id", store.GT, false, "a")}, []int{2, 3}},
		{"gte text", []store.Condition{cond("custom_id", store.GTE, false, "b")}, []int{2, 3}},
		{"lt text", []store.Condition{cond("custom_id", store.LT, false, "b")}, []int{1, 4}},
		{"lte text", []store.Condition{cond("custom_id", store.LTE, false, "B")}, []int{4}},
		{"not gt text keeps null", []store.Condition{cond("custom_id", store.GT, true, "a")}, []int{0, 1, 4}},
		{"eq bool", []store.Condition{cond("ssn_is_coordination_number", store.Eq, false, true)}, []int{1, 3}},
		{"not eq bool", []store.Condition{cond("ssn_is_coordination_number", store.Eq, true, false)}, []int{1, 3}},
		{"in bool", []store.Condition{cond("ssn_is_coordination_number", store.In, false, false)}, []int{0, 2, 4}},
		{"eq bytes", []store.Condition{cond("ssn_bidx", store.Eq, false, h1)}, []int{1, 3}},
		{"in bytes", []store.Condition{cond("ssn_bidx", store.In, false, h2, randomBytes(32))}, []int{2}},
		{"not in bytes keeps null", []store.Condition{cond("ssn_bidx", store.In, true, h2, randomBytes(32))}, []int{0, 1, 3, 4}},
		// A lookup's hashes, of each value under every index key held in
		// two forms, can be more than an engine's parameters in one
		// statement (SQLite: 32,766): they were a 500 after three
		// rotations.
		{"in 40,000 bytes", []store.Condition{cond("ssn_bidx", store.In, false, manyHashes(40000, h1)...)}, []int{1, 3}},
		{"not in 40,000 bytes", []store.Condition{cond("ssn_bidx", store.In, true, manyHashes(40000, h1)...)}, []int{0, 2, 4}},
		{"not eq bytes keeps null", []store.Condition{cond("ssn_bidx", store.Eq, true, h1)}, []int{0, 2, 4}},
		{"bytes is null", []store.Condition{cond("ssn_bidx", store.IsNull, false, true)}, []int{0, 4}},
		{"eq reference", []store.Condition{cond("organization_id", store.Eq, false, o1)}, []int{1, 3}},
		{"not eq reference keeps null", []store.Condition{cond("organization_id", store.Eq, true, o1)}, []int{0, 2, 4}},
		{"eq id", []store.Condition{cond("id", store.Eq, false, rows[2].ID)}, []int{2}},
		{"in id", []store.Condition{cond("id", store.In, false, rows[0].ID, rows[3].ID, uuid.NewString())}, []int{0, 3}},
		{"not in id", []store.Condition{cond("id", store.In, true, rows[0].ID, rows[3].ID)}, []int{1, 2, 4}},
		{"eq created_at", []store.Condition{cond("created_at", store.Eq, false, at(3))}, []int{3}},
		{"gte created_at", []store.Condition{cond("created_at", store.GTE, false, at(2))}, []int{2, 3, 4}},
		{"gt created_at", []store.Condition{cond("created_at", store.GT, false, at(2))}, []int{3, 4}},
		{"lt created_at", []store.Condition{cond("created_at", store.LT, false, at(1))}, []int{0}},
		{"lte created_at", []store.Condition{cond("created_at", store.LTE, false, at(1))}, []int{0, 1}},
		{"in created_at", []store.Condition{cond("created_at", store.In, false, at(0), at(4))}, []int{0, 4}},
		{"not gt created_at", []store.Condition{cond("created_at", store.GT, true, at(2))}, []int{0, 1, 2}},
		{"created_at is not null", []store.Condition{cond("created_at", store.IsNull, false, false)}, []int{0, 1, 2, 3, 4}},
		{"and", []store.Condition{
			cond("ssn_is_coordination_number", store.Eq, false, true),
			cond("custom_id", store.GT, false, "a"),
		}, []int{3}},
		{"and with nothing", []store.Condition{
			cond("custom_id", store.IsNull, false, true),
			cond("ssn_bidx", store.IsNull, false, false),
		}, nil},
	}
	for _, c := range cases {
		want := sorted(ids(rows, c.want...)...)
		got := f.list(t, f.custA, f.tenant, store.ListSpec{Where: c.where})
		sameIDs(t, "List "+c.name, sorted(got...), want)
		if n := f.count(t, f.custA, f.tenant, c.where); n != len(want) {
			t.Errorf("Count %s = %d, want %d", c.name, n, len(want))
		}
	}
}

func testListOrder(t *testing.T, f *fixture) {
	rows := f.listRows(t)
	byID := func(idx ...int) []string { return sorted(ids(rows, idx...)...) }
	asc := func(col string) store.OrderBy { return store.OrderBy{Column: col} }
	desc := func(col string) store.OrderBy { return store.OrderBy{Column: col, Desc: true} }
	cases := []struct {
		name string
		spec store.ListSpec
		want []string
	}{
		{"text ascending, nulls first, bytewise", store.ListSpec{Order: []store.OrderBy{asc("custom_id")}}, ids(rows, 0, 4, 1, 2, 3)},
		{"text descending, nulls last", store.ListSpec{Order: []store.OrderBy{desc("custom_id")}}, ids(rows, 3, 2, 1, 4, 0)},
		{"created_at ascending", store.ListSpec{Order: []store.OrderBy{asc("created_at")}}, ids(rows, 0, 1, 2, 3, 4)},
		{"created_at descending", store.ListSpec{Order: []store.OrderBy{desc("created_at")}}, ids(rows, 4, 3, 2, 1, 0)},
		{"bool descending then created_at", store.ListSpec{Order: []store.OrderBy{desc("ssn_is_coordination_number"), asc("created_at")}}, ids(rows, 1, 3, 0, 2, 4)},
		{"bool ascending then created_at descending", store.ListSpec{Order: []store.OrderBy{asc("ssn_is_coordination_number"), desc("created_at")}}, ids(rows, 4, 2, 0, 3, 1)},
		{"bytes ascending, nulls first, unsigned", store.ListSpec{Order: []store.OrderBy{asc("ssn_bidx"), asc("id")}},
			slices.Concat(byID(0, 4), byID(1, 3), ids(rows, 2))},
		{"bytes descending, nulls last", store.ListSpec{Order: []store.OrderBy{desc("ssn_bidx"), desc("id")}},
			slices.Concat(ids(rows, 2), reversed(byID(1, 3)), reversed(byID(0, 4)))},
		{"id", store.ListSpec{Order: []store.OrderBy{asc("id")}}, byID(0, 1, 2, 3, 4)},
		{"filtered and ordered", store.ListSpec{
			Where: []store.Condition{{Column: "custom_id", Op: store.IsNull, Values: []any{false}}},
			Order: []store.OrderBy{desc("created_at")},
		}, ids(rows, 4, 3, 2, 1)},
	}
	for _, c := range cases {
		sameIDs(t, "List ordered by "+c.name, f.list(t, f.custA, f.tenant, c.spec), c.want)
	}
}

func reversed(s []string) []string {
	out := slices.Clone(s)
	slices.Reverse(out)
	return out
}

func testListPaging(t *testing.T, f *fixture) {
	rows := f.listRows(t)
	order := []store.OrderBy{{Column: "created_at"}}
	cases := []struct {
		limit, offset int
		want          []int
	}{
		{0, 0, []int{0, 1, 2, 3, 4}},
		{2, 0, []int{0, 1}},
		{2, 2, []int{2, 3}},
		{2, 4, []int{4}},
		{10, 1, []int{1, 2, 3, 4}},
		{3, 5, nil},
		{10, 100, nil},
	}
	for _, c := range cases {
		got := f.list(t, f.custA, f.tenant, store.ListSpec{Order: order, Limit: c.limit, Offset: c.offset})
		sameIDs(t, fmt.Sprintf("List limit %d offset %d", c.limit, c.offset), got, ids(rows, c.want...))
	}
	where := []store.Condition{{Column: "ssn_is_coordination_number", Op: store.Eq, Values: []any{false}}}
	got := f.list(t, f.custA, f.tenant, store.ListSpec{Where: where, Order: order, Limit: 1, Offset: 1})
	sameIDs(t, "filtered page", got, ids(rows, 2))
}

// ListSpec: "Limit is the most rows returned (0: all); Offset skips rows
// first." An offset applies without a limit too.
func testListOffsetWithoutLimit(t *testing.T, f *fixture) {
	rows := f.listRows(t)
	got := f.list(t, f.custA, f.tenant, store.ListSpec{Order: []store.OrderBy{{Column: "created_at"}}, Offset: 2})
	sameIDs(t, "List offset 2 without limit", got, ids(rows, 2, 3, 4))
}

// An unpaged list yields every row in order however many there are (the
// PostgreSQL store fetches them in batches of growing size), and one
// stopped halfway leaves the transaction usable.
func testListStreamsManyRows(t *testing.T, f *fixture) {
	const n = 1500
	rows := make([]store.Row, n)
	for i := range rows {
		rows[i] = f.row(f.tenant, f.base, nil)
	}
	f.insert(t, f.custA, f.tenant, rows...)
	want := sorted(ids(rows, func() []int {
		idx := make([]int, n)
		for i := range idx {
			idx[i] = i
		}
		return idx
	}()...)...)
	sameIDs(t, "every row, by id", f.list(t, f.custA, f.tenant, store.ListSpec{Order: []store.OrderBy{{Column: "id"}}}), want)
	err := f.db.View(f.ctx, func(tx store.Tx) error {
		taken := 0
		err := tx.List(f.ctx, f.custA, f.tenant, store.ListSpec{Order: []store.OrderBy{{Column: "id"}}}, func(store.Row) error {
			taken++
			if taken == 700 {
				return errTest
			}
			return nil
		})
		if !errors.Is(err, errTest) {
			t.Errorf("List stopped at row 700 returned %v, want fn's error", err)
		}
		var again []string
		err = tx.List(f.ctx, f.custA, f.tenant, store.ListSpec{Order: []store.OrderBy{{Column: "id", Desc: true}}}, func(r store.Row) error {
			again = append(again, r.ID)
			return nil
		})
		if err != nil {
			return err
		}
		if len(again) != n || again[0] != want[n-1] {
			t.Errorf("a list after a stopped one: %d rows", len(again))
		}
		return nil
	})
	if err != nil {
		t.Fatalf("View: %v", err)
	}
}

func testListStops(t *testing.T, f *fixture) {
	f.listRows(t)
	calls := 0
	err := f.db.View(f.ctx, func(tx store.Tx) error {
		err := tx.List(f.ctx, f.custA, f.tenant, store.ListSpec{Order: []store.OrderBy{{Column: "id"}}}, func(store.Row) error {
			calls++
			if calls == 2 {
				return errTest
			}
			return nil
		})
		if !errors.Is(err, errTest) {
			t.Errorf("List returned %v, want fn's error", err)
		}
		// The transaction goes on.
		n, err := tx.Count(f.ctx, f.custA, f.tenant, nil)
		if err != nil {
			return err
		}
		if n != 5 {
			t.Errorf("Count after a stopped List = %d, want 5", n)
		}
		return nil
	})
	if err != nil {
		t.Fatalf("View: %v", err)
	}
	if calls != 2 {
		t.Errorf("fn called %d times after returning an error on call 2", calls)
	}
}

func testVersions(t *testing.T, f *fixture) {
	a := f.custA
	since := func(v int64) []string {
		return sorted(f.list(t, a, f.tenant, store.ListSpec{Since: v})...)
	}
	wantVersion := func(what string, res *schema.Resource, want int64) {
		t.Helper()
		if v := f.version(t, a, res); v != want {
			t.Errorf("%s: %s version = %d, want %d", what, res.Table, v, want)
		}
	}
	wantVersion("fresh", f.tenant, 0)

	r1, r2, r3 := f.row(f.tenant, f.base, nil), f.row(f.tenant, f.base, nil), f.row(f.tenant, f.base, nil)
	err := f.update(func(tx store.Tx) error {
		for _, r := range []store.Row{r1, r2} {
			if err := tx.Insert(f.ctx, a, f.tenant, r); err != nil {
				return err
			}
		}
		// The transaction sees its own bump.
		if v, err := tx.Version(f.ctx, a, f.tenant); err != nil || v != 1 {
			t.Errorf("Version inside the writing transaction = %d (err %v), want 1", v, err)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	wantVersion("after one transaction of two inserts", f.tenant, 1)
	sameIDs(t, "since 0", since(0), sorted(r1.ID, r2.ID))
	sameIDs(t, "since 1", since(1), nil)

	err = f.update(func(tx store.Tx) error {
		changed := r1
		changed.Sealed = randomBytes(8)
		if err := tx.Update(f.ctx, a, f.tenant, changed); err != nil {
			return err
		}
		if err := tx.Update(f.ctx, a, f.tenant, changed); err != nil {
			return err
		}
		return tx.Insert(f.ctx, a, f.tenant, r3)
	})
	if err != nil {
		t.Fatal(err)
	}
	wantVersion("after updates and an insert in one transaction", f.tenant, 2)
	sameIDs(t, "since 1 after update", since(1), sorted(r1.ID, r3.ID))
	sameIDs(t, "since 2", since(2), nil)

	if err := f.update(func(tx store.Tx) error { return tx.Delete(f.ctx, a, f.tenant, r2.ID) }); err != nil {
		t.Fatal(err)
	}
	wantVersion("after a delete", f.tenant, 3)
	sameIDs(t, "since 2 after delete", since(2), nil)
	sameIDs(t, "since 0 after delete", since(0), sorted(r1.ID, r3.ID))
	wantVersion("addresses untouched", f.addr, 0)
	if v := f.version(t, f.custB, f.tenant); v != 0 {
		t.Errorf("customer B's tenants version = %d, want 0", v)
	}

	// Two tables in one transaction: each bumps once.
	addr := f.row(f.addr, f.base, nil)
	err = f.update(func(tx store.Tx) error {
		if err := tx.Insert(f.ctx, a, f.addr, addr); err != nil {
			return err
		}
		changed := r3
		changed.Plain = map[string]any{}
		for k, v := range r3.Plain {
			changed.Plain[k] = v
		}
		changed.Plain["current_registered_address_id"] = addr.ID
		return tx.Update(f.ctx, a, f.tenant, changed)
	})
	if err != nil {
		t.Fatal(err)
	}
	wantVersion("two tables", f.tenant, 4)
	wantVersion("two tables", f.addr, 1)
	sameIDs(t, "since 3", since(3), []string{r3.ID})

	// A failed transaction bumps nothing.
	err = f.update(func(tx store.Tx) error {
		if err := tx.Insert(f.ctx, a, f.tenant, f.row(f.tenant, f.base, nil)); err != nil {
			return err
		}
		return errTest
	})
	if !errors.Is(err, errTest) {
		t.Fatalf("Update returned %v, want fn's error", err)
	}
	wantVersion("after a failed transaction", f.tenant, 4)

	// Clearing references bumps and stamps the cleared rows.
	err = f.update(func(tx store.Tx) error {
		return tx.ClearReferences(f.ctx, a, f.tenant, f.tenantCurrent, addr.ID)
	})
	if err != nil {
		t.Fatal(err)
	}
	wantVersion("after ClearReferences", f.tenant, 5)
	sameIDs(t, "since 4 after ClearReferences", since(4), []string{r3.ID})
}

// testVersionsConcurrent commits transactions from several goroutines
// while a reader does what the list cache does: it reads a version and the
// rows of that snapshot, then, later, the rows written since that version.
// Those two must together hold every row of the later snapshot, however
// the store orders, batches or shares the writers' transactions: a row
// committed after the version was read must carry a version above it.
func testVersionsConcurrent(t *testing.T, f *fixture) {
	const workers, perWorker = 8, 4
	var wg sync.WaitGroup
	errs := make(chan error, workers*perWorker)
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < perWorker; i++ {
				r := f.row(f.tenant, f.base, nil)
				errs <- f.update(func(tx store.Tx) error { return tx.Insert(f.ctx, f.custA, f.tenant, r) })
			}
		}()
	}
	writersDone := make(chan struct{})
	go func() {
		wg.Wait()
		close(writersDone)
	}()
	for reading := true; reading; {
		select {
		case <-writersDone:
			reading = false
		default:
		}
		var v int64
		var cached []string
		err := f.db.View(f.ctx, func(tx store.Tx) error {
			var err error
			if v, err = tx.Version(f.ctx, f.custA, f.tenant); err != nil {
				return err
			}
			return tx.List(f.ctx, f.custA, f.tenant, store.ListSpec{}, func(r store.Row) error {
				cached = append(cached, r.ID)
				return nil
			})
		})
		if err != nil {
			t.Fatalf("reading a version and its rows: %v", err)
		}
		var since, all []string
		err = f.db.View(f.ctx, func(tx store.Tx) error {
			collect := func(spec store.ListSpec, ids *[]string) error {
				return tx.List(f.ctx, f.custA, f.tenant, spec, func(r store.Row) error {
					*ids = append(*ids, r.ID)
					return nil
				})
			}
			if err := collect(store.ListSpec{Since: v}, &since); err != nil {
				return err
			}
			return collect(store.ListSpec{}, &all)
		})
		if err != nil {
			t.Fatalf("reading the rows since a version: %v", err)
		}
		known := map[string]bool{}
		for _, id := range append(cached, since...) {
			known[id] = true
		}
		for _, id := range all {
			if !known[id] {
				t.Fatalf("a row committed after version %d was read is not among the rows since it", v)
			}
		}
	}
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatalf("concurrent insert: %v", err)
		}
	}
	const total = workers * perWorker
	v := f.version(t, f.custA, f.tenant)
	if v < 1 || v > total {
		t.Fatalf("version after %d committed writes = %d, want 1 to %d", total, v, total)
	}
	if n := len(f.list(t, f.custA, f.tenant, store.ListSpec{})); n != total {
		t.Errorf("rows = %d, want %d", n, total)
	}
	if n := len(f.list(t, f.custA, f.tenant, store.ListSpec{Since: v})); n != 0 {
		t.Errorf("rows since the last version = %d, want 0", n)
	}
}

// holdWriter starts an Update that holds the writer for a while, and
// returns once it has begun: the Updates started meanwhile gather behind it
// and share the next transaction. wg waits for it too.
func (f *fixture) holdWriter(t *testing.T, wg *sync.WaitGroup) {
	started := make(chan struct{})
	wg.Go(func() {
		err := f.update(func(tx store.Tx) error {
			close(started)
			time.Sleep(100 * time.Millisecond)
			return nil
		})
		if err != nil {
			t.Errorf("the slow Update: %v", err)
		}
	})
	<-started
}

// testConcurrentUpdatesFailAlone runs Updates at once, behind a slow one
// so that they gather (the stores share transactions between concurrent
// Updates): each gets its own outcome, and the writes of the failing ones
// are undone without undoing their neighbours'.
func testConcurrentUpdatesFailAlone(t *testing.T, f *fixture) {
	a := f.custA
	const n = 24
	rows := make([]store.Row, n)
	for i := range rows {
		name := fmt.Sprintf("org-%d", i)
		if i%3 == 1 {
			name = "one name for all"
		}
		rows[i] = f.row(f.org, f.base, map[string]any{"name": name})
	}
	errs := make([]error, n)
	var wg sync.WaitGroup
	f.holdWriter(t, &wg)
	for i := range rows {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = f.update(func(tx store.Tx) error {
				if err := tx.Insert(f.ctx, a, f.org, rows[i]); err != nil {
					return err
				}
				if i%3 == 0 {
					return errTest
				}
				return nil
			})
		}()
	}
	wg.Wait()
	sameName := 0
	for i, r := range rows {
		_, getErr := f.get(t, a, f.org, r.ID)
		stored := getErr == nil
		switch {
		case i%3 == 0:
			if !errors.Is(errs[i], errTest) || stored {
				t.Errorf("Update %d failing with its own error: err %v, row stored %v", i, errs[i], stored)
			}
		case i%3 == 2:
			if errs[i] != nil || !stored {
				t.Errorf("Update %d beside failing ones: err %v, row stored %v", i, errs[i], stored)
			}
		case errs[i] == nil:
			sameName++
			if !stored {
				t.Errorf("Update %d committed but its row is missing", i)
			}
		default:
			wantUnique(t, fmt.Sprintf("Update %d of a taken name", i), errs[i], "name")
			if stored {
				t.Errorf("Update %d failed but its row is stored", i)
			}
		}
	}
	if sameName != 1 {
		t.Errorf("%d Updates stored the same unique name, want 1", sameName)
	}
}

// testUpdateLeftBeforeItsTurn: an Update whose context ends while it waits
// behind a slow one returns at once, and if it returned an error its
// writes never happen (SQLite: its turn had not come; an engine that runs
// it beside the slow one commits it, and says so). An Update that waited
// beside it, in what may be the same batch, is not failed by it.
func testUpdateLeftBeforeItsTurn(t *testing.T, f *fixture) {
	release := make(chan struct{})
	started := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		err := f.update(func(tx store.Tx) error {
			close(started)
			<-release
			return nil
		})
		if err != nil {
			t.Errorf("the slow Update: %v", err)
		}
	})
	<-started
	insert := func(ctx context.Context, name string) (store.Row, error) {
		row := f.row(f.org, f.base, map[string]any{"name": name})
		return row, f.db.Update(ctx, func(tx store.Tx) error { return tx.Insert(f.ctx, f.custA, f.org, row) })
	}
	var patient store.Row
	var patientErr error
	wg.Go(func() { patient, patientErr = insert(f.ctx, "waited its turn") })
	ctx, cancel := context.WithTimeout(f.ctx, 50*time.Millisecond)
	defer cancel()
	begun := time.Now()
	row, err := insert(ctx, "left before its turn")
	took := time.Since(begun)
	close(release)
	wg.Wait()
	if took > 2*time.Second {
		t.Errorf("the Update whose context ended returned after %v: it waited for the slow one", took)
	}
	_, getErr := f.get(t, f.custA, f.org, row.ID)
	switch {
	case err != nil && !errors.Is(err, context.DeadlineExceeded):
		t.Errorf("the Update whose context ended: %v, want its context's error or nil", err)
	case err != nil && getErr == nil:
		t.Error("the Update answered that its time was up, and its row was written after all")
	case err == nil && getErr != nil:
		t.Errorf("the Update succeeded, and its row is not there: %v", getErr)
	}
	if patientErr != nil {
		t.Errorf("the Update that waited beside the one that left: %v", patientErr)
	} else if _, err := f.get(t, f.custA, f.org, patient.ID); err != nil {
		t.Errorf("the row of the Update that waited beside the one that left: %v", err)
	}
}

// testUpdateBegunWaitsForItsBatch: an Update whose context ends after its
// fn has begun to run answers its batch's outcome, though another caller
// commits that batch: so a caller told that its time was up never sees its
// row written after all (a client told to send a create again would have
// created it twice). On SQLite the slow Update holds the one writer, the
// patient Update queues first and so commits the batch that holds both.
func testUpdateBegunWaitsForItsBatch(t *testing.T, f *fixture) {
	release := make(chan struct{})
	started := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		if err := f.update(func(tx store.Tx) error {
			close(started)
			<-release
			return nil
		}); err != nil {
			t.Errorf("the slow Update: %v", err)
		}
	})
	<-started
	patient := f.row(f.org, f.base, map[string]any{"name": "queued first"})
	var patientErr error
	wg.Go(func() {
		patientErr = f.db.Update(f.ctx, func(tx store.Tx) error { return tx.Insert(f.ctx, f.custA, f.org, patient) })
	})
	time.Sleep(50 * time.Millisecond) // the patient Update queues first
	ctx, cancel := context.WithCancel(f.ctx)
	defer cancel()
	late := f.row(f.org, f.base, map[string]any{"name": "its time ran out while it ran"})
	lateErr := make(chan error, 1)
	go func() {
		lateErr <- f.db.Update(ctx, func(tx store.Tx) error {
			if err := tx.Insert(f.ctx, f.custA, f.org, late); err != nil {
				return err
			}
			cancel()
			time.Sleep(100 * time.Millisecond) // its caller sees its context end
			return nil
		})
	}()
	time.Sleep(50 * time.Millisecond)
	close(release)
	wg.Wait()
	if err := <-lateErr; err != nil {
		t.Errorf("the Update whose context ended while its fn ran: %v, want its batch's outcome (committed)", err)
	}
	if _, err := f.get(t, f.custA, f.org, late.ID); err != nil {
		t.Errorf("the row of the Update whose context ended while its fn ran: %v", err)
	}
	if patientErr != nil {
		t.Errorf("the Update that queued first: %v", patientErr)
	}
}

// whileHeld runs read in an Update and, once read has read what it locks,
// starts other in an Update of its own; the first Update keeps its
// transaction open for a while, then runs the write that read returned
// and commits. So an Update that does not wait for it (a read that locks
// nothing, on an engine that runs write transactions side by side) has
// long since read, and usually committed, by the time the first writes.
// It returns other's error.
func (f *fixture) whileHeld(t *testing.T, read func(tx store.Tx) (write func() error, err error), other func(tx store.Tx) error) error {
	t.Helper()
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		err := f.update(func(tx store.Tx) error {
			write, err := read(tx)
			close(done)
			if err != nil {
				return err
			}
			time.Sleep(300 * time.Millisecond)
			return write()
		})
		if err != nil {
			t.Errorf("the holding Update: %v", err)
		}
	})
	<-done
	err := f.update(other)
	wg.Wait()
	return err
}

// testLockedReads: a write transaction's read of a row it changes holds the
// row, so two transactions that each read a row, change a field and write
// it back keep both changes, and one that reads a row another is deleting
// finds it gone; a customer's ancestry lock is held by one transaction at
// a time.
func testLockedReads(t *testing.T, f *fixture) {
	a := f.custA
	_, _, tenant := f.people(t)
	// mark reads the tenant for update and returns the write that appends
	// mark to its custom_id.
	mark := func(tx store.Tx, mark string) (func() error, error) {
		row, err := tx.Get(f.ctx, a, f.tenant, tenant.ID, store.ForUpdate)
		if err != nil {
			return nil, err
		}
		return func() error {
			row.Plain = maps.Clone(row.Plain)
			row.Plain["custom_id"] = fmt.Sprint(row.Plain["custom_id"]) + mark
			row.Search = tenant.Search // a read returns no tokens; a write keeps them
			return tx.Update(f.ctx, a, f.tenant, row)
		}, nil
	}
	err := f.whileHeld(t, func(tx store.Tx) (func() error, error) { return mark(tx, "|first") },
		func(tx store.Tx) error {
			write, err := mark(tx, "|second")
			if err != nil {
				return err
			}
			return write()
		})
	if err != nil {
		t.Fatalf("the second read-change-write: %v", err)
	}
	got, err := f.get(t, a, f.tenant, tenant.ID)
	if err != nil {
		t.Fatal(err)
	}
	if want := fmt.Sprint(tenant.Plain["custom_id"]) + "|first|second"; got.Plain["custom_id"] != want {
		t.Errorf("custom_id after two read-change-writes at once = %q, want %q: a change was lost", got.Plain["custom_id"], want)
	}

	// The ancestry lock holds back another transaction's until the first
	// commits: the links it read are still so when it commits.
	var committing atomic.Bool
	err = f.whileHeld(t, func(tx store.Tx) (func() error, error) {
		err := tx.LockAncestry(f.ctx, a, f.org)
		return func() error {
			committing.Store(true)
			return nil
		}, err
	}, func(tx store.Tx) error {
		if err := tx.LockAncestry(f.ctx, a, f.org); err != nil {
			return err
		}
		if !committing.Load() {
			return errors.New("two transactions held one customer's ancestry lock at once")
		}
		return nil
	})
	if err != nil {
		t.Fatalf("the second ancestry lock: %v", err)
	}

	// A row read for delete waits for a transaction that has written a row
	// referencing it: once read, every row referencing it is seen, and
	// none is left for the database's ON DELETE to remove unseen.
	pi := f.row(f.pi, f.base, map[string]any{"tenant_id": tenant.ID})
	var referencing []string
	err = f.whileHeld(t, func(tx store.Tx) (func() error, error) {
		return func() error { return nil }, tx.Insert(f.ctx, a, f.pi, pi)
	}, func(tx store.Tx) error {
		if _, err := tx.Get(f.ctx, a, f.tenant, tenant.ID, store.ForDelete); err != nil {
			return err
		}
		var err error
		referencing, err = tx.Referencing(f.ctx, a, f.pi, f.pi.Field("tenant"), tenant.ID)
		return err
	})
	if err != nil {
		t.Fatalf("reading for delete a row referenced meanwhile: %v", err)
	}
	sameIDs(t, "rows referencing a row read for delete", referencing, []string{pi.ID})

	// A row deleted by a transaction still open is not found once it has
	// committed: no write of it can follow.
	err = f.whileHeld(t, func(tx store.Tx) (func() error, error) {
		return func() error { return nil }, tx.Delete(f.ctx, a, f.tenant, tenant.ID)
	}, func(tx store.Tx) error {
		_, err := tx.Get(f.ctx, a, f.tenant, tenant.ID, store.ForUpdate)
		return err
	})
	if !errors.Is(err, store.ErrNotFound) {
		t.Errorf("reading for update a row deleted meanwhile: err %v, want store.ErrNotFound", err)
	}
}

// testPanicInUpdate: a panic inside an Update's function is an error for
// its caller (and any other of its transaction), and the next Updates are
// served.
func testPanicInUpdate(t *testing.T, f *fixture) {
	a := f.custA
	lost := f.row(f.org, f.base, nil)
	err := f.update(func(tx store.Tx) error {
		if err := tx.Insert(f.ctx, a, f.org, lost); err != nil {
			return err
		}
		panic("injected")
	})
	if err == nil {
		t.Fatal("an Update whose function panicked returned no error")
	}
	if _, err := f.get(t, a, f.org, lost.ID); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("the panicking Update's row: err %v, want store.ErrNotFound", err)
	}
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := f.row(f.org, f.base, nil)
			if err := f.update(func(tx store.Tx) error { return tx.Insert(f.ctx, a, f.org, r) }); err != nil {
				t.Errorf("an Update after a panic: %v", err)
			}
		}()
	}
	done := make(chan struct{})
	go func() {
		wg.Wait()
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		t.Fatal("Updates after a panic did not return: the writer is wedged")
	}
}

func testSavepoint(t *testing.T, f *fixture) {
	a := f.custA
	org := func(name string) store.Row { return f.row(f.org, f.base, map[string]any{"name": name}) }
	one, two, three, four, five, six, seven := org("one"), org("two"), org("one"), org("four"), org("five"), org("six"), org("seven")
	err := f.update(func(tx store.Tx) error {
		if err := tx.Insert(f.ctx, a, f.org, one); err != nil {
			return err
		}
		// A unique violation inside the savepoint: on PostgreSQL it aborts
		// the transaction until the savepoint is rolled back.
		err := tx.Savepoint(f.ctx, func() error {
			if err := tx.Insert(f.ctx, a, f.org, two); err != nil {
				return err
			}
			return tx.Insert(f.ctx, a, f.org, three)
		})
		wantUnique(t, "violation inside a savepoint", err, "name")
		if ok, err := tx.Exists(f.ctx, a, f.org, two.ID); err != nil || ok {
			t.Errorf("write of a failed savepoint still there (err %v)", err)
		}
		if ok, err := tx.Exists(f.ctx, a, f.org, one.ID); err != nil || !ok {
			t.Errorf("write before a failed savepoint undone (err %v)", err)
		}
		if err := tx.Insert(f.ctx, a, f.org, four); err != nil {
			return fmt.Errorf("insert after a failed savepoint: %w", err)
		}
		// A savepoint that succeeds keeps its writes.
		if err := tx.Savepoint(f.ctx, func() error { return tx.Insert(f.ctx, a, f.org, five) }); err != nil {
			return fmt.Errorf("successful savepoint: %w", err)
		}
		// fn's own error is returned, and its writes undone.
		err = tx.Savepoint(f.ctx, func() error {
			if err := tx.Insert(f.ctx, a, f.org, six); err != nil {
				return err
			}
			return errTest
		})
		if !errors.Is(err, errTest) {
			t.Errorf("Savepoint returned %v, want fn's error", err)
		}
		// Nested: the inner failure undoes the inner writes only.
		return tx.Savepoint(f.ctx, func() error {
			if err := tx.Insert(f.ctx, a, f.org, seven); err != nil {
				return err
			}
			err := tx.Savepoint(f.ctx, func() error {
				if err := tx.Insert(f.ctx, a, f.org, org("inner")); err != nil {
					return err
				}
				return errTest
			})
			if !errors.Is(err, errTest) {
				t.Errorf("inner Savepoint returned %v, want fn's error", err)
			}
			return nil
		})
	})
	if err != nil {
		t.Fatalf("Update: %v", err)
	}
	want := sorted(one.ID, four.ID, five.ID, seven.ID)
	sameIDs(t, "organizations after savepoints", sorted(f.list(t, a, f.org, store.ListSpec{})...), want)
	if v := f.version(t, a, f.org); v != 1 {
		t.Errorf("organizations version after one transaction = %d, want 1", v)
	}
}

// When a transaction's first write to a table happens inside a savepoint
// that fails, the version bump is rolled back with it; a later write of
// the same transaction must bump again, or the committed rows would carry
// a version the table's version never reached, and a reader that knows
// the old version would never see them.
func testSavepointVersion(t *testing.T, f *fixture) {
	a := f.custA
	first := f.row(f.org, f.base, nil)
	f.insert(t, a, f.org, first)
	before := f.version(t, a, f.org)
	undone, kept := f.row(f.org, f.base, nil), f.row(f.org, f.base, nil)
	err := f.update(func(tx store.Tx) error {
		err := tx.Savepoint(f.ctx, func() error {
			if err := tx.Insert(f.ctx, a, f.org, undone); err != nil {
				return err
			}
			return errTest
		})
		if !errors.Is(err, errTest) {
			return fmt.Errorf("savepoint: %w", err)
		}
		return tx.Insert(f.ctx, a, f.org, kept)
	})
	if err != nil {
		t.Fatalf("Update: %v", err)
	}
	if v := f.version(t, a, f.org); v <= before {
		t.Errorf("organizations version = %d after a committed write, want above %d", v, before)
	}
	sameIDs(t, "rows since the version before", f.list(t, a, f.org, store.ListSpec{Since: before}), []string{kept.ID})
}

func testReferences(t *testing.T, f *fixture) {
	a := f.custA
	x, y := f.row(f.addr, f.base, nil), f.row(f.addr, f.base, nil)
	f.insert(t, a, f.addr, x, y)
	t1 := f.row(f.tenant, f.base, map[string]any{"current_registered_address_id": x.ID, "future_address_id": y.ID})
	t2 := f.row(f.tenant, f.base, map[string]any{"current_registered_address_id": x.ID})
	t3 := f.row(f.tenant, f.base, map[string]any{"future_address_id": x.ID})
	f.insert(t, a, f.tenant, t1, t2, t3)
	p1 := f.row(f.pi, f.base, map[string]any{"tenant_id": t1.ID, "current_registered_address_id": x.ID})
	f.insert(t, a, f.pi, p1)

	referencing := func(res *schema.Resource, fld *schema.Field, target string) []string {
		var out []string
		err := f.db.View(f.ctx, func(tx store.Tx) error {
			var err error
			out, err = tx.Referencing(f.ctx, a, res, fld, target)
			return err
		})
		if err != nil {
			t.Fatalf("Referencing: %v", err)
		}
		return out
	}
	sameIDs(t, "tenants whose current address is x", referencing(f.tenant, f.tenantCurrent, x.ID), sorted(t1.ID, t2.ID))
	sameIDs(t, "tenants whose future address is x", referencing(f.tenant, f.tenantFuture, x.ID), []string{t3.ID})
	sameIDs(t, "tenants whose current address is y", referencing(f.tenant, f.tenantCurrent, y.ID), nil)
	sameIDs(t, "protected identities whose current address is x", referencing(f.pi, f.piCurrent, x.ID), []string{p1.ID})
	sameIDs(t, "protected identities of t1", referencing(f.pi, f.pi.Field("tenant"), t1.ID), []string{p1.ID})

	before := f.version(t, a, f.tenant)
	err := f.update(func(tx store.Tx) error {
		return tx.ClearReferences(f.ctx, a, f.tenant, f.tenantCurrent, x.ID)
	})
	if err != nil {
		t.Fatalf("ClearReferences: %v", err)
	}
	sameIDs(t, "tenants whose current address is x, after clearing", referencing(f.tenant, f.tenantCurrent, x.ID), nil)
	sameIDs(t, "tenants whose future address is x, after clearing current", referencing(f.tenant, f.tenantFuture, x.ID), []string{t3.ID})
	got, err := f.get(t, a, f.tenant, t1.ID)
	if err != nil {
		t.Fatal(err)
	}
	want := t1
	want.Plain = map[string]any{}
	for k, v := range t1.Plain {
		want.Plain[k] = v
	}
	want.Plain["current_registered_address_id"] = nil
	checkRow(t, "cleared tenant", got, want)
	if v := f.version(t, a, f.tenant); v != before+1 {
		t.Errorf("tenants version after ClearReferences = %d, want %d", v, before+1)
	}
	sameIDs(t, "rows stamped by ClearReferences", sorted(f.list(t, a, f.tenant, store.ListSpec{Since: before})...), sorted(t1.ID, t2.ID))

	// Deleting a tenant deletes its protected identity (ON DELETE CASCADE).
	if err := f.update(func(tx store.Tx) error { return tx.Delete(f.ctx, a, f.tenant, t1.ID) }); err != nil {
		t.Fatalf("Delete tenant: %v", err)
	}
	if f.exists(t, a, f.pi, p1.ID) {
		t.Error("protected identity of a deleted tenant still exists")
	}

	// An organization may reference another, and its own kind is cleared
	// like any other.
	parent := f.row(f.org, f.base, nil)
	child := f.row(f.org, f.base, map[string]any{"organization_id": parent.ID})
	f.insert(t, a, f.org, parent, child)
	sameIDs(t, "child organizations", referencing(f.org, f.orgParent, parent.ID), []string{child.ID})
	err = f.update(func(tx store.Tx) error {
		if err := tx.ClearReferences(f.ctx, a, f.org, f.orgParent, parent.ID); err != nil {
			return err
		}
		return tx.Delete(f.ctx, a, f.org, parent.ID)
	})
	if err != nil {
		t.Fatalf("clearing and deleting a parent organization: %v", err)
	}
	if got, err := f.get(t, a, f.org, child.ID); err != nil || got.Plain["organization_id"] != nil {
		t.Errorf("child organization after its parent's deletion: err %v, parent %v", err, got.Plain["organization_id"])
	}
}

func testViewReadOnly(t *testing.T, f *fixture) {
	r := f.row(f.tenant, f.base, nil)
	err := f.db.View(f.ctx, func(tx store.Tx) error { return tx.Insert(f.ctx, f.custA, f.tenant, r) })
	if err == nil {
		t.Error("Insert in View succeeded")
	}
	if f.exists(t, f.custA, f.tenant, r.ID) {
		t.Error("Insert in View stored a row")
	}
	if v := f.version(t, f.custA, f.tenant); v != 0 {
		t.Errorf("version after a write attempt in View = %d", v)
	}
}

func testViewSnapshot(t *testing.T, f *fixture) {
	f.insert(t, f.custA, f.tenant, f.row(f.tenant, f.base, nil))
	err := f.db.View(f.ctx, func(tx store.Tx) error {
		n1, err := tx.Count(f.ctx, f.custA, f.tenant, nil)
		if err != nil {
			return err
		}
		v1, err := tx.Version(f.ctx, f.custA, f.tenant)
		if err != nil {
			return err
		}
		// Another transaction commits meanwhile.
		f.insert(t, f.custA, f.tenant, f.row(f.tenant, f.base, nil))
		n2, err := tx.Count(f.ctx, f.custA, f.tenant, nil)
		if err != nil {
			return err
		}
		v2, err := tx.Version(f.ctx, f.custA, f.tenant)
		if err != nil {
			return err
		}
		var listed int
		err = tx.List(f.ctx, f.custA, f.tenant, store.ListSpec{}, func(store.Row) error { listed++; return nil })
		if err != nil {
			return err
		}
		if n1 != 1 || n2 != 1 || listed != 1 || v1 != 1 || v2 != 1 {
			t.Errorf("View saw a commit made during it: counts %d, %d, listed %d, versions %d, %d; want 1 each", n1, n2, listed, v1, v2)
		}
		return nil
	})
	if err != nil {
		t.Fatalf("View: %v", err)
	}
	if n := f.count(t, f.custA, f.tenant, nil); n != 2 {
		t.Errorf("Count in a later View = %d, want 2", n)
	}
}

func testCustomers(t *testing.T, f *fixture) {
	id := uuid.NewString()
	created := time.Date(2023, 1, 2, 3, 4, 5, 678901234, time.FixedZone("CET", 3600))
	if err := f.db.CreateCustomer(f.ctx, store.Customer{ID: id, Name: "Fastighets AB", CreatedAt: created}); err != nil {
		t.Fatalf("CreateCustomer: %v", err)
	}
	c, err := f.db.Customer(f.ctx, id)
	if err != nil {
		t.Fatalf("Customer: %v", err)
	}
	wantCreated := created.UTC().Truncate(time.Microsecond)
	if c.ID != id || c.Name != "Fastighets AB" || !c.CreatedAt.Equal(wantCreated) || c.CreatedAt.Location() != time.UTC {
		t.Errorf("Customer = %+v, want id, name and created_at %v in UTC", c, wantCreated)
	}
	if _, err := f.db.Customer(f.ctx, uuid.NewString()); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("Customer of an unknown id: err = %v, want store.ErrNotFound", err)
	}
	err = f.db.CreateCustomer(f.ctx, store.Customer{ID: id, Name: "Again", CreatedAt: created})
	wantUnique(t, "a second customer with the same id", err, "id", "Again")
}

// testDeleteCustomer: a customer's objects of every resource and its
// clients go with it; another customer's stay; the audit trail stays.
func testDeleteCustomer(t *testing.T, f *fixture) {
	gone := uuid.NewString()
	f.createCustomer(t, gone)
	org := f.row(f.org, f.base, nil)
	f.insert(t, gone, f.org, org)
	addr := f.row(f.addr, f.base, map[string]any{"organization_id": org.ID})
	f.insert(t, gone, f.addr, addr)
	tenant := f.row(f.tenant, f.base, map[string]any{"organization_id": org.ID, "current_registered_address_id": addr.ID})
	f.insert(t, gone, f.tenant, tenant)
	pi := f.row(f.pi, f.base, map[string]any{"tenant_id": tenant.ID, "organization_id": org.ID})
	f.insert(t, gone, f.pi, pi)
	client := store.Client{ID: uuid.NewString(), CustomerID: gone, ApplicationID: uuid.NewString(), ServiceID: uuid.NewString(),
		ServiceVersionID: uuid.NewString(), ClientCT: "client-ct", SecretDigest: randomBytes(32), Scope: "read", CreatedAt: f.base}
	if err := f.db.CreateClient(f.ctx, client); err != nil {
		t.Fatalf("CreateClient: %v", err)
	}
	entries := []audit.Entry{{CustomerID: gone, Time: f.base, ClientID: client.ID, RequestID: "r", Action: audit.Create, Resource: f.pi.Name, ObjectIDs: []string{pi.ID}}}
	if err := f.update(func(tx store.Tx) error { return tx.AppendAudit(f.ctx, entries) }); err != nil {
		t.Fatalf("AppendAudit: %v", err)
	}
	kept := f.count(t, f.custA, f.tenant, nil)

	if err := f.db.DeleteCustomer(f.ctx, gone); err != nil {
		t.Fatalf("DeleteCustomer: %v", err)
	}
	if _, err := f.db.Customer(f.ctx, gone); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("the deleted customer is still there (err %v)", err)
	}
	if _, err := f.db.Client(f.ctx, client.ID); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("the deleted customer's client is still there (err %v)", err)
	}
	for _, res := range []*schema.Resource{f.pi, f.tenant, f.addr, f.org} {
		if n := f.count(t, gone, res, nil); n != 0 {
			t.Errorf("%d %s rows of the deleted customer remain", n, res.Name)
		}
	}
	if n := f.count(t, f.custA, f.tenant, nil); n != kept {
		t.Errorf("another customer's tenants: %d, want %d", n, kept)
	}
	if head, err := f.db.AuditHead(f.ctx, gone); err != nil || head.Position != 1 {
		t.Errorf("the deleted customer's audit head: position %d, err %v; the trail must stay", head.Position, err)
	}
	if err := f.db.DeleteCustomer(f.ctx, gone); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("deleting an unknown customer: err %v, want store.ErrNotFound", err)
	}
}

func testClients(t *testing.T, f *fixture) {
	client := func(customerID string, created time.Time) store.Client {
		return store.Client{
			ID:               uuid.NewString(),
			CustomerID:       customerID,
			ApplicationID:    uuid.NewString(),
			ServiceID:        uuid.NewString(),
			ServiceVersionID: uuid.NewString(),
			ClientCT:         "client-ct",
			SecretDigest:     randomBytes(32),
			Scope:            "read_write",
			CreatedAt:        created,
		}
	}
	late := client(f.custA, f.base.Add(time.Hour+789*time.Nanosecond))
	early := client(f.custA, f.base)
	early.Scope = "read"
	same := client(f.custA, f.base)
	for _, c := range []store.Client{late, early, same, client(f.custB, f.base)} {
		if err := f.db.CreateClient(f.ctx, c); err != nil {
			t.Fatalf("CreateClient: %v", err)
		}
	}
	got, err := f.db.Client(f.ctx, late.ID)
	if err != nil {
		t.Fatalf("Client: %v", err)
	}
	checkClient(t, got, late)
	list, err := f.db.Clients(f.ctx, f.custA)
	if err != nil {
		t.Fatalf("Clients: %v", err)
	}
	var listed []string
	for _, c := range list {
		listed = append(listed, c.ID)
	}
	sameIDs(t, "Clients, oldest first, then by id", listed, slices.Concat(sorted(early.ID, same.ID), []string{late.ID}))
	if _, err := f.db.Client(f.ctx, uuid.NewString()); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("Client of an unknown id: err = %v, want store.ErrNotFound", err)
	}
	if list, err := f.db.Clients(f.ctx, uuid.NewString()); err != nil || len(list) != 0 {
		t.Errorf("Clients of an unknown customer: %d, err %v", len(list), err)
	}

	first := f.base.Add(2*time.Hour + 123*time.Nanosecond)
	if err := f.db.RevokeClient(f.ctx, early.ID, first); err != nil {
		t.Fatalf("RevokeClient: %v", err)
	}
	if err := f.db.RevokeClient(f.ctx, early.ID, first.Add(time.Hour)); err != nil {
		t.Fatalf("second RevokeClient: %v", err)
	}
	got, err = f.db.Client(f.ctx, early.ID)
	if err != nil {
		t.Fatalf("Client after revoking: %v", err)
	}
	wantRevoked := first.Truncate(time.Microsecond)
	if got.RevokedAt == nil || !got.RevokedAt.Equal(wantRevoked) || got.RevokedAt.Location() != time.UTC {
		t.Errorf("RevokedAt = %v, want the first revocation %v in UTC", got.RevokedAt, wantRevoked)
	}
	if got.Scope != "read" {
		t.Errorf("Scope = %q, want read", got.Scope)
	}
	if err := f.db.RevokeClient(f.ctx, uuid.NewString(), first); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("RevokeClient of an unknown id: err = %v, want store.ErrNotFound", err)
	}
	list, err = f.db.Clients(f.ctx, f.custA)
	if err != nil || len(list) != 3 {
		t.Errorf("Clients after revoking: %d, err %v; want 3, revoked ones included", len(list), err)
	}
	if got, err := f.db.Client(f.ctx, same.ID); err != nil || got.RevokedAt != nil {
		t.Errorf("a client not revoked: RevokedAt %v, err %v", got.RevokedAt, err)
	}

	dup := client(f.custA, f.base)
	dup.ID = late.ID
	wantUnique(t, "a second client with the same id", f.db.CreateClient(f.ctx, dup), "id", dup.ApplicationID)
	unknown := client(uuid.NewString(), f.base)
	wantReference(t, "a client of an unknown customer", f.db.CreateClient(f.ctx, unknown), "customer_id", unknown.CustomerID)
	bad := client(f.custA, f.base)
	bad.Scope = "admin"
	if err := f.db.CreateClient(f.ctx, bad); err == nil {
		t.Error("a client with an unknown scope was created")
	}
}

// checkClient compares a stored client with what was created.
func checkClient(t *testing.T, got, want store.Client) {
	t.Helper()
	wantCreated := want.CreatedAt.UTC().Truncate(time.Microsecond)
	switch {
	case got.ID != want.ID, got.CustomerID != want.CustomerID, got.ApplicationID != want.ApplicationID,
		got.ServiceID != want.ServiceID, got.ServiceVersionID != want.ServiceVersionID,
		got.ClientCT != want.ClientCT, got.Scope != want.Scope:
		t.Errorf("Client = %+v, want %+v", got, want)
	case !bytes.Equal(got.SecretDigest, want.SecretDigest):
		t.Error("Client: secret digest differs")
	case !got.CreatedAt.Equal(wantCreated) || got.CreatedAt.Location() != time.UTC:
		t.Errorf("Client: created_at = %v, want %v in UTC", got.CreatedAt, wantCreated)
	case got.RevokedAt != nil:
		t.Errorf("Client: revoked at %v, want not revoked", got.RevokedAt)
	}
}
