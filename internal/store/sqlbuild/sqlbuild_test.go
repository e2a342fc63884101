package sqlbuild

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"accounts/internal/audit"
	"accounts/internal/schema"
	"accounts/internal/searchindex"
	"accounts/internal/store"
	"accounts/internal/store/dialect"
)

var numbered = regexp.MustCompile(`\$[0-9]+`)

// checkPlaceholders checks that a statement has one placeholder per
// argument, numbered in order on PostgreSQL: every statement is written
// with ? and numbered by the dialect, so a miscount would bind values to
// the wrong columns on one engine only.
func checkPlaceholders(t *testing.T, d dialect.Dialect, what string, s Stmt) {
	t.Helper()
	switch d {
	case dialect.Postgres:
		if strings.Contains(s.SQL, "?") {
			t.Errorf("%s (%s): a ? is left: %s", what, d, s.SQL)
		}
		got := numbered.FindAllString(s.SQL, -1)
		for i, p := range got {
			if p != "$"+strconv.Itoa(i+1) {
				t.Errorf("%s (%s): placeholder %d is %s: %s", what, d, i+1, p, s.SQL)
			}
		}
		if len(got) != len(s.Args) {
			t.Errorf("%s (%s): %d placeholders, %d arguments: %s", what, d, len(got), len(s.Args), s.SQL)
		}
	default:
		if n := strings.Count(s.SQL, "?"); n != len(s.Args) {
			t.Errorf("%s (%s): %d placeholders, %d arguments: %s", what, d, n, len(s.Args), s.SQL)
		}
	}
}

func TestPlaceholders(t *testing.T) {
	catalog := schema.New()
	now := time.Now()
	for _, d := range []dialect.Dialect{dialect.SQLite, dialect.Postgres} {
		b := New(catalog, d)
		entries, err := b.InsertAuditEntries([]*audit.Entry{{CustomerID: "c", Time: now, ObjectIDs: []string{"x"}}})
		if err != nil || len(entries) != 1 {
			t.Fatalf("InsertAuditEntries of one entry: %d statements, %v", len(entries), err)
		}
		fixed := map[string]Stmt{
			"BumpVersion":        b.BumpVersion("c", "tenants"),
			"Version":            b.Version("c", "tenants"),
			"AuditHead":          b.AuditHead("c"),
			"InsertAuditEntries": entries[0],
			"AuditCustomers":     b.AuditCustomers(),
			"AuditEntries":       b.AuditEntries("c"),
			"CreateCustomer":     b.CreateCustomer(store.Customer{ID: "c", CreatedAt: now}),
			"Customer":           b.Customer("c"),
			"CustomerExists":     b.CustomerExists("c"),
			"Customers":          b.Customers(),
			"CreateClient":       b.CreateClient(store.Client{ID: "x", CreatedAt: now}),
			"Client":             b.Client("x"),
			"Clients":            b.Clients("c"),
			"RevokeClient":       b.RevokeClient("x", now),
			"Columns":            b.Columns("tenants"),
		}
		for i, s := range b.DeleteCustomer("c") {
			fixed["DeleteCustomer "+strconv.Itoa(i)] = s
		}
		for what, s := range fixed {
			checkPlaceholders(t, d, what, s)
		}
		for _, res := range catalog.Resources {
			tb, err := b.Table(res)
			if err != nil {
				t.Fatal(err)
			}
			row := store.Row{ID: "x", CreatedAt: now, Plain: map[string]any{}}
			if res.SearchIndexed() {
				row.Search = []int64{1, 2}
			}
			insert, err := tb.Insert("c", 1, row)
			if err != nil {
				t.Fatal(err)
			}
			update, err := tb.Update("c", 1, row)
			if err != nil {
				t.Fatal(err)
			}
			stmts := map[string]Stmt{"Insert": insert, "Update": update, "Get": tb.Get("c", "x"),
				"Delete": tb.Delete("c", "x"), "Exists": tb.Exists("c", "x")}
			if res.SearchIndexed() {
				stmts["Unindexed"], err = tb.Unindexed("c")
				if err != nil {
					t.Fatal(err)
				}
				stmts["List with tokens"], err = tb.List("c", store.ListSpec{Match: []store.TokenQuery{{{1, 2}, {3}}, {{4}}}})
				if err != nil {
					t.Fatal(err)
				}
			}
			for _, f := range res.Fields {
				if f.Type != schema.Ref {
					continue
				}
				stmts["Referencing "+f.Name], err = tb.Referencing("c", f, "y")
				if err != nil {
					t.Fatal(err)
				}
				stmts["ClearReferences "+f.Name], err = tb.ClearReferences("c", f, 1, "y")
				if err != nil {
					t.Fatal(err)
				}
			}
			at := now.UTC().Format(dialect.TimeLayout)
			where := []store.Condition{
				{Column: "id", Op: store.In, Values: []any{"a", "b", "c"}},
				{Column: "id", Op: store.In},
				{Column: "id", Op: store.In, Negate: true, Values: []any{"a"}},
				{Column: "created_at", Op: store.GTE, Values: []any{at}},
				{Column: "created_at", Op: store.IsNull, Values: []any{false}},
				{Column: "created_at", Op: store.LT, Negate: true, Values: []any{at}},
			}
			for i, spec := range []store.ListSpec{
				{},
				{Where: where, Since: 3, Limit: 10, Offset: 20},
				{Where: where[:1], Order: []store.OrderBy{{Column: "created_at", Desc: true}, {Column: "id"}}, Offset: 5},
				{Limit: 1},
			} {
				list, err := tb.List("c", spec)
				if err != nil {
					t.Fatal(err)
				}
				stmts["List "+strconv.Itoa(i)] = list
				count, err := tb.Count("c", spec.Where)
				if err != nil {
					t.Fatal(err)
				}
				stmts["Count "+strconv.Itoa(i)] = count
			}
			for what, s := range stmts {
				checkPlaceholders(t, d, res.Name+" "+what, s)
			}
		}
		for _, q := range b.Fixed() {
			if d == dialect.Postgres && strings.Contains(q, "?") {
				t.Errorf("a fixed statement is not bound for %s: %s", d, q)
			}
		}
	}
}

// Audit entries are stored AuditEntriesPerInsert to a statement, in order,
// each statement with a row of placeholders per entry and a text that
// AuditInserts lists (so that a store prepares it).
func TestInsertAuditEntries(t *testing.T) {
	for _, d := range []dialect.Dialect{dialect.SQLite, dialect.Postgres} {
		b := New(schema.New(), d)
		fixed := map[string]bool{}
		for _, q := range b.AuditInserts() {
			fixed[q] = true
		}
		for _, n := range []int{0, 1, 2, AuditEntriesPerInsert, AuditEntriesPerInsert + 1, 2*AuditEntriesPerInsert + 3} {
			entries := make([]*audit.Entry, n)
			for i := range entries {
				entries[i] = &audit.Entry{CustomerID: "c" + strconv.Itoa(i%3), Position: int64(i + 1), Time: time.Now(),
					ObjectIDs: []string{"x"}, Fields: []string{"ssn"}, Hash: []byte{byte(i)}}
			}
			stmts, err := b.InsertAuditEntries(entries)
			if err != nil {
				t.Fatal(err)
			}
			if want := (n + AuditEntriesPerInsert - 1) / AuditEntriesPerInsert; len(stmts) != want {
				t.Errorf("%s: %d entries in %d statements, want %d", d, n, len(stmts), want)
			}
			next := 0
			for i, s := range stmts {
				what := fmt.Sprintf("%d entries, statement %d", n, i)
				checkPlaceholders(t, d, what, s)
				if !fixed[s.SQL] {
					t.Errorf("%s (%s): the statement is not among AuditInserts': %s", what, d, s.SQL)
				}
				for row := 0; row < len(s.Args)/auditEntryColumns; row++ {
					args := s.Args[row*auditEntryColumns:]
					if args[0] != entries[next].CustomerID || args[1] != entries[next].Position {
						t.Errorf("%s (%s): row %d stores (%v, %v), want entry %d", what, d, row, args[0], args[1], next)
					}
					next++
				}
			}
			if next != n {
				t.Errorf("%s: %d of %d entries stored", d, next, n)
			}
		}
	}
}

// Paging without a limit uses the dialect's no-limit value: OFFSET needs
// a LIMIT before it on SQLite.
func TestOffsetWithoutLimit(t *testing.T) {
	catalog := schema.New()
	for _, c := range []struct {
		d    dialect.Dialect
		want any
	}{{dialect.SQLite, int64(-1)}, {dialect.Postgres, nil}} {
		tb, err := New(catalog, c.d).Table(catalog.Resource(schema.Tenant))
		if err != nil {
			t.Fatal(err)
		}
		s, err := tb.List("c", store.ListSpec{Offset: 2})
		if err != nil {
			t.Fatal(err)
		}
		n := len(s.Args)
		if !strings.Contains(s.SQL, " LIMIT ") || s.Args[n-2] != c.want || s.Args[n-1] != int64(2) {
			t.Errorf("%s: offset without a limit: %s %v", c.d, s.SQL, s.Args)
		}
	}
}

// The tokens' column is named with their format, so that a change of
// format (searchindex.Format) can't be made without a new column and the
// migration that adds it.
func TestTokensColumnNamesTheTokenFormat(t *testing.T) {
	if want := fmt.Sprintf("search_tokens_v%d", searchindex.Format); TokensColumn != want {
		t.Errorf("TokensColumn = %q, want %q", TokensColumn, want)
	}
}
