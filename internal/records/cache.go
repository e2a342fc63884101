package records

import (
	"context"
	"hash/maphash"
	"slices"
	"strings"
	"sync"
	"time"

	"accounts/internal/query"
	"accounts/internal/schema"
	"accounts/internal/seal"
	"accounts/internal/store"
)

// objectCache keeps a customer's decoded objects of one resource in memory,
// so that a list that filters, searches or sorts on personal fields does not
// decrypt every row on every request. It is only a cache: each use checks
// it against the database's list version inside the reading transaction,
// takes in the rows written since, and rebuilds it when rows were deleted.
// So it is exact under any number of processes writing the same database.
//
// It holds decrypted personal data, so it is bounded: sets above maxRows
// are not cached, the whole cache holds at most maxTotal objects (least
// recently used customers go first), and entries unused for ttl are dropped.
type objectCache struct {
	mu       sync.Mutex
	entries  map[cacheKey]*cacheEntry
	total    int
	maxRows  int
	maxTotal int
	ttl      time.Duration
	// refreshing serializes the refreshes of an entry: a key's refresh
	// holds the slot its hash picks (a send into a channel of one).
	refreshing [refreshSlots]chan struct{}
	seed       maphash.Seed
}

// refreshSlots is how many entries can be refreshed at once; keys whose
// hashes pick the same slot take turns.
const refreshSlots = 64

type cacheKey struct {
	customerID string
	res        *schema.Resource
}

type cacheEntry struct {
	version int64
	set     *objectSet
	used    time.Time
}

// objectSet is one customer's objects of a resource, with each filterable
// field's values also laid out as a column: filtering and sorting thousands
// of objects then reads arrays instead of chasing one map per object. Its
// objects and columns are never changed once built; what lists derive from
// them and reuse (lower-cased columns, orders) is added as they ask.
type objectSet struct {
	objects []Object
	columns map[*schema.Field][]any

	mu sync.Mutex
	// folded holds a text column's values folded (query.Fold;
	// "" for a value that is not a string), for case-insensitive filters
	// and _search. Personal values among them live and go with the set,
	// under the cache's bounds.
	folded map[*schema.Field][]string
	// orders holds every position in the order of an _order_by, by its
	// field names and directions, at most maxOrders of them.
	orders map[string][]int
}

// maxOrders bounds the orders an objectSet keeps: each is a position per
// object.
const maxOrders = 8

func newObjectSet(res *schema.Resource, byID map[string]Object) *objectSet {
	set := &objectSet{objects: make([]Object, 0, len(byID)), columns: map[*schema.Field][]any{},
		folded: map[*schema.Field][]string{}, orders: map[string][]int{}}
	for _, o := range byID {
		set.objects = append(set.objects, o)
	}
	fields := append([]*schema.Field{schema.IDField, schema.CreatedAtField}, res.Fields...)
	for _, f := range fields {
		col := make([]any, len(set.objects))
		for i, o := range set.objects {
			col[i] = valueOf(o, f)
		}
		set.columns[f] = col
	}
	return set
}

func newObjectCache(maxRows, maxTotal int, ttl time.Duration) *objectCache {
	c := &objectCache{entries: map[cacheKey]*cacheEntry{}, maxRows: maxRows, maxTotal: maxTotal, ttl: ttl, seed: maphash.MakeSeed()}
	for i := range c.refreshing {
		c.refreshing[i] = make(chan struct{}, 1)
	}
	return c
}

// lockRefresh waits until no other caller refreshes k's entry (or ctx
// ends), and returns the function that lets the next one in.
func (c *objectCache) lockRefresh(ctx context.Context, k cacheKey) (func(), error) {
	slot := c.refreshing[maphash.String(c.seed, k.customerID+"\x00"+k.res.Name)%refreshSlots]
	select {
	case slot <- struct{}{}:
		return func() { <-slot }, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

func (c *objectCache) get(k cacheKey, now time.Time) *cacheEntry {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.expire(now)
	e := c.entries[k]
	if e != nil {
		e.used = now
	}
	return e
}

func (c *objectCache) put(k cacheKey, version int64, set *objectSet, now time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if old := c.entries[k]; old != nil {
		if old.version > version {
			return // a newer view is already there
		}
		c.total -= len(old.set.objects)
	}
	c.entries[k] = &cacheEntry{version: version, set: set, used: now}
	c.total += len(set.objects)
	for c.total > c.maxTotal {
		var oldest cacheKey
		var oldestUsed time.Time
		for key, e := range c.entries {
			if oldestUsed.IsZero() || e.used.Before(oldestUsed) {
				oldest, oldestUsed = key, e.used
			}
		}
		c.total -= len(c.entries[oldest].set.objects)
		delete(c.entries, oldest)
	}
}

// expire drops entries unused for longer than ttl. Called with mu held.
func (c *objectCache) expire(now time.Time) {
	for k, e := range c.entries {
		if now.Sub(e.used) > c.ttl {
			c.total -= len(e.set.objects)
			delete(c.entries, k)
		}
	}
}

// currentObjects returns the customer's cached objects of res when they are
// as of the list version the database holds now, which it reads by one
// statement outside any transaction; nil when the cache holds none or an
// older view. A list answered from them needs no transaction: on
// PostgreSQL, two round trips (BEGIN, COMMIT) fewer. A customer with no
// entry (one too large to cache, say) costs no version read here.
func (s *Service) currentObjects(ctx context.Context, customerID string, res *schema.Resource) (*objectSet, error) {
	key := cacheKey{customerID: customerID, res: res}
	if s.cache.maxRows == 0 || s.cache.get(key, s.now()) == nil {
		return nil, nil
	}
	version, err := s.db.Version(ctx, customerID, res)
	if err != nil {
		return nil, err
	}
	// Looked up again: another list may have brought it up to date since.
	if entry := s.cache.get(key, s.now()); entry != nil && entry.version == version {
		return entry.set, nil
	}
	return nil, nil
}

// objects returns every object of the customer's resource as of tx, from the
// cache when it is current, refreshing it otherwise. ok is false when the
// set is too large to cache; the caller then scans.
// Every row read counts on meter.
func (s *Service) objects(ctx context.Context, tx store.Tx, keys *seal.CustomerKeys, customerID string, res *schema.Resource, meter *workMeter) (*objectSet, bool, error) {
	if s.cache.maxRows == 0 {
		return nil, false, nil // the cache is off
	}
	version, err := tx.Version(ctx, customerID, res)
	if err != nil {
		return nil, false, err
	}
	key := cacheKey{customerID: customerID, res: res}
	entry := s.cache.get(key, s.now())
	if entry != nil && entry.version == version {
		return entry.set, true, nil
	}
	// One refresh of an entry at a time: the lists that find it stale
	// together wait for the first to take in the changes and use its set,
	// instead of each decrypting the same rows at once.
	release, err := s.cache.lockRefresh(ctx, key)
	if err != nil {
		return nil, false, err
	}
	defer release()
	if entry = s.cache.get(key, s.now()); entry != nil && entry.version == version {
		return entry.set, true, nil
	}
	// A customer too large for the cache is told by reading past the
	// bound, not by counting all its rows at every list.
	if larger, err := tx.Larger(ctx, customerID, res, s.cache.maxRows); err != nil || larger {
		return nil, false, err
	}
	count, err := tx.Count(ctx, customerID, res, nil)
	if err != nil {
		return nil, false, err
	}
	objects := make(map[string]Object, count)
	spec := store.ListSpec{}
	if entry != nil && entry.version < version {
		// Take in what changed since; if anything was deleted, the count
		// tells, and the whole set is read again.
		for _, o := range entry.set.objects {
			objects[o.ID] = o
		}
		spec.Since = entry.version
	}
	read := func(spec store.ListSpec) error {
		return tx.List(ctx, customerID, res, spec, func(row store.Row) error {
			if err := meter.row(); err != nil {
				return err
			}
			obj, err := fromRow(keys, res, row, true)
			objects[obj.ID] = obj
			return err
		})
	}
	if err := read(spec); err != nil {
		return nil, false, err
	}
	if len(objects) != count {
		clear(objects)
		if err := read(store.ListSpec{}); err != nil {
			return nil, false, err
		}
	}
	set := newObjectSet(res, objects)
	s.cache.put(key, version, set, s.now())
	return set, true, nil
}

// page emits, in q's order, the objects that pass every filter of q and
// its search, from the first-th match to the last-th (last < 0: no end),
// and returns the number of matches. Without statistics it stops at the
// last match it emits: the count is then only what it has seen. With
// maxRows above 0 (Service.sortRows) it refuses, before emitting, what a
// sort in memory would (memorySort): more than maxRows matches for an
// unpaged list or a page ending past maxRows.
func (set *objectSet) page(res *schema.Resource, q query.Query, first, last, maxRows int, emit func(Object) error) (int, error) {
	match := set.matcher(res, q)
	order := set.ordered(q.Order)
	if maxRows > 0 && (last < 0 || last >= maxRows) {
		matches := 0
		for _, i := range order {
			if !match(i) {
				continue
			}
			if matches++; matches <= maxRows {
				continue
			}
			if last < 0 {
				return 0, errUnpagedSort(maxRows)
			}
			return 0, errPageBeyondSort(maxRows)
		}
	}
	count := 0
	for _, i := range order {
		if !match(i) {
			continue
		}
		if count >= first && (last < 0 || count <= last) {
			if err := emit(set.objects[i]); err != nil {
				return count, err
			}
		}
		count++
		if last >= 0 && count > last && !q.Statistics {
			break
		}
	}
	return count, nil
}

// matcher returns a test of the object at a position against every filter
// of q and its search, reading the columns. Case-insensitive filters and
// the search compare lower-cased columns with the term lower-cased once.
func (set *objectSet) matcher(res *schema.Resource, q query.Query) func(int) bool {
	var tests []func(int) bool
	for _, f := range q.Filters {
		col := set.columns[f.Field]
		if m := f.FoldedMatcher(); m != nil {
			folded := set.foldedColumn(f.Field)
			nullMatches := f.Match(nil)
			tests = append(tests, func(i int) bool {
				if col[i] == nil {
					return nullMatches
				}
				return m(folded[i])
			})
			continue
		}
		tests = append(tests, func(i int) bool { return f.Match(col[i]) })
	}
	if q.Search != "" {
		term := query.Fold(q.Search)
		var cols [][]string
		for _, f := range res.SearchFields() {
			cols = append(cols, set.foldedColumn(f))
		}
		tests = append(tests, func(i int) bool {
			for _, col := range cols {
				if strings.Contains(col[i], term) {
					return true
				}
			}
			return false
		})
	}
	return func(i int) bool {
		for _, test := range tests {
			if !test(i) {
				return false
			}
		}
		return true
	}
}

// foldedColumn returns f's column lower-cased, making it on first use.
func (set *objectSet) foldedColumn(f *schema.Field) []string {
	set.mu.Lock()
	defer set.mu.Unlock()
	if col, ok := set.folded[f]; ok {
		return col
	}
	col := make([]string, len(set.objects))
	for i, v := range set.columns[f] {
		s, _ := v.(string)
		col[i] = query.Fold(s)
	}
	set.folded[f] = col
	return col
}

// ordered returns every position in the order of the keys, sorting on
// first use of that order and keeping the result (for up to maxOrders
// orders; others are sorted on each use).
func (set *objectSet) ordered(order []query.OrderKey) []int {
	var key strings.Builder
	for _, k := range order {
		key.WriteString(k.Field.Name)
		if k.Desc {
			key.WriteString(" desc")
		}
		key.WriteByte(',')
	}
	set.mu.Lock()
	positions, ok := set.orders[key.String()]
	set.mu.Unlock()
	if ok {
		return positions
	}
	positions = make([]int, len(set.objects))
	for i := range positions {
		positions[i] = i
	}
	set.sort(positions, order)
	set.mu.Lock()
	if len(set.orders) < maxOrders {
		set.orders[key.String()] = positions
	}
	set.mu.Unlock()
	return positions
}

// sort orders positions by the order keys, reading the columns. The keys
// end with id, which is unique, so the order is total and an unstable sort
// is deterministic.
func (set *objectSet) sort(positions []int, order []query.OrderKey) {
	cols := make([][]any, len(order))
	for j, k := range order {
		cols[j] = set.columns[k.Field]
	}
	slices.SortFunc(positions, func(a, b int) int {
		for j, k := range order {
			if c := query.Compare(cols[j][a], cols[j][b]); c != 0 {
				if k.Desc {
					return -c
				}
				return c
			}
		}
		return 0
	})
}
