package records

import (
	"context"
	"fmt"
	"net/url"
	"slices"
	"testing"
	"time"

	"accounts/internal/apperr"
	"accounts/internal/auth"
	"accounts/internal/limit"
	"accounts/internal/query"
	"accounts/internal/schema"
	"accounts/internal/seal"
)

// workEnv is a service with limits over a fresh store, and two customers.
type workEnv struct {
	ctx    context.Context
	s      *Service
	limits *limit.Limits
	p, q   auth.Principal
}

func newWorkEnv(t *testing.T, cfg limit.Config) *workEnv {
	t.Helper()
	catalog, db, ks, master := openTestStore(t)
	ctx := context.Background()
	// The cache and the search tokens as serve has them by default.
	cfg.ListCacheRows, cfg.SearchCandidates = cacheMaxRows, defaultSearchCandidates
	limits := limit.New(cfg)
	return &workEnv{
		ctx:    ctx,
		s:      New(catalog, db, seal.NewKeyring(master, nil, ks), limits),
		limits: limits,
		p:      listNewCustomer(t, ctx, db, ks, master, "Work One"),
		q:      listNewCustomer(t, ctx, db, ks, master, "Work Two"),
	}
}

// list runs a list of res for p with the given query parameters.
func (e *workEnv) list(p auth.Principal, res *schema.Resource, params ...string) ([]Object, error) {
	vals := url.Values{}
	for i := 0; i < len(params); i += 2 {
		vals.Set(params[i], params[i+1])
	}
	q, err := query.Parse(res, vals)
	if err != nil {
		return nil, err
	}
	var out []Object
	_, err = e.s.List(e.ctx, p, res, q, func(o Object) error {
		out = append(out, o)
		return nil
	})
	return out, err
}

func wantRefusal(t *testing.T, label string, err error, k apperr.Kind, reason string) {
	t.Helper()
	got, _ := apperr.RefusalOf(err)
	if apperr.KindOf(err) != k || got != reason {
		t.Errorf("%s: error %v, want %v refusal for %s", label, err, k, reason)
	}
}

// A list counts as expensive work once it has read ExpensiveRows rows,
// however its query looks, or, answered from a warm cache, sent as many
// objects; one that reads or sends fewer never asks for a slot.
func TestListIsExpensiveOnceItReadsManyRows(t *testing.T) {
	e := newWorkEnv(t, limit.Config{CustomerExpensive: 1})
	org := e.s.catalog.Resource(schema.Organization)
	items := make([]Body, ExpensiveRows)
	for i := range items {
		items[i] = listBody(t, "name", fmt.Sprintf("Work Org %04d", i))
	}
	if _, err := e.s.Bulk(e.ctx, e.p, org, items); err != nil {
		t.Fatalf("bulk: %v", err)
	}
	// A list of every row reads ExpensiveRows: the largest page, not yet
	// expensive. One more row makes it so.
	release, err := e.limits.Expensive(e.p.CustomerID)
	if err != nil {
		t.Fatal(err)
	}
	if all, err := e.list(e.p, org); err != nil || len(all) != ExpensiveRows {
		t.Fatalf("unpaged list of %d rows: %d objects, error %v", ExpensiveRows, len(all), err)
	}
	release()
	if _, err := e.s.Create(e.ctx, e.p, org, listBody(t, "name", "Work Org last")); err != nil {
		t.Fatal(err)
	}
	release, err = e.limits.Expensive(e.p.CustomerID)
	if err != nil {
		t.Fatal(err)
	}
	_, err = e.list(e.p, org)
	wantRefusal(t, "unpaged list of every row", err, apperr.Throttled, limit.ReasonCustomerExpensive)
	_, err = e.list(e.p, org, "name__icontains", "org 00")
	wantRefusal(t, "filter that builds the cache", err, apperr.Throttled, limit.ReasonCustomerExpensive)
	// A page the database cuts reads no more than the page.
	if page, err := e.list(e.p, org, "_page", "2", "_page_size", "100"); err != nil || len(page) != 100 {
		t.Errorf("page of 100: %d objects, error %v", len(page), err)
	}
	// Another customer's list is not the first customer's work.
	if _, err := e.list(e.q, org); err != nil {
		t.Errorf("another customer's list: %v", err)
	}
	// A bulk write is expensive whatever its size.
	_, err = e.s.Bulk(e.ctx, e.p, org, []Body{listBody(t, "name", "Work Org extra")})
	wantRefusal(t, "bulk write", err, apperr.Throttled, limit.ReasonCustomerExpensive)
	release()

	if all, err := e.list(e.p, org, "name__icontains", "org 00"); err != nil || len(all) != 100 {
		t.Fatalf("filter with a free slot: %d objects, error %v", len(all), err)
	}
	release, err = e.limits.Expensive(e.p.CustomerID)
	if err != nil {
		t.Fatal(err)
	}
	defer release()
	if warm, err := e.list(e.p, org, "name__icontains", "org 01"); err != nil || len(warm) != 100 {
		t.Errorf("filter from the warm cache: %d objects, error %v", len(warm), err)
	}
	_, err = e.list(e.p, org, "name__icontains", "work org")
	wantRefusal(t, "a warm cache's list of every row", err, apperr.Throttled, limit.ReasonCustomerExpensive)
	if used := e.limits.Usage().Expensive; used != 1 {
		t.Errorf("%d expensive slots held after the lists, want the test's 1", used)
	}
}

// Ordering by a personal field holds matches in memory: an unpaged list at
// most SortRows of them, a page the best up to its end, and every object
// held counts against the list memory, given back after. A list the cache
// answers, cold or warm, is held to the same bounds, so the answer never
// depends on the cache; a list ordered by a clear field has no such bound.
func TestOrderByPersonalFieldIsBounded(t *testing.T) {
	lasts := []string{"Ek", "Berg", "Lind", "Ask", "Holm", "Dahl", "Falk", "Gran"}
	var items []Body
	for _, l := range lasts {
		items = append(items, listBody(t, "last_name", l))
	}
	sorted := slices.Sorted(slices.Values(lasts))
	names := func(objs []Object) []string {
		var out []string
		for _, o := range objs {
			out = append(out, o.Values["last_name"].(string))
		}
		return out
	}
	for _, cached := range []bool{false, true} {
		e := newWorkEnv(t, limit.Config{SortRows: 5})
		if !cached {
			e.s.cache = newObjectCache(0, 0, time.Minute)
		}
		tenant := e.s.catalog.Resource(schema.Tenant)
		// Bulk clears the bodies it was given: each service gets a copy.
		if _, err := e.s.Bulk(e.ctx, e.p, tenant, slices.Clone(items)); err != nil {
			t.Fatalf("bulk: %v", err)
		}
		// list asks twice: with the cache, once to fill it, once from it.
		list := func(params ...string) ([]Object, error) {
			objs, err := e.list(e.p, tenant, params...)
			if !cached {
				return objs, err
			}
			again, errAgain := e.list(e.p, tenant, params...)
			if !slices.Equal(names(objs), names(again)) || apperr.KindOf(err) != apperr.KindOf(errAgain) {
				t.Errorf("cached: %v asked twice: %v then %v (errors %v, %v)", params, names(objs), names(again), err, errAgain)
			}
			return again, errAgain
		}
		label := map[bool]string{false: "without the cache", true: "with the cache"}[cached]

		_, err := list("_order_by", "last_name")
		if fe := apperr.FieldsOf(err); apperr.KindOf(err) != apperr.Invalid || !fe.Has("_order_by") || len(fe) != 1 {
			t.Errorf("%s: unpaged order over 8 matches, cap 5: error %v, want a 400 on _order_by", label, err)
		}
		few, err := list("_order_by", "-last_name", "last_name__in", "Ek,Berg,Lind")
		if err != nil || !slices.Equal(names(few), []string{"Lind", "Ek", "Berg"}) {
			t.Errorf("%s: unpaged order over 3 matches: %v, error %v", label, names(few), err)
		}
		for _, pg := range []struct{ page, size int }{{1, 5}, {2, 2}, {1, 1}, {5, 1}} {
			got, err := list("_order_by", "last_name", "_page", fmt.Sprint(pg.page), "_page_size", fmt.Sprint(pg.size))
			from := (pg.page - 1) * pg.size
			if want := sorted[from : from+pg.size]; err != nil || !slices.Equal(names(got), want) {
				t.Errorf("%s: page %d of %d: %v, want %v (error %v)", label, pg.page, pg.size, names(got), want, err)
			}
		}
		_, err = list("_order_by", "last_name", "_page", "2", "_page_size", "3")
		if fe := apperr.FieldsOf(err); apperr.KindOf(err) != apperr.Invalid || !fe.Has("_page") {
			t.Errorf("%s: page ending past the cap: error %v, want a 400 on _page", label, err)
		}
		// A page ending past the cap of fewer matches than the cap: the
		// matches all fit, and the page is as in any other order.
		if got, err := list("_order_by", "last_name", "last_name__in", "Ek,Berg,Lind", "_page", "2", "_page_size", "3"); err != nil || len(got) != 0 {
			t.Errorf("%s: page 2 of 3 of 3 matches, cap 5: %v, error %v, want empty", label, names(got), err)
		}
		if got, err := list("_order_by", "last_name", "last_name__in", "Ek,Berg,Lind", "_page", "1", "_page_size", "6"); err != nil || !slices.Equal(names(got), []string{"Berg", "Ek", "Lind"}) {
			t.Errorf("%s: page 1 of 6 of 3 matches, cap 5: %v, error %v", label, names(got), err)
		}
		// Nothing to hold: a page past the cap of no match is empty.
		if got, err := list("_order_by", "last_name", "last_name", "Nobody", "_page", "2", "_page_size", "3"); err != nil || len(got) != 0 {
			t.Errorf("%s: a page past the cap of no match: %v, error %v, want empty", label, names(got), err)
		}
		// Ordered by a clear field, nothing is held to the cap: not all
		// 8, nor a page past it (a search by tokens, ordered in memory).
		if got, err := list("_order_by", "created_at"); err != nil || len(got) != len(lasts) {
			t.Errorf("%s: unpaged list of 8 by created_at: %d objects, error %v", label, len(got), err)
		}
		if got, err := list("last_name__iexact", "berg", "_page", "6", "_page_size", "1"); err != nil || len(got) != 0 {
			t.Errorf("%s: page 6 of 1 of a search by created_at: %v, error %v, want empty", label, names(got), err)
		}
		if held := e.limits.Usage().ListMemory; held != 0 {
			t.Errorf("%s: %d bytes of list memory held after the lists, want 0", label, held)
		}
	}

	tight := newWorkEnv(t, limit.Config{ListMemory: 100})
	tight.s.cache = newObjectCache(0, 0, time.Minute)
	tenant := tight.s.catalog.Resource(schema.Tenant) // the store knows its own catalog's resources
	if _, err := tight.s.Bulk(tight.ctx, tight.p, tenant, items); err != nil {
		t.Fatalf("bulk: %v", err)
	}
	_, err := tight.list(tight.p, tenant, "_order_by", "last_name", "_page", "1", "_page_size", "2")
	wantRefusal(t, "order past the list memory", err, apperr.Overloaded, limit.ReasonListMemory)
	if held := tight.limits.Usage().ListMemory; held != 0 {
		t.Errorf("%d bytes of list memory held after a refusal, want 0", held)
	}
}
