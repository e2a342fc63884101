package storetest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"accounts/internal/audit"
	"accounts/internal/schema"
	"accounts/internal/store"
	"accounts/internal/store/dialect"
	"accounts/internal/store/sqlbuild"

	"github.com/google/uuid"
)

// The cases in this file pin what the engines once did differently, when
// each built its statements by hand: an empty IN list, what is refused
// (unknown resources, columns and operators, values of the wrong type),
// and how constraint violations are reported.

// TableReader is what the suite needs of a store besides store.Store: the
// tables as the live database has them, to check them against what the
// declarations imply. Both engines implement it.
type TableReader interface {
	Dialect() dialect.Dialect
	TableColumns(ctx context.Context, table string) ([]sqlbuild.TableColumn, error)
	// Explain returns the engine's plan for a statement, a line per step
	// (PostgreSQL: with sequential scans priced out of reach, so that a
	// scan in the plan means no index serves it).
	Explain(ctx context.Context, stmt sqlbuild.Stmt) ([]string, error)
}

// secret is a value the error messages must not quote.
const secret = "secret-value"

// refused checks that fn fails, without panicking, and that its error
// quotes no value.
func refused(t *testing.T, what string, fn func() error) {
	t.Helper()
	var err error
	func() {
		defer func() {
			if p := recover(); p != nil {
				err = nil
				t.Errorf("%s: panicked: %v", what, p)
			}
		}()
		err = fn()
	}()
	if err == nil {
		t.Errorf("%s: no error", what)
		return
	}
	noValues(t, what, err, secret)
}

// An empty IN list selects nothing; negated, it selects every row (a NOT
// IN of nothing excludes nothing, nulls included).
func testListEmptyIn(t *testing.T, f *fixture) {
	rows := f.listRows(t)
	all := sorted(ids(rows, 0, 1, 2, 3, 4)...)
	for _, col := range []string{"custom_id", "id", "created_at", "ssn_bidx", "ssn_is_coordination_number", "organization_id"} {
		for _, values := range [][]any{nil, {}} {
			in := []store.Condition{{Column: col, Op: store.In, Values: values}}
			sameIDs(t, "IN () on "+col, f.list(t, f.custA, f.tenant, store.ListSpec{Where: in}), nil)
			if n := f.count(t, f.custA, f.tenant, in); n != 0 {
				t.Errorf("Count IN () on %s = %d, want 0", col, n)
			}
			notIn := []store.Condition{{Column: col, Op: store.In, Negate: true, Values: values}}
			sameIDs(t, "NOT IN () on "+col, sorted(f.list(t, f.custA, f.tenant, store.ListSpec{Where: notIn})...), all)
			if n := f.count(t, f.custA, f.tenant, notIn); n != len(all) {
				t.Errorf("Count NOT IN () on %s = %d, want %d", col, n, len(all))
			}
		}
	}
	both := []store.Condition{
		{Column: "custom_id", Op: store.In, Negate: true},
		{Column: "ssn_is_coordination_number", Op: store.Eq, Values: []any{true}},
	}
	sameIDs(t, "NOT IN () and another condition", sorted(f.list(t, f.custA, f.tenant, store.ListSpec{Where: both})...),
		sorted(ids(rows, 1, 3)...))
}

// A list refuses, with an error that quotes no value, every condition or
// order it can't express over allow-listed columns with values of their
// columns' types.
func testListRefusals(t *testing.T, f *fixture) {
	f.listRows(t)
	cond := func(col string, op store.CondOp, values ...any) []store.Condition {
		return []store.Condition{{Column: col, Op: op, Values: values}}
	}
	cases := []struct {
		name string
		spec store.ListSpec
	}{
		{"unknown column", store.ListSpec{Where: cond("no_such_column", store.Eq, secret)}},
		{"personal field", store.ListSpec{Where: cond("first_name", store.Eq, secret)}},
		{"sealed column", store.ListSpec{Where: cond("sealed", store.IsNull, true)}},
		{"customer_id", store.ListSpec{Where: cond("customer_id", store.Eq, f.custB)}},
		{"seq", store.ListSpec{Where: cond("seq", store.GT, "0")}},
		{"a column name that is SQL", store.ListSpec{Where: cond("custom_id = custom_id OR 1 = 1 --", store.Eq, secret)}},
		{"unknown operator", store.ListSpec{Where: cond("custom_id", store.CondOp(99), secret)}},
		{"is null without a value", store.ListSpec{Where: cond("custom_id", store.IsNull)}},
		{"is null with a text", store.ListSpec{Where: cond("custom_id", store.IsNull, secret)}},
		{"is null with two values", store.ListSpec{Where: cond("custom_id", store.IsNull, true, false)}},
		{"comparison without a value", store.ListSpec{Where: cond("custom_id", store.GT)}},
		{"comparison with two values", store.ListSpec{Where: cond("custom_id", store.Eq, secret, secret)}},
		{"text for a bool", store.ListSpec{Where: cond("ssn_is_coordination_number", store.Eq, secret)}},
		{"bool for a text", store.ListSpec{Where: cond("custom_id", store.Eq, true)}},
		{"bytes for a text", store.ListSpec{Where: cond("custom_id", store.Eq, []byte(secret))}},
		{"text for bytes", store.ListSpec{Where: cond("ssn_bidx", store.Eq, secret)}},
		{"an int", store.ListSpec{Where: cond("custom_id", store.Eq, 7)}},
		{"bool for an id", store.ListSpec{Where: cond("id", store.In, uuid.NewString(), true)}},
		{"time not in the layout", store.ListSpec{Where: cond("created_at", store.GT, secret)}},
		{"time.Time (the stored form is text)", store.ListSpec{Where: cond("created_at", store.GT, f.base)}},
		{"order by an unknown column", store.ListSpec{Order: []store.OrderBy{{Column: "no_such_column"}}}},
		{"order by sealed", store.ListSpec{Order: []store.OrderBy{{Column: "sealed"}}}},
		{"order by customer_id", store.ListSpec{Order: []store.OrderBy{{Column: "customer_id"}}}},
		{"negative limit", store.ListSpec{Limit: -1}},
		{"negative offset", store.ListSpec{Offset: -1}},
	}
	for _, c := range cases {
		err := f.db.View(f.ctx, func(tx store.Tx) error {
			refused(t, "List: "+c.name, func() error {
				return tx.List(f.ctx, f.custA, f.tenant, c.spec, func(store.Row) error { return nil })
			})
			if c.spec.Where != nil {
				refused(t, "Count: "+c.name, func() error {
					_, err := tx.Count(f.ctx, f.custA, f.tenant, c.spec.Where)
					return err
				})
			}
			// The transaction goes on.
			_, err := tx.Count(f.ctx, f.custA, f.tenant, nil)
			return err
		})
		if err != nil {
			t.Errorf("%s: the transaction failed after the refusal: %v", c.name, err)
		}
	}
}

// A resource the store was not opened with is refused by every method:
// its names are not allow-listed, even when they are the same as a known
// resource's. So is a field that is not one of the resource's references.
func testUnknownResource(t *testing.T, f *fixture) {
	_, addr, tenant := f.people(t)
	other := schema.New().Resource(schema.Tenant)
	a := f.custA
	orgField := other.Field("organization")
	row := f.row(f.tenant, f.base, nil)
	err := f.update(func(tx store.Tx) error {
		for _, res := range []*schema.Resource{other, nil} {
			name := "a resource of another catalog"
			if res == nil {
				name = "a nil resource"
			}
			refused(t, "Insert of "+name, func() error { return tx.Insert(f.ctx, a, res, row) })
			refused(t, "Update of "+name, func() error { return tx.Update(f.ctx, a, res, tenant) })
			refused(t, "Delete of "+name, func() error { return tx.Delete(f.ctx, a, res, tenant.ID) })
			refused(t, "Get of "+name, func() error { _, err := tx.Get(f.ctx, a, res, tenant.ID, store.ForUpdate); return err })
			refused(t, "Store.Get of "+name, func() error { _, err := f.db.Get(f.ctx, a, res, tenant.ID); return err })
			refused(t, "Exists of "+name, func() error { _, err := tx.Exists(f.ctx, a, res, tenant.ID); return err })
			refused(t, "Version of "+name, func() error { _, err := tx.Version(f.ctx, a, res); return err })
			refused(t, "List of "+name, func() error {
				return tx.List(f.ctx, a, res, store.ListSpec{}, func(store.Row) error { return nil })
			})
			refused(t, "Count of "+name, func() error { _, err := tx.Count(f.ctx, a, res, nil); return err })
			refused(t, "Referencing of "+name, func() error {
				_, err := tx.Referencing(f.ctx, a, res, orgField, addr.ID)
				return err
			})
			refused(t, "ClearReferences of "+name, func() error { return tx.ClearReferences(f.ctx, a, res, orgField, addr.ID) })
		}
		for _, c := range []struct {
			name string
			fld  *schema.Field
		}{
			{"a field that is not a reference", f.tenant.Field("custom_id")},
			{"a reference of another resource", f.pi.Field("tenant")},
			{"a reference of another catalog", orgField},
			{"a nil field", nil},
		} {
			refused(t, "Referencing with "+c.name, func() error {
				_, err := tx.Referencing(f.ctx, a, f.tenant, c.fld, addr.ID)
				return err
			})
			refused(t, "ClearReferences with "+c.name, func() error { return tx.ClearReferences(f.ctx, a, f.tenant, c.fld, addr.ID) })
		}
		return errTest
	})
	if !errors.Is(err, errTest) {
		t.Fatalf("Update: %v", err)
	}
	if f.exists(t, a, f.tenant, row.ID) {
		t.Error("a refused insert stored its row")
	}
	if got, err := f.get(t, a, f.tenant, tenant.ID); err != nil {
		t.Errorf("Get after the refusals: %v", err)
	} else {
		checkRow(t, "tenant after the refusals", got, tenant)
	}
}

// A write refuses a clear value whose type does not fit its column, with
// an error that quotes no value, and stores nothing.
func testWriteValueTypes(t *testing.T, f *fixture) {
	_, _, tenant := f.people(t)
	cases := []struct {
		column string
		value  any
	}{
		{"ssn_is_coordination_number", secret},
		{"ssn_is_coordination_number", 1},
		{"custom_id", true},
		{"custom_id", []byte(secret)},
		{"custom_id", 42},
		{"custom_id", f.base},
		{"ssn_bidx", secret},
		{"organization_id", []byte(secret)},
	}
	for _, c := range cases {
		what := fmt.Sprintf("%T in %s", c.value, c.column)
		row := f.row(f.tenant, f.base, map[string]any{c.column: c.value})
		refused(t, "Insert of "+what, func() error {
			return f.update(func(tx store.Tx) error { return tx.Insert(f.ctx, f.custA, f.tenant, row) })
		})
		if f.exists(t, f.custA, f.tenant, row.ID) {
			t.Errorf("Insert of %s stored the row", what)
		}
		changed := tenant
		changed.Plain = map[string]any{}
		for k, v := range tenant.Plain {
			changed.Plain[k] = v
		}
		changed.Plain[c.column] = c.value
		refused(t, "Update to "+what, func() error {
			return f.update(func(tx store.Tx) error { return tx.Update(f.ctx, f.custA, f.tenant, changed) })
		})
	}
	if got, err := f.get(t, f.custA, f.tenant, tenant.ID); err != nil {
		t.Errorf("Get after the refused updates: %v", err)
	} else {
		checkRow(t, "tenant after the refused updates", got, tenant)
	}
}

// A write that references a row the customer does not have (a missing
// row, another customer's row, or an unknown customer) is a
// *store.ReferenceViolation naming the referencing column, on both
// engines; the transaction goes on after a savepoint rolls it back.
func testReferenceViolation(t *testing.T, f *fixture) {
	a := f.custA
	insert := func(customerID string, res *schema.Resource, row store.Row) error {
		return f.update(func(tx store.Tx) error { return tx.Insert(f.ctx, customerID, res, row) })
	}
	missing := uuid.NewString()
	err := insert(a, f.tenant, f.row(f.tenant, f.base, map[string]any{"organization_id": missing}))
	wantReference(t, "a tenant of a missing organization", err, "organization_id", missing)

	orgB := f.row(f.org, f.base, nil)
	f.insert(t, f.custB, f.org, orgB)
	err = insert(a, f.addr, f.row(f.addr, f.base, map[string]any{"organization_id": orgB.ID}))
	wantReference(t, "an address of another customer's organization", err, "organization_id", orgB.ID)

	err = insert(a, f.pi, f.row(f.pi, f.base, map[string]any{"tenant_id": missing}))
	wantReference(t, "a protected identity of a missing tenant", err, "tenant_id", missing)

	org, addr, tenant := f.people(t)
	err = insert(a, f.pi, f.row(f.pi, f.base, map[string]any{"tenant_id": tenant.ID, "organization_id": org.ID,
		"current_registered_address_id": addr.ID, "future_address_id": missing}))
	wantReference(t, "a protected identity whose last reference is missing", err, "future_address_id", missing)

	changed := tenant
	changed.Plain = map[string]any{}
	for k, v := range tenant.Plain {
		changed.Plain[k] = v
	}
	changed.Plain["current_registered_address_id"] = missing
	err = f.update(func(tx store.Tx) error { return tx.Update(f.ctx, a, f.tenant, changed) })
	wantReference(t, "an update to a missing address", err, "current_registered_address_id", missing)

	unknown := uuid.NewString()
	err = insert(unknown, f.tenant, f.row(f.tenant, f.base, nil))
	wantReference(t, "a tenant of an unknown customer", err, "customer_id", unknown)

	client := store.Client{ID: uuid.NewString(), CustomerID: unknown, ApplicationID: uuid.NewString(), ServiceID: uuid.NewString(),
		ServiceVersionID: uuid.NewString(), ClientCT: "client-ct", SecretDigest: randomBytes(32), Scope: "read", CreatedAt: f.base}
	wantReference(t, "a client of an unknown customer", f.db.CreateClient(f.ctx, client), "customer_id", unknown)

	// Inside a savepoint, the violation undoes the savepoint's writes only.
	kept := f.row(f.addr, f.base, nil)
	err = f.update(func(tx store.Tx) error {
		err := tx.Savepoint(f.ctx, func() error {
			return tx.Insert(f.ctx, a, f.tenant, f.row(f.tenant, f.base, map[string]any{"future_address_id": missing}))
		})
		wantReference(t, "a violation inside a savepoint", err, "future_address_id", missing)
		return tx.Insert(f.ctx, a, f.addr, kept)
	})
	if err != nil {
		t.Fatalf("Update after a violation inside a savepoint: %v", err)
	}
	if !f.exists(t, a, f.addr, kept.ID) {
		t.Error("the write after a violation inside a savepoint was lost")
	}
	if n := f.count(t, a, f.tenant, nil); n != 1 {
		t.Errorf("tenants after the violations: %d, want 1", n)
	}
}

// Each resource table, as the migrations made it in the live database,
// has exactly the columns the declarations imply, of the kinds and
// nullability the statements expect: migrations are written by hand per
// engine, the statements from the declarations.
func testTablesMatchDeclarations(t *testing.T, f *fixture) {
	tr, ok := f.db.(TableReader)
	if !ok {
		t.Fatalf("the store (%T) does not implement storetest.TableReader", f.db)
	}
	build := sqlbuild.New(f.catalog, tr.Dialect())
	for _, res := range f.catalog.Resources {
		live, err := tr.TableColumns(f.ctx, res.Table)
		if err != nil {
			t.Fatalf("TableColumns %s: %v", res.Table, err)
		}
		if len(live) == 0 {
			t.Errorf("table %s: no columns read: the table is missing", res.Table)
			continue
		}
		got := map[string]sqlbuild.TableColumn{}
		for _, c := range live {
			got[c.Name] = c
		}
		for _, want := range build.Declared(res) {
			c, ok := got[want.Name]
			delete(got, want.Name)
			switch {
			case !ok:
				t.Errorf("table %s: column %s (%s) is missing", res.Table, want.Name, want.Type)
			case c.Type != want.Type:
				t.Errorf("table %s: column %s is %s, want %s", res.Table, want.Name, c.Type, want.Type)
			case c.NotNull != want.NotNull:
				t.Errorf("table %s: column %s NOT NULL is %v, want %v", res.Table, want.Name, c.NotNull, want.NotNull)
			}
		}
		var extra []string
		for name := range got {
			extra = append(extra, name)
		}
		if len(extra) > 0 {
			t.Errorf("table %s: columns %s are not declared (a clear column must come from a declaration)",
				res.Table, strings.Join(sorted(extra...), ", "))
		}
	}
	if live, err := tr.TableColumns(f.ctx, "no_such_table"); err != nil || len(live) != 0 {
		t.Errorf("TableColumns of a missing table: %d columns, err %v; want none", len(live), err)
	}
}

// The audit trail round-trips exactly on both engines: times (UTC,
// microseconds), lists of ids and field names (empty ones too), hashes,
// and heads; a failed transaction appends nothing.
func testAudit(t *testing.T, f *fixture) {
	a, b := f.custA, f.custB
	if ids, err := f.db.AuditCustomers(f.ctx); err != nil || len(ids) != 0 {
		t.Errorf("AuditCustomers of a fresh store: %v, err %v", ids, err)
	}
	if head, err := f.db.AuditHead(f.ctx, a); err != nil || head.Position != 0 {
		t.Errorf("AuditHead of a customer without entries: %+v, err %v", head, err)
	}
	at := time.Date(2024, 5, 6, 7, 8, 9, 123456789, time.FixedZone("CET", 3600))
	entry := func(customerID string, action audit.Action, ids, fields []string) audit.Entry {
		return audit.Entry{CustomerID: customerID, Time: at, ClientID: "client-" + customerID[:8], RequestID: uuid.NewString(),
			Action: action, Resource: f.tenant.Name, ObjectIDs: ids, Fields: fields}
	}
	first := []audit.Entry{
		entry(a, audit.Create, []string{uuid.NewString()}, []string{"first_name", "ssn"}),
		entry(b, audit.Read, nil, nil),
		entry(a, audit.Read, []string{uuid.NewString(), uuid.NewString()}, []string{}),
	}
	second := []audit.Entry{entry(a, audit.CascadeDelete, []string{uuid.NewString()}, nil)}
	for _, entries := range [][]audit.Entry{first, second} {
		if err := f.update(func(tx store.Tx) error { return tx.AppendAudit(f.ctx, entries) }); err != nil {
			t.Fatalf("AppendAudit: %v", err)
		}
	}
	err := f.update(func(tx store.Tx) error {
		if err := tx.AppendAudit(f.ctx, []audit.Entry{entry(a, audit.Update, nil, nil)}); err != nil {
			return err
		}
		return errTest
	})
	if !errors.Is(err, errTest) {
		t.Fatalf("a failed AppendAudit transaction: %v", err)
	}

	if ids, err := f.db.AuditCustomers(f.ctx); err != nil || !slices.Equal(ids, sorted(a, b)) {
		t.Errorf("AuditCustomers = %v (err %v), want %v", ids, err, sorted(a, b))
	}
	CheckAuditChain(t, f.db, a, []audit.Entry{first[0], first[2], second[0]})
	CheckAuditChain(t, f.db, b, []audit.Entry{first[1]})
}

// CheckAuditChain checks that a customer's audit trail holds exactly want,
// in order, at positions 1, 2, ..., each linked to the one before, and
// that its head is the last: times compared in UTC at microseconds.
func CheckAuditChain(t *testing.T, db store.Store, customerID string, want []audit.Entry) {
	t.Helper()
	ctx := context.Background()
	var got []audit.Entry
	if err := db.AuditEntries(ctx, customerID, func(e audit.Entry) error { got = append(got, e); return nil }); err != nil {
		t.Fatalf("AuditEntries: %v", err)
	}
	if len(got) != len(want) {
		t.Fatalf("AuditEntries: %d entries, want %d", len(got), len(want))
	}
	var v audit.Verifier
	for i, e := range got {
		want := want[i]
		wantTime := want.Time.UTC().Truncate(time.Microsecond)
		switch {
		case e.Position != int64(i+1), e.CustomerID != want.CustomerID, e.ClientID != want.ClientID,
			e.RequestID != want.RequestID, e.Action != want.Action, e.Resource != want.Resource:
			t.Errorf("entry %d = %+v, want %+v", i+1, e, want)
		case !e.Time.Equal(wantTime) || e.Time.Location() != time.UTC:
			t.Errorf("entry %d: time %v, want %v in UTC", i+1, e.Time, wantTime)
		case !slices.Equal(e.ObjectIDs, want.ObjectIDs) || !slices.Equal(e.Fields, want.Fields):
			t.Errorf("entry %d: object ids %v and fields %v, want %v and %v", i+1, e.ObjectIDs, e.Fields, want.ObjectIDs, want.Fields)
		}
		if err := v.Next(e); err != nil {
			t.Errorf("entry %d: %v", i+1, err)
		}
	}
	head, err := db.AuditHead(ctx, customerID)
	if err != nil {
		t.Fatalf("AuditHead: %v", err)
	}
	if err := v.End(customerID, head); err != nil || head.Position != int64(len(want)) {
		t.Errorf("AuditHead %+v: %v", head, err)
	}
}

// AppendAuditAlone extends the same chains as transactions' AppendAudit,
// before and after them and mixed with them, for customers with and
// without a chain yet.
func testAuditAlone(t *testing.T, f *fixture) {
	a, b := f.custA, f.custB
	var wantA, wantB []audit.Entry
	entry := func(customerID string) audit.Entry {
		e := audit.Entry{CustomerID: customerID, Time: f.base, ClientID: "client", RequestID: uuid.NewString(),
			Action: audit.Read, Resource: f.pi.Name, ObjectIDs: []string{uuid.NewString()}, Fields: []string{"first_name"}}
		if customerID == a {
			wantA = append(wantA, e)
		} else {
			wantB = append(wantB, e)
		}
		return e
	}
	alone := func(entries ...audit.Entry) {
		t.Helper()
		if err := f.db.AppendAuditAlone(f.ctx, entries); err != nil {
			t.Fatalf("AppendAuditAlone: %v", err)
		}
	}
	alone(entry(a), entry(a))
	alone(entry(a), entry(b), entry(a))
	alone(entry(b))
	inTx := []audit.Entry{entry(b), entry(a)}
	if err := f.update(func(tx store.Tx) error { return tx.AppendAudit(f.ctx, inTx) }); err != nil {
		t.Fatalf("AppendAudit: %v", err)
	}
	alone(entry(a), entry(b))
	// A failed transaction's entries are not in the chain, and the next
	// entries follow the last ones stored.
	err := f.update(func(tx store.Tx) error {
		if err := tx.AppendAudit(f.ctx, []audit.Entry{{CustomerID: a, Time: f.base, ClientID: "client", RequestID: uuid.NewString(),
			Action: audit.Update, Resource: f.pi.Name}}); err != nil {
			return err
		}
		return errTest
	})
	if !errors.Is(err, errTest) {
		t.Fatalf("a failed AppendAudit transaction: %v", err)
	}
	alone(entry(a))
	CheckAuditChain(t, f.db, a, wantA)
	CheckAuditChain(t, f.db, b, wantB)
}
