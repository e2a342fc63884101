package storetest

import (
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"

	"accounts/internal/schema"
	"accounts/internal/store"
	"accounts/internal/store/sqlbuild"
)

// Search tokens: a ListSpec.Match selects the rows holding every token of
// one of a query's groups, ANDs the queries, keeps to the customer, and
// goes with the other conditions and orders.
func testSearchTokens(t *testing.T, f *fixture) {
	rows := []store.Row{
		f.row(f.tenant, f.base, map[string]any{"custom_id": "x"}),
		f.row(f.tenant, f.base, map[string]any{"custom_id": "y"}),
		f.row(f.tenant, f.base, nil),
		f.row(f.tenant, f.base, nil),
	}
	rows[0].Search = []int64{1, 2, 3}
	rows[1].Search = []int64{2, 3, 4}
	rows[2].Search = []int64{1 << 40, 5}
	f.insert(t, f.custA, f.tenant, rows...)
	other := f.row(f.tenant, f.base, nil)
	other.Search = []int64{1, 2, 3, 4, 5}
	f.insert(t, f.custB, f.tenant, other)

	match := func(qs ...store.TokenQuery) []string {
		return sorted(f.list(t, f.custA, f.tenant, store.ListSpec{Match: qs})...)
	}
	cases := []struct {
		name string
		qs   []store.TokenQuery
		want []int
	}{
		{"one token", []store.TokenQuery{{{2}}}, []int{0, 1}},
		{"every token of a group", []store.TokenQuery{{{1, 3}}}, []int{0}},
		{"a token no row holds", []store.TokenQuery{{{1, 4}}}, nil},
		{"a group of one of two", []store.TokenQuery{{{1, 3}, {4}}}, []int{0, 1}},
		{"two queries", []store.TokenQuery{{{2}}, {{4}, {5}}}, []int{1}},
		{"a large token", []store.TokenQuery{{{1 << 40}}}, []int{2}},
		{"a negative token", []store.TokenQuery{{{-1}}}, nil},
		{"a query of no group", []store.TokenQuery{{}}, nil},
	}
	for _, c := range cases {
		sameIDs(t, c.name, match(c.qs...), sorted(ids(rows, c.want...)...))
	}
	// With conditions, order and paging.
	got := f.list(t, f.custA, f.tenant, store.ListSpec{
		Match: []store.TokenQuery{{{3}}},
		Where: []store.Condition{{Column: "custom_id", Op: store.In, Values: []any{"x", "y"}}},
		Order: []store.OrderBy{{Column: "custom_id", Desc: true}},
		Limit: 1,
	})
	sameIDs(t, "with a condition, an order and a limit", got, ids(rows, 1))
	refused(t, "a group of no token", func() error {
		return f.db.View(f.ctx, func(tx store.Tx) error {
			return tx.List(f.ctx, f.custA, f.tenant, store.ListSpec{Match: []store.TokenQuery{{{}}}}, func(store.Row) error { return nil })
		})
	})
	refused(t, "tokens of a resource without them", func() error {
		return f.db.View(f.ctx, func(tx store.Tx) error {
			return tx.List(f.ctx, f.custA, f.org, store.ListSpec{Match: []store.TokenQuery{{{1}}}}, func(store.Row) error { return nil })
		})
	})
	refused(t, "a row of a searched resource without tokens", func() error {
		r := f.row(f.tenant, f.base, nil)
		r.Search = nil
		return f.update(func(tx store.Tx) error { return tx.Insert(f.ctx, f.custA, f.tenant, r) })
	})
	refused(t, "tokens on a row of a resource without them", func() error {
		r := f.row(f.org, f.base, nil)
		r.Search = []int64{1}
		return f.update(func(tx store.Tx) error { return tx.Insert(f.ctx, f.custA, f.org, r) })
	})
	unindexed(t, f, f.custA, f.tenant, 0)

	// Larger tells a customer's size from a bound.
	for _, c := range []struct {
		n    int
		want bool
	}{{0, true}, {3, true}, {4, false}, {10, false}} {
		var larger bool
		err := f.db.View(f.ctx, func(tx store.Tx) error {
			var err error
			larger, err = tx.Larger(f.ctx, f.custA, f.tenant, c.n)
			return err
		})
		if err != nil || larger != c.want {
			t.Errorf("Larger than %d (customer A has 4 rows): %v, %v; want %v", c.n, larger, err, c.want)
		}
	}

}

// The tokens follow a row's writes: an update replaces them, a delete and
// a cascaded delete remove them, and a row written again after a delete
// is found by its new tokens only.
func testSearchTokensFollowWrites(t *testing.T, f *fixture) {
	tenant := f.row(f.tenant, f.base, nil)
	tenant.Search = []int64{7}
	f.insert(t, f.custA, f.tenant, tenant)
	pi := f.row(f.pi, f.base, map[string]any{"tenant_id": tenant.ID})
	pi.Search = []int64{10, 11}
	f.insert(t, f.custA, f.pi, pi)
	find := func(res *schema.Resource, tok int64) []string {
		return f.list(t, f.custA, res, store.ListSpec{Match: []store.TokenQuery{{{tok}}}})
	}
	sameIDs(t, "inserted", find(f.pi, 11), []string{pi.ID})

	pi.Search = []int64{12}
	if err := f.update(func(tx store.Tx) error { return tx.Update(f.ctx, f.custA, f.pi, pi) }); err != nil {
		t.Fatalf("Update: %v", err)
	}
	sameIDs(t, "an old token after the update", find(f.pi, 11), nil)
	sameIDs(t, "the new token after the update", find(f.pi, 12), []string{pi.ID})

	// Deleting the tenant cascades to its protected identity.
	if err := f.update(func(tx store.Tx) error { return tx.Delete(f.ctx, f.custA, f.tenant, tenant.ID) }); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	sameIDs(t, "a deleted row's token", find(f.tenant, 7), nil)
	sameIDs(t, "a cascaded row's token", find(f.pi, 12), nil)

	again := f.row(f.tenant, f.base, nil)
	again.Search = []int64{8}
	f.insert(t, f.custA, f.tenant, again)
	sameIDs(t, "a new row's token", find(f.tenant, 8), []string{again.ID})
	sameIDs(t, "a deleted row's token, once another row is written", find(f.tenant, 7), nil)
	unindexed(t, f, f.custA, f.pi, 0)
}

func unindexed(t *testing.T, f *fixture, customerID string, res *schema.Resource, want int) {
	t.Helper()
	var n int
	err := f.db.View(f.ctx, func(tx store.Tx) error {
		var err error
		n, err = tx.Unindexed(f.ctx, customerID, res)
		return err
	})
	if err != nil || n != want {
		t.Errorf("Unindexed %s = %d, %v; want %d", res.Name, n, err, want)
	}
}

// fullScan reports whether a plan step reads a whole table: SQLite's
// "SCAN tenants" (not its FTS5 index's "SCAN tenants_search VIRTUAL
// TABLE ...", nor "SCAN (subquery-1)", the rows a subquery gave),
// PostgreSQL's "Seq Scan on".
func fullScan(step string) bool {
	step = strings.TrimSpace(strings.TrimLeft(step, " ->"))
	return strings.Contains(step, "Seq Scan on") ||
		(strings.HasPrefix(step, "SCAN ") && !strings.Contains(step, "VIRTUAL TABLE") && !strings.HasPrefix(step, "SCAN (subquery"))
}

// Every lookup the service makes by a blind index or the search tokens is
// planned through the index that serves it, never by walking the
// customer's rows (in list order or any other): an equality lookup with
// the lists' default order, a lookup through the tokens, the check for
// rows without tokens, and a lookup by a unique reference.
func testLookupPlans(t *testing.T, f *fixture) {
	tr, ok := f.db.(TableReader)
	if !ok {
		t.Fatalf("the store (%T) does not implement storetest.TableReader", f.db)
	}
	build := sqlbuild.New(f.catalog, tr.Dialect())
	// Rows of two customers, so that a plan has something to choose over.
	for _, customer := range []string{f.custA, f.custB} {
		rows := make([]store.Row, 200)
		for i := range rows {
			rows[i] = f.row(f.tenant, f.base, map[string]any{"ssn_bidx": randomBytes(32), "email_bidx": randomBytes(32)})
			rows[i].Search = []int64{int64(i), int64(i + 1000)}
		}
		f.insert(t, customer, f.tenant, rows...)
		pis := make([]store.Row, len(rows))
		for i, r := range rows {
			pis[i] = f.row(f.pi, f.base, map[string]any{"tenant_id": r.ID, "ssn_bidx": randomBytes(32)})
			pis[i].Search = []int64{int64(i)}
		}
		f.insert(t, customer, f.pi, pis...)
	}
	defaultOrder := []store.OrderBy{{Column: "created_at"}, {Column: "id"}}
	tenant, err := build.Table(f.tenant)
	if err != nil {
		t.Fatal(err)
	}
	pi, err := build.Table(f.pi)
	if err != nil {
		t.Fatal(err)
	}
	list := func(tb *sqlbuild.Table, spec store.ListSpec) sqlbuild.Stmt {
		stmt, err := tb.List(f.custA, spec)
		if err != nil {
			t.Fatal(err)
		}
		return stmt
	}
	eq := func(col string, v any) []store.Condition {
		return []store.Condition{{Column: col, Op: store.Eq, Values: []any{v}}}
	}
	// SQLite reads the rows by the numbers its FTS5 index gives;
	// PostgreSQL's GIN index gives the rows.
	tokenIndex := "tenants_search"
	if tr.Dialect().FTSTokens() {
		tokenIndex = "tenants_search_row"
	}
	unindexed, err := tenant.Unindexed(f.custA)
	if err != nil {
		t.Fatal(err)
	}
	type planCase struct {
		name, index string
		stmt        sqlbuild.Stmt
		// ordered: the index gives the order, no sort of the rows read
		ordered bool
	}
	cases := []planCase{
		{"a page in the default order", "tenants_created", list(tenant, store.ListSpec{Order: defaultOrder, Limit: 20}), true},
		{"a page newest first", "tenants_created", list(tenant, store.ListSpec{
			Order: []store.OrderBy{{Column: "created_at", Desc: true}, {Column: "id", Desc: true}}, Limit: 20}), true},
		{"ssn, default order", "tenants_ssn", list(tenant, store.ListSpec{Where: eq("ssn_bidx", randomBytes(32)), Order: defaultOrder}), true},
		{"email, default order", "tenants_email", list(tenant, store.ListSpec{Where: eq("email_bidx", randomBytes(32)), Order: defaultOrder}), true},
		{"phone, default order", "tenants_phone_number", list(tenant, store.ListSpec{Where: eq("phone_number_bidx", randomBytes(32)), Order: defaultOrder}), true},
		{"protected identity's ssn, a page", "protected_identities_ssn",
			list(pi, store.ListSpec{Where: eq("ssn_bidx", randomBytes(32)), Order: defaultOrder, Limit: 10}), true},
		{"tokens", tokenIndex, list(tenant, store.ListSpec{Match: []store.TokenQuery{{{5}}}, Limit: 1001}), false},
		{"tokens, an OR of groups and two queries", tokenIndex,
			list(tenant, store.ListSpec{Match: []store.TokenQuery{{{5, 1005}, {7}}, {{5}}}, Limit: 1001}), false},
		{"rows without tokens", "tenants_unindexed", unindexed, false},
	}
	if tenant.FTSIndexed() {
		// A transaction's tokens find their rows by primary key.
		writes, err := tenant.IndexTokens([]sqlbuild.TokenWrite{{CustomerID: f.custA, ID: "an id", Search: []int64{1}}})
		if err != nil {
			t.Fatal(err)
		}
		cases = append(cases, planCase{"writing tokens into the FTS5 index", "sqlite_autoindex_tenants_1", writes[0], false})
	}
	for _, c := range cases {
		plan, err := tr.Explain(f.ctx, c.stmt)
		if err != nil {
			t.Fatalf("%s: Explain: %v", c.name, err)
		}
		uses := false
		for _, step := range plan {
			if fullScan(step) {
				t.Errorf("%s: the plan reads a whole table: %q", c.name, plan)
			}
			uses = uses || strings.Contains(step, c.index)
		}
		if !uses {
			t.Errorf("%s: the plan does not use %s: %q", c.name, c.index, plan)
		}
		for _, step := range plan {
			if c.ordered && (strings.Contains(step, "Sort") || strings.Contains(step, "TEMP B-TREE")) {
				t.Errorf("%s: the plan sorts the rows instead of reading them in the index's order: %q", c.name, plan)
			}
		}
	}
}

// The tokens of the rows written in a shared transaction (the writes that
// gather behind a slow one) are those of the writes that succeed: a write
// that fails leaves none, whatever its neighbours do. Within one
// transaction, a row written again or deleted has the tokens of its last
// write, or none; and a list through tokens there is either refused or
// sees the transaction's own writes, never misses them.
func testSearchTokensInSharedTransactions(t *testing.T, f *fixture) {
	const n = 12
	rows := make([]store.Row, n)
	for i := range rows {
		rows[i] = f.row(f.tenant, f.base, nil)
		rows[i].Search = []int64{100, 200 + int64(i)}
	}
	errs := make([]error, n)
	var wg sync.WaitGroup
	f.holdWriter(t, &wg)
	for i := range rows {
		wg.Go(func() {
			errs[i] = f.update(func(tx store.Tx) error {
				if err := tx.Insert(f.ctx, f.custA, f.tenant, rows[i]); err != nil {
					return err
				}
				if i%3 == 0 {
					return errTest
				}
				return nil
			})
		})
	}
	wg.Wait()
	find := func(tok int64) []string {
		return sorted(f.list(t, f.custA, f.tenant, store.ListSpec{Match: []store.TokenQuery{{{tok}}}})...)
	}
	var succeeded []string
	for i, r := range rows {
		if i%3 == 0 {
			if !errors.Is(errs[i], errTest) {
				t.Errorf("write %d, failing with its own error: %v", i, errs[i])
			}
			sameIDs(t, "the token of a failed write", find(200+int64(i)), nil)
			continue
		}
		if errs[i] != nil {
			t.Errorf("write %d beside failing ones: %v", i, errs[i])
		}
		sameIDs(t, "the token of a write that succeeded", find(200+int64(i)), []string{r.ID})
		succeeded = append(succeeded, r.ID)
	}
	sameIDs(t, "a token of every write", find(100), sorted(succeeded...))

	again, gone, kept := f.row(f.tenant, f.base, nil), f.row(f.tenant, f.base, nil), f.row(f.tenant, f.base, nil)
	again.Search, gone.Search, kept.Search = []int64{300}, []int64{302}, []int64{303}
	err := f.update(func(tx store.Tx) error {
		for _, r := range []store.Row{again, gone, kept} {
			if err := tx.Insert(f.ctx, f.custA, f.tenant, r); err != nil {
				return err
			}
		}
		again.Search = []int64{301}
		if err := tx.Update(f.ctx, f.custA, f.tenant, again); err != nil {
			return err
		}
		if err := tx.Delete(f.ctx, f.custA, f.tenant, gone.ID); err != nil {
			return err
		}
		var seen []string
		err := tx.List(f.ctx, f.custA, f.tenant, store.ListSpec{Match: []store.TokenQuery{{{301}}}}, func(r store.Row) error {
			seen = append(seen, r.ID)
			return nil
		})
		if err == nil && !slices.Equal(seen, []string{again.ID}) {
			t.Errorf("a list through tokens inside the writing transaction saw %d rows, want the one written", len(seen))
		}
		return nil
	})
	if err != nil {
		t.Fatalf("writing, writing again and deleting in one transaction: %v", err)
	}
	sameIDs(t, "a row's tokens before it was written again", find(300), nil)
	sameIDs(t, "a row's tokens written again", find(301), []string{again.ID})
	sameIDs(t, "a row deleted in the transaction that wrote it", find(302), nil)
	sameIDs(t, "a row written beside them", find(303), []string{kept.ID})
	unindexed(t, f, f.custA, f.tenant, 0)
}
