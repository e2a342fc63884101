package records

import (
	"context"
	"slices"
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
}

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
// of objects then reads arrays instead of chasing one map per object. It is
// never changed once built.
type objectSet struct {
	objects []Object
	columns map[*schema.Field][]any
}

func newObjectSet(res *schema.Resource, byID map[string]Object) *objectSet {
	set := &objectSet{objects: make([]Object, 0, len(byID)), columns: map[*schema.Field][]any{}}
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
	return &objectCache{entries: map[cacheKey]*cacheEntry{}, maxRows: maxRows, maxTotal: maxTotal, ttl: ttl}
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

// objects returns every object of the customer's resource as of tx, from the
// cache when it is current, refreshing it otherwise. ok is false when the
// set is too large to cache; the caller then scans.
// Every row read counts on meter.
func (s *Service) objects(ctx context.Context, tx store.Tx, keys *seal.CustomerKeys, customerID string, res *schema.Resource, meter *workMeter) (*objectSet, bool, error) {
	version, err := tx.Version(ctx, customerID, res)
	if err != nil {
		return nil, false, err
	}
	key := cacheKey{customerID: customerID, res: res}
	entry := s.cache.get(key, s.now())
	if entry != nil && entry.version == version {
		return entry.set, true, nil
	}
	count, err := tx.Count(ctx, customerID, res, nil)
	if err != nil {
		return nil, false, err
	}
	if count > s.cache.maxRows {
		return nil, false, nil
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

// filter returns the positions of the objects that pass every filter of q
// and its search, reading the columns.
func (set *objectSet) filter(res *schema.Resource, q query.Query) []int {
	keep := make([]bool, len(set.objects))
	for i := range keep {
		keep[i] = true
	}
	for _, f := range q.Filters {
		col := set.columns[f.Field]
		for i, v := range col {
			if keep[i] && !f.Match(v) {
				keep[i] = false
			}
		}
	}
	if q.Search != "" {
		var cols [][]any
		for _, f := range res.SearchFields() {
			cols = append(cols, set.columns[f])
		}
		for i := range keep {
			if keep[i] {
				keep[i] = searchHit(cols, i, q.Search)
			}
		}
	}
	var out []int
	for i, k := range keep {
		if k {
			out = append(out, i)
		}
	}
	return out
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

func searchHit(cols [][]any, i int, term string) bool {
	for _, col := range cols {
		if s, ok := col[i].(string); ok && query.ContainsFold(s, term) {
			return true
		}
	}
	return false
}
