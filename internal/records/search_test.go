package records

import (
	"context"
	"database/sql"
	"fmt"
	"math/rand/v2"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"accounts/internal/keystore"
	"accounts/internal/query"
	"accounts/internal/schema"
	"accounts/internal/seal"
	"accounts/internal/searchindex"
	"accounts/internal/store"
	"accounts/internal/store/postgres"
	"accounts/internal/store/sqlbuild"
	"accounts/internal/store/sqlite"
	"accounts/internal/store/storetest"

	_ "github.com/jackc/pgx/v5/stdlib"
)

// searchAlphabet is what the random values are made of: letters whose
// lower-case forms differ in length or are shared (İ, ß, Σ/σ/ς, K and the
// Kelvin sign), Swedish letters in both cases, and a space and a hyphen.
var searchAlphabet = []rune("aAbBeEkKsSåÅäÄöÖéÉİıßσΣςK -")

func randomWord(r *rand.Rand, minLen, maxLen int) string {
	n := minLen + r.IntN(maxLen-minLen+1)
	out := make([]rune, n)
	for i := range out {
		out[i] = searchAlphabet[r.IntN(len(searchAlphabet))]
	}
	return string(out)
}

// randomPart is a piece of one of values (in a random case), or a word of
// its own: most queries then match something.
func randomPart(r *rand.Rand, values []string) string {
	if len(values) == 0 || r.IntN(4) == 0 {
		return randomWord(r, 1, 5)
	}
	v := []rune(values[r.IntN(len(values))])
	start := r.IntN(len(v))
	end := min(len(v), start+1+r.IntN(6))
	part := string(v[start:end])
	switch r.IntN(3) {
	case 0:
		part = strings.ToUpper(part)
	case 1:
		part = strings.ToLower(part)
	}
	return part
}

// TestSearchTokensAgreeWithDecrypting is the property that lists through
// the search tokens return exactly what decrypting every row and comparing
// returns: the same objects in the same order, and the same count, on
// random values and random queries (filters of every operator the tokens
// narrow, negated or not, two at once, _search, personal orders and
// pages, with and without statistics: a short term's page is first
// looked for in the first rows read in order). It runs three services on one store: one with the tokens and
// the default candidate limit, one with a limit of 3 (so most lists fall
// back to reading the rows), and one that never uses them.
func TestSearchTokensAgreeWithDecrypting(t *testing.T) {
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	r := rand.New(rand.NewPCG(seed, 0x5eac4))
	ctx := context.Background()
	catalog, db, ks, master := openTestStore(t)
	p := listNewCustomer(t, ctx, db, ks, master, "Search One")
	other := listNewCustomer(t, ctx, db, ks, master, "Search Two")
	ring := seal.NewKeyring(master, nil, ks)
	tokens := New(catalog, db, ring, nil)
	tokens.cache = newObjectCache(0, 0, time.Minute)
	few := New(catalog, db, ring, nil)
	few.cache, few.candidates = newObjectCache(0, 0, time.Minute), 3
	decrypting := New(catalog, db, ring, nil)
	decrypting.cache, decrypting.candidates = newObjectCache(0, 0, time.Minute), 0

	res := catalog.Resource(schema.Tenant)
	fields := []string{"first_name", "last_name", "corporate_name", "custom_id", "email"}
	emails := []string{"Anna.Berg@Exempel.se", "anna.berg@exempel.se", "ASA@exempel.se", "sigma.SS@exempel.se", "kelvin.k@Exempel.SE"}
	values := map[string][]string{}
	for i := 0; i < 300; i++ {
		kv := []any{}
		for _, f := range fields[:4] {
			if r.IntN(5) == 0 {
				continue // null
			}
			v := randomWord(r, 1, 12)
			values[f] = append(values[f], v)
			kv = append(kv, f, v)
		}
		if len(kv) == 0 || (kv[0] != "first_name" && kv[0] != "last_name" && kv[0] != "corporate_name") {
			kv = append(kv, "last_name", "Exempelsson")
			values["last_name"] = append(values["last_name"], "Exempelsson")
		}
		if r.IntN(2) == 0 {
			e := emails[r.IntN(len(emails))]
			values["email"] = append(values["email"], e)
			kv = append(kv, "email", e)
		}
		owner := p
		if i%10 == 0 {
			owner = other
		}
		if _, err := tokens.Create(ctx, owner, res, listBody(t, kv...)); err != nil {
			t.Fatalf("create tenant %d: %v", i, err)
		}
	}

	ops := []string{"", "__iexact", "__in", "__startswith", "__istartswith", "__contains", "__icontains", "__endswith", "__iendswith"}
	narrowed := 0
	for i := 0; i < 600; i++ {
		vals := url.Values{}
		for n := 1 + r.IntN(2); n > 0; n-- {
			f := fields[r.IntN(len(fields))]
			op := ops[r.IntN(len(ops))]
			v := randomPart(r, values[f])
			if op == "__in" {
				v += "," + randomPart(r, values[f])
			}
			key := f + op
			if r.IntN(5) == 0 {
				key += "!"
			}
			vals.Set(key, v)
		}
		if r.IntN(3) == 0 {
			vals = url.Values{"_search": {randomPart(r, values[fields[r.IntN(4)]])}}
		}
		switch r.IntN(3) {
		case 0:
			vals.Set("_order_by", "last_name")
		case 1:
			vals.Set("_order_by", "-first_name,custom_id")
		}
		if r.IntN(2) == 0 {
			vals.Set("_page", fmt.Sprint(1+r.IntN(3)))
			vals.Set("_page_size", fmt.Sprint(1+r.IntN(10)))
		}
		stats := r.IntN(2) == 0
		if stats {
			vals.Set("_statistics", "true")
		}
		q, err := query.Parse(res, vals)
		if err != nil {
			continue // a value the field does not take (an e-mail filter's, say)
		}
		if len(plan(mustKeys(t, tokens, p.CustomerID), res, q).match) > 0 {
			narrowed++
		}
		run := func(s *Service) ([]string, int) {
			var ids []string
			n, err := s.List(ctx, p, res, q, func(o Object) error {
				ids = append(ids, o.ID)
				return nil
			})
			if err != nil {
				t.Fatalf("query %d (%s): %v", i, listKeys(vals), err)
			}
			return ids, n
		}
		want, wantN := run(decrypting)
		for _, s := range []struct {
			name string
			s    *Service
		}{{"tokens", tokens}, {"tokens, 3 candidates", few}} {
			got, n := run(s.s)
			if !stats {
				n = wantN // a count is only asked for with _statistics
			}
			if !slices.Equal(got, want) || n != wantN {
				t.Errorf("query %d (%s) with %s: %d objects (count %d), decrypting every row gives %d (count %d): %s",
					i, listKeys(vals), s.name, len(got), n, len(want), wantN, listDiff(got, want))
			}
		}
	}
	if narrowed < 100 {
		t.Errorf("only %d of the queries were narrowed by the tokens: the property was hardly tested", narrowed)
	}
}

func mustKeys(t *testing.T, s *Service, customerID string) *seal.CustomerKeys {
	t.Helper()
	keys, err := s.customerKeys(context.Background(), customerID)
	if err != nil {
		t.Fatal(err)
	}
	return keys
}

// syntheticSurnames and syntheticSyllables spell the synthetic names the
// search benchmarks seed, as the scale benchmark (bench/scale.go) does.
var (
	syntheticSurnames  = []string{"Lindqvist", "Berglund", "Nilsson", "Holm", "Sjöström", "Ek", "Dahl", "Falk", "Wikström", "Åberg"}
	syntheticSyllables = []string{"ka", "lo", "mi", "ne", "ri", "sa", "to", "vu", "be", "da", "fe", "gi", "ho", "ju", "ly", "py"}
)

// BenchmarkSearchFalsePositives measures, with the service's token sizes
// (searchBits), what share of the candidates the tokens give are not
// matches, by kind of lookup, over one field of n synthetic names (a
// surname of a short list plus syllables, as the scale benchmark seeds):
//
//	go test -run '^$' -bench SearchFalsePositives -benchtime 1x ./internal/records/
//
// Each reported fp-* figure is (candidates − matches) / candidates over
// 300 lookups of parts of stored names, and cand-* the mean candidates.
func BenchmarkSearchFalsePositives(b *testing.B) {
	const n = 100_000
	r := rand.New(rand.NewPCG(1, 2))
	names := make([]string, n)
	for i := range names {
		var sb strings.Builder
		sb.WriteString(syntheticSurnames[r.IntN(len(syntheticSurnames))])
		for j := 0; j < 2+r.IntN(3); j++ {
			sb.WriteString(syntheticSyllables[r.IntN(len(syntheticSyllables))])
		}
		names[i] = sb.String()
	}
	key := searchindex.NewKey([]byte("a benchmark's search key, 32 b.."), searchBits)
	postings := map[searchindex.Token][]int32{}
	for i, v := range names {
		for _, tok := range key.Value(v) {
			postings[tok] = append(postings[tok], int32(i))
		}
	}
	type lookup struct {
		name  string
		op    searchindex.Op
		part  func(v string) string
		match func(v, q string) bool
	}
	lookups := []lookup{
		{"exact", searchindex.Equal, func(v string) string { return v }, strings.EqualFold},
		{"prefix4", searchindex.StartsWith, func(v string) string { return v[:4] },
			func(v, q string) bool { return strings.HasPrefix(strings.ToLower(v), strings.ToLower(q)) }},
		{"prefix9", searchindex.StartsWith, func(v string) string { return v[:min(9, len(v))] },
			func(v, q string) bool { return strings.HasPrefix(strings.ToLower(v), strings.ToLower(q)) }},
		{"contains3", searchindex.Contains, func(v string) string { i := len(v) - 3; return v[i:] },
			func(v, q string) bool { return strings.Contains(strings.ToLower(v), strings.ToLower(q)) }},
		{"contains6", searchindex.Contains, func(v string) string { i := len(v) - 6; return v[i:] },
			func(v, q string) bool { return strings.Contains(strings.ToLower(v), strings.ToLower(q)) }},
	}
	for b.Loop() {
		for _, l := range lookups {
			var candidates, matches int
			for j := 0; j < 300; j++ {
				q := l.part(names[r.IntN(n)])
				toks, ok := key.Query(l.op, q)
				if !ok {
					b.Fatalf("%s: a query the tokens can't narrow", l.name)
				}
				for _, row := range candidateRows(postings, toks) {
					candidates++
					if l.match(names[row], q) {
						matches++
					}
				}
			}
			b.ReportMetric(float64(candidates-matches)/float64(candidates), "fp-"+l.name)
			b.ReportMetric(float64(candidates)/300, "cand-"+l.name)
		}
	}
}

// candidateRows are the rows holding every token (a sorted intersection).
func candidateRows(postings map[searchindex.Token][]int32, toks []searchindex.Token) []int32 {
	out := postings[toks[0]]
	for _, tok := range toks[1:] {
		var next []int32
		p := postings[tok]
		for i, j := 0, 0; i < len(out) && j < len(p); {
			switch {
			case out[i] < p[j]:
				i++
			case out[i] > p[j]:
				j++
			default:
				next = append(next, out[i])
				i++
				j++
			}
		}
		out = next
	}
	return out
}

// BenchmarkSearchIndexSize reports what the search index costs a protected
// identity on each engine (PostgreSQL when ACCOUNTS_TEST_POSTGRES is set),
// over 20,000 of them seeded as the scale benchmark seeds them (a first
// name, a surname with syllables, an e-mail address):
//
//	go test -run '^$' -bench SearchIndexSize -benchtime 1x ./internal/records/
//
// tokens/row is the mean number of tokens; column-B/row the bytes of the
// row's token column; index-B/row those of the index over it (SQLite: the
// FTS5 table's pages; PostgreSQL: the GIN index, after its pending list
// is merged).
func BenchmarkSearchIndexSize(b *testing.B) {
	const n = 20_000
	engines := []string{"sqlite"}
	if os.Getenv(storetest.PostgresEnv) != "" {
		engines = append(engines, "postgres")
	}
	for _, engine := range engines {
		b.Run(engine, func(b *testing.B) {
			ctx := context.Background()
			catalog := schema.New()
			var db store.Store
			var raw *sql.DB
			var err error
			if engine == "sqlite" {
				path := filepath.Join(b.TempDir(), "a.db")
				db, err = sqlite.Open(ctx, path, catalog)
				if err == nil {
					raw, err = sql.Open("sqlite", "file:"+path)
				}
			} else {
				url := storetest.PostgresURL(b)
				db, err = postgres.Open(ctx, url, catalog)
				if err == nil {
					raw, err = sql.Open("pgx", url)
				}
			}
			if err != nil {
				b.Fatal(err)
			}
			defer db.Close()
			defer raw.Close()
			master, _ := seal.ParseMasterKey(seal.GenerateMasterKey())
			ks, err := keystore.Open(ctx, filepath.Join(b.TempDir(), "a.keys"))
			if err != nil {
				b.Fatal(err)
			}
			defer ks.Close()
			s := New(catalog, db, seal.NewKeyring(master, nil, ks), nil)
			p := listNewCustomer(b, ctx, db, ks, master, "Size One")
			spell := func(x int) string {
				var sb strings.Builder
				for range 5 {
					sb.WriteString(syntheticSyllables[x&15])
					x >>= 4
				}
				return sb.String()
			}
			tenantRes, piRes := catalog.Resource(schema.Tenant), catalog.Resource(schema.ProtectedIdentity)
			for start := 0; start < n; start += 1000 {
				tenants := make([]Body, 1000)
				for k := range tenants {
					tenants[k] = listBody(b, "last_name", "Storlek")
				}
				made, err := s.Bulk(ctx, p, tenantRes, tenants)
				if err != nil {
					b.Fatal(err)
				}
				pis := make([]Body, 1000)
				for k := range pis {
					i := start + k
					pis[k] = listBody(b, "tenant", listRef(made[k].ID), "first_name", spell(i+1<<19),
						"last_name", syntheticSurnames[i%len(syntheticSurnames)]+spell(i), "email", fmt.Sprintf("skala%07d@example.se", i))
				}
				if _, err := s.Bulk(ctx, p, piRes, pis); err != nil {
					b.Fatal(err)
				}
			}
			var tokens, column, index float64
			if engine == "sqlite" {
				// The row holds the number of its tokens (a header byte and
				// an integer of one or two bytes), the FTS5 index the tokens.
				err = raw.QueryRow(strings.ReplaceAll(`SELECT (SELECT sum(TOKENS) FROM protected_identities),
					(SELECT sum(1 + CASE WHEN TOKENS < 128 THEN 1 ELSE 2 END) FROM protected_identities),
					(SELECT sum(pgsize) FROM dbstat WHERE name LIKE 'protected_identities_search%')`, "TOKENS", sqlbuild.TokensColumn)).Scan(&tokens, &column, &index)
			} else {
				if _, err = raw.Exec(`SELECT gin_clean_pending_list('protected_identities_search')`); err == nil {
					err = raw.QueryRow(strings.ReplaceAll(`SELECT sum(cardinality(TOKENS)), sum(pg_column_size(TOKENS)),
						pg_relation_size('protected_identities_search') FROM protected_identities`, "TOKENS", sqlbuild.TokensColumn)).Scan(&tokens, &column, &index)
				}
			}
			if err != nil {
				b.Fatal(err)
			}
			for b.Loop() {
			}
			b.ReportMetric(tokens/n, "tokens/row")
			b.ReportMetric(column/n, "column-B/row")
			b.ReportMetric(index/n, "index-B/row")
		})
	}
}
