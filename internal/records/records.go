// Package records is the service: create, get, update and delete objects of
// any declared resource for an authenticated client. It enforces every rule
// of the contract that every entry point must share (field rules, cross-field
// rules, references, uniqueness, cascades, the customer boundary) and seals
// personal fields before they reach the store.
package records

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"accounts/internal/apperr"
	"accounts/internal/audit"
	"accounts/internal/auth"
	"accounts/internal/limit"
	"accounts/internal/schema"
	"accounts/internal/seal"
	"accounts/internal/store"

	"github.com/google/uuid"
)

// Object is one object of a resource, with every field (nil for null).
type Object struct {
	Resource  *schema.Resource
	ID        string
	CreatedAt time.Time
	Values    schema.Values
}

// Body is a decoded request object: each key with its raw JSON value.
type Body map[string]json.RawMessage

// readOnly fields are ignored when a client sends them.
var readOnly = map[string]bool{"id": true, "created_at": true}

// Service serves every resource of a catalog.
type Service struct {
	catalog *schema.Catalog
	db      store.Store
	keys    *seal.Keyring
	cache   *objectCache
	// candidates bounds the rows a list reads through the search tokens
	// (0: lists don't use them).
	candidates int
	reads      *readLog
	limits     *limit.Limits
	now        func() time.Time
}

// Bounds of the decoded-object cache that lists on personal fields use: a
// customer's resource of up to the limits' ListCacheRows objects
// (cacheMaxRows without limits) is cached, at most cacheMaxTotal objects
// in all, each set for at most cacheTTL unused.
const (
	cacheMaxRows  = 50_000
	cacheMaxTotal = 200_000
	cacheTTL      = 5 * time.Minute
)

// New returns a Service over db, sealing with keys; limits admit its
// expensive work and bound its list cache (nil: no limits, the default
// cache).
func New(catalog *schema.Catalog, db store.Store, keys *seal.Keyring, limits *limit.Limits) *Service {
	cacheRows, candidates := cacheMaxRows, defaultSearchCandidates
	if limits != nil {
		cacheRows, candidates = limits.Config().ListCacheRows, limits.Config().SearchCandidates
	}
	return &Service{
		catalog:    catalog,
		db:         db,
		keys:       keys,
		cache:      newObjectCache(cacheRows, cacheMaxTotal, cacheTTL),
		candidates: candidates,
		reads:      newReadLog(db),
		limits:     limits,
		now:        time.Now,
	}
}

var (
	errNotFound  = apperr.New(apperr.NotFound, nil)
	errForbidden = apperr.New(apperr.Forbidden, nil)
)

// Create validates body as a new object of res and stores it. Everything
// that needs no transaction (decoding, the rules, sealing and blind
// indexing) is done before the write is queued: the store's writes share
// transactions (group commit), and work done inside one delays every
// write of its batch.
func (s *Service) Create(ctx context.Context, p auth.Principal, res *schema.Resource, body Body) (Object, error) {
	if !p.CanWrite() {
		return Object{}, errForbidden
	}
	values, errs := s.decode(res, body, true)
	if len(errs) > 0 || checkRules(res, values) != nil {
		return Object{}, s.invalid(ctx, p.CustomerID, res, "", values, errs)
	}
	keys, err := s.customerKeys(ctx, p.CustomerID)
	if err != nil {
		return Object{}, err
	}
	obj, row := s.newObject(keys, res, values)
	err = s.db.Update(ctx, func(tx store.Tx) error {
		w := &auditWrites{}
		if err := s.insertIn(ctx, tx, w, p, obj, row); err != nil {
			return err
		}
		return w.flush(ctx, tx)
	})
	if err != nil {
		return Object{}, err
	}
	return obj, nil
}

// newObject makes a new object of decoded values and seals it: the part
// of a create that needs no transaction.
func (s *Service) newObject(keys *seal.CustomerKeys, res *schema.Resource, values schema.Values) (Object, store.Row) {
	obj := Object{
		Resource:  res,
		ID:        uuid.NewString(),
		CreatedAt: s.now().UTC().Truncate(time.Microsecond),
		Values:    values,
	}
	return obj, toRow(keys, obj)
}

// createIn seals a new object of decoded values and inserts it, all inside
// the transaction: for bulk writes, whose items are sealed one at a time so
// that the bulk writes waiting for the writer don't each hold a thousand
// sealed rows.
func (s *Service) createIn(ctx context.Context, tx store.Tx, keys *seal.CustomerKeys, w *auditWrites, p auth.Principal, res *schema.Resource, values schema.Values) (Object, error) {
	obj, row := s.newObject(keys, res, values)
	return obj, s.insertIn(ctx, tx, w, p, obj, row)
}

// insertIn validates a new object and inserts it, sealed as row.
func (s *Service) insertIn(ctx context.Context, tx store.Tx, w *auditWrites, p auth.Principal, obj Object, row store.Row) error {
	if err := lockAncestry(ctx, tx, p.CustomerID, obj.Resource, obj.Values); err != nil {
		return err
	}
	if err := s.validate(ctx, tx, p.CustomerID, obj.Resource, obj.ID, obj.Values, nil, apperr.FieldErrors{}); err != nil {
		return err
	}
	if err := constraintErr(obj, tx.Insert(ctx, p.CustomerID, obj.Resource, row)); err != nil {
		return err
	}
	w.add(s, ctx, p, audit.Create, obj.Resource, obj.ID, setFields(obj.Resource, obj.Values))
	return nil
}

// Get returns one object of the customer.
func (s *Service) Get(ctx context.Context, p auth.Principal, res *schema.Resource, id string) (Object, error) {
	keys, err := s.customerKeys(ctx, p.CustomerID)
	if err != nil {
		return Object{}, err
	}
	var obj Object
	err = s.retryOnNewKeys(ctx, p.CustomerID, &keys, func() error {
		row, err := s.db.Get(ctx, p.CustomerID, res, id)
		if err != nil {
			return notFound(err)
		}
		obj, err = fromRow(keys, res, row, true)
		return err
	})
	if err != nil {
		return Object{}, err
	}
	if audits(res) {
		if err := s.reads.record(ctx, s.entry(ctx, p, audit.Read, res, []string{id}, setFields(res, obj.Values))); err != nil {
			return Object{}, fmt.Errorf("records: audit: %w", err)
		}
	}
	return obj, nil
}

// Update applies body as a partial update of one object and returns the
// whole object after it. Cross-field rules see the object as it will be.
func (s *Service) Update(ctx context.Context, p auth.Principal, res *schema.Resource, id string, body Body) (Object, error) {
	if !p.CanWrite() {
		return Object{}, errForbidden
	}
	changes, errs := s.decode(res, body, false)
	if len(errs) > 0 {
		return Object{}, s.invalid(ctx, p.CustomerID, res, id, changes, errs)
	}
	keys, err := s.customerKeys(ctx, p.CustomerID)
	if err != nil {
		return Object{}, err
	}
	var obj Object
	err = s.retryOnNewKeys(ctx, p.CustomerID, &keys, func() error {
		return s.db.Update(ctx, func(tx store.Tx) error {
			w := &auditWrites{}
			var err error
			if obj, err = s.updateIn(ctx, tx, keys, w, p, res, id, changes); err != nil {
				return err
			}
			return w.flush(ctx, tx)
		})
	})
	return obj, err
}

// updateIn applies decoded changes to one stored object.
func (s *Service) updateIn(ctx context.Context, tx store.Tx, keys *seal.CustomerKeys, w *auditWrites, p auth.Principal, res *schema.Resource, id string, changes schema.Values) (Object, error) {
	customerID := p.CustomerID
	// Before the row's lock: writes of links take the ancestry lock
	// first, then their rows, all in that order.
	if err := lockAncestry(ctx, tx, customerID, res, changes); err != nil {
		return Object{}, err
	}
	row, err := tx.Get(ctx, customerID, res, id, store.ForUpdate)
	if err != nil {
		return Object{}, notFound(err)
	}
	obj, err := fromRow(keys, res, row, true)
	if err != nil {
		return Object{}, err
	}
	before := obj.Values
	obj.Values = make(schema.Values, len(before))
	for k, v := range before {
		obj.Values[k] = v
	}
	for k, v := range changes {
		obj.Values[k] = v
	}
	if err := s.validate(ctx, tx, customerID, res, id, obj.Values, before, apperr.FieldErrors{}); err != nil {
		return Object{}, err
	}
	if err := constraintErr(obj, tx.Update(ctx, customerID, res, toRow(keys, obj))); err != nil {
		return Object{}, err
	}
	ancestryOf(ctx).forget(res, id)
	// The response carries the whole object: the entry names the fields
	// changed and the fields read back.
	w.add(s, ctx, p, audit.Update, res, obj.ID, sentOrSetFields(res, changes, obj.Values))
	return obj, nil
}

// retryOnNewKeys runs op, and once more after reading the customer's keys
// again (into *keys) when op met a value sealed under a data key version
// made since they were loaded: a rotate-data has been running meanwhile.
func (s *Service) retryOnNewKeys(ctx context.Context, customerID string, keys **seal.CustomerKeys, op func() error) error {
	err := op()
	if !errors.Is(err, seal.ErrUnknownVersion) {
		return err
	}
	fresh, err := s.keys.Refresh(ctx, customerID)
	if err != nil {
		return fmt.Errorf("records: customer keys: %w", err)
	}
	*keys = fresh
	return op()
}

func (s *Service) customerKeys(ctx context.Context, customerID string) (*seal.CustomerKeys, error) {
	keys, err := s.keys.Customer(ctx, customerID)
	if err != nil {
		return nil, fmt.Errorf("records: customer keys: %w", err)
	}
	return keys, nil
}

// Delete removes one object, deletes the objects that cascade from it and
// nulls every other reference to it, in one transaction.
func (s *Service) Delete(ctx context.Context, p auth.Principal, res *schema.Resource, id string) error {
	if !p.CanWrite() {
		return errForbidden
	}
	return s.db.Update(ctx, func(tx store.Tx) error {
		w := &auditWrites{}
		if err := s.deleteIn(ctx, tx, w, p, res, id, audit.Delete); err != nil {
			return err
		}
		return w.flush(ctx, tx)
	})
}

// deleteIn deletes one object and what cascades from it, recording each
// deletion of personal data: the object's own with action, the cascaded
// ones as cascade_delete.
func (s *Service) deleteIn(ctx context.Context, tx store.Tx, w *auditWrites, p auth.Principal, res *schema.Resource, id string, action audit.Action) error {
	customerID := p.CustomerID
	if _, err := tx.Get(ctx, customerID, res, id, store.ForDelete); err != nil {
		return notFound(err)
	}
	for _, r := range s.catalog.ReferencesTo(res) {
		if r.Field.OnDelete == schema.Cascade {
			ids, err := tx.Referencing(ctx, customerID, r.Resource, r.Field, id)
			if err != nil {
				return err
			}
			for _, child := range ids {
				if err := s.deleteIn(ctx, tx, w, p, r.Resource, child, audit.CascadeDelete); err != nil {
					return err
				}
			}
			continue
		}
		if err := tx.ClearReferences(ctx, customerID, r.Resource, r.Field, id); err != nil {
			return err
		}
	}
	if err := tx.Delete(ctx, customerID, res, id); err != nil {
		return notFound(err)
	}
	w.add(s, ctx, p, action, res, id, personalNames(res))
	return nil
}

// Lookup answers whether the customer has the object: nil, or the 404's
// error. An update whose body can't be read asks it before it answers
// so, as Django REST Framework looks the object up before it reads the
// body: an update of no object is a 404 whatever it sent.
func (s *Service) Lookup(ctx context.Context, p auth.Principal, res *schema.Resource, id string) error {
	return s.db.View(ctx, func(tx store.Tx) error {
		return exists(ctx, tx, p.CustomerID, res, id)
	})
}

// exists is nil when the customer has the object, else the 404's error.
func exists(ctx context.Context, tx store.Tx, customerID string, res *schema.Resource, id string) error {
	found, err := tx.Exists(ctx, customerID, res, id)
	if err != nil {
		return err
	}
	if !found {
		return errNotFound
	}
	return nil
}

// decode validates each key of body. On create, fields left out get their
// default (or an error when required); on update only the sent fields are
// returned.
func (s *Service) decode(res *schema.Resource, body Body, create bool) (schema.Values, apperr.FieldErrors) {
	values := schema.Values{}
	errs := apperr.FieldErrors{}
	for key, raw := range body {
		if readOnly[key] {
			continue
		}
		f := res.Field(key)
		if f == nil {
			errs.Add(key, schema.MsgUnknownField)
			continue
		}
		v, msg := f.Decode(raw)
		if msg != "" {
			errs.Add(key, msg)
			continue
		}
		values[key] = v
	}
	if create {
		for _, f := range res.Fields {
			if _, sent := body[f.Name]; sent {
				continue
			}
			switch {
			case f.Required:
				errs.Add(f.Name, schema.MsgRequired)
			default:
				values[f.Name] = f.Default
			}
		}
	}
	return values, errs
}

func checkRules(res *schema.Resource, v schema.Values) error {
	errs := apperr.FieldErrors{}
	for _, r := range res.Rules {
		r.Check(v, errs)
	}
	return errs.Err()
}

// invalid answers a body that fails its decoding (errs) or the rules
// across fields: it looks up what failing looks up in the database, in a
// read transaction, so that the answer is the one the write would give.
func (s *Service) invalid(ctx context.Context, customerID string, res *schema.Resource, id string, values schema.Values, errs apperr.FieldErrors) error {
	err := s.db.View(ctx, func(tx store.Tx) error {
		return s.failing(ctx, tx, customerID, res, id, values, errs)
	})
	if err == nil {
		// Unreachable while the caller's body fails: never let it pass.
		return fmt.Errorf("records: a failing %s body validated", res.Name)
	}
	return err
}

// failing checks a body that fails before its write (errs, or its rules
// across fields): an update's object first (id set), whose absence is the
// 404 whatever the body, as Django REST Framework looks the object up
// before it validates; then validate's lookups.
func (s *Service) failing(ctx context.Context, tx store.Tx, customerID string, res *schema.Resource, id string, values schema.Values, errs apperr.FieldErrors) error {
	if id != "" {
		if err := exists(ctx, tx, customerID, res, id); err != nil {
			return err
		}
	}
	return s.validate(ctx, tx, customerID, res, id, values, nil, errs)
}

// validate checks a write's values in Django REST Framework's order: every
// field first (errs holds the errors of their decoding; a reference must
// name an object of the customer and close no loop, a unique value must be
// no other object's), and the rules across fields only once every field
// is valid, so that a body with field errors gets those alone. id is the
// object's own; only values new or changed against before (nil: all) are
// looked up. A unique value is looked up only when the body fails anyway:
// else the write's constraint finds it taken (constraintErr), at no
// statement of its own.
func (s *Service) validate(ctx context.Context, tx store.Tx, customerID string, res *schema.Resource, id string, values, before schema.Values, errs apperr.FieldErrors) error {
	changed := func(f *schema.Field) (string, bool) {
		v, _ := values[f.Name].(string)
		return v, v != "" && (before == nil || before[f.Name] != v)
	}
	for _, f := range res.Fields {
		target, ok := changed(f)
		if f.Type != schema.Ref || !ok {
			continue
		}
		exists, err := tx.Exists(ctx, customerID, s.catalog.Resource(f.Target), target)
		if err != nil {
			return err
		}
		if !exists {
			errs.Add(f.Name, schema.MsgNotExist(target))
			continue
		}
		if f.Acyclic {
			cyclic, err := s.formsCycle(ctx, tx, customerID, res, f, id, target)
			if err != nil {
				return err
			}
			if cyclic {
				errs.Add(f.Name, "An object can't be its own ancestor.")
			}
		}
	}
	var rules error
	if len(errs) == 0 {
		if rules = checkRules(res, values); rules == nil {
			return nil
		}
	}
	for _, f := range res.Fields {
		v, ok := changed(f)
		if !f.Unique || !ok || errs.Has(f.Name) {
			continue
		}
		where := []store.Condition{{Column: f.Column(), Op: store.Eq, Values: []any{v}}}
		if id != "" {
			where = append(where, store.Condition{Column: "id", Op: store.Eq, Negate: true, Values: []any{id}})
		}
		n, err := tx.Count(ctx, customerID, res, where)
		if err != nil {
			return err
		}
		if n > 0 {
			errs.Add(f.Name, msgTaken(res, f))
		}
	}
	if len(errs) > 0 {
		return errs.Err()
	}
	return rules
}

// msgTaken is the error of a unique field whose value another object has.
func msgTaken(res *schema.Resource, f *schema.Field) string {
	return fmt.Sprintf("%s with this %s already exists.", strings.ToLower(res.Name), f.Name)
}

// formsCycle walks up from parent along f and reports whether it reaches id.
// Within a bulk write it reads each link once (ancestry).
func (s *Service) formsCycle(ctx context.Context, tx store.Tx, customerID string, res *schema.Resource, f *schema.Field, id, parent string) (bool, error) {
	known := ancestryOf(ctx)
	seen := map[string]bool{}
	for parent != "" {
		if parent == id {
			return true, nil
		}
		if seen[parent] {
			return false, nil // a loop above us that does not include id
		}
		seen[parent] = true
		next, ok := known.parent(f, parent)
		if !ok {
			// Under the ancestry lock (lockAncestry): no other write
			// changes a link before this one commits.
			row, err := tx.Get(ctx, customerID, res, parent, store.Unlocked)
			if errors.Is(err, store.ErrNotFound) {
				// Deleted since it was checked, by a transaction that
				// committed meanwhile (a delete does not take the
				// ancestry lock): the chain ends here, as deleting a
				// parent clears its children's references. The write's
				// own reference to it, if it was the parent, then fails
				// as a missing reference (constraintErr).
				return false, nil
			}
			if err != nil {
				return false, err
			}
			next, _ = row.Plain[f.Column()].(string)
			known.remember(f, parent, next)
		}
		parent = next
	}
	return false, nil
}

// lockAncestry takes the customer's ancestry lock (store.Tx.LockAncestry)
// when values set an acyclic reference: formsCycle will read that
// reference's ancestors.
func lockAncestry(ctx context.Context, tx store.Tx, customerID string, res *schema.Resource, values schema.Values) error {
	if a := ancestryOf(ctx); a != nil && a.locked {
		return nil // a bulk write took it before its items
	}
	for _, f := range res.Fields {
		if v, _ := values[f.Name].(string); f.Acyclic && v != "" {
			if err := tx.LockAncestry(ctx, customerID, res); err != nil {
				return err
			}
			ancestryOf(ctx).held()
			return nil
		}
	}
	return nil
}

// ancestry remembers the links formsCycle has read for one attempt at a
// bulk write. Each item of a chain built in one bulk write walks up what
// the items before it built: read from the database at every step, a bulk
// of 1,000 such items made half a million reads (6 s on SQLite, past the
// 30 s time limit on PostgreSQL, while the write batch waited). A link is
// read under the customer's ancestry lock (lockAncestry), which no other
// transaction's write of a link passes before this one ends, and only
// while it is held (a bulk item that fails its decoding reads links to
// report its errors, without the lock); the write's own updates forget the
// rows they change, and a failed item, whose savepoint's rollback may also
// release that lock, forgets everything. A nil *ancestry remembers
// nothing: a single write walks its chain once.
type ancestry struct {
	links  map[ancestryLink]string
	locked bool // the ancestry lock is held
}

type ancestryLink struct {
	field *schema.Field
	id    string
}

// ancestryKey is the context key of a bulk write's ancestry.
type ancestryKey struct{}

func withAncestry(ctx context.Context) (context.Context, *ancestry) {
	a := &ancestry{links: map[ancestryLink]string{}}
	return context.WithValue(ctx, ancestryKey{}, a), a
}

func ancestryOf(ctx context.Context) *ancestry {
	a, _ := ctx.Value(ancestryKey{}).(*ancestry)
	return a
}

// held records that the transaction holds the ancestry lock.
func (a *ancestry) held() {
	if a != nil {
		a.locked = true
	}
}

func (a *ancestry) parent(f *schema.Field, id string) (string, bool) {
	if a == nil || !a.locked {
		return "", false
	}
	p, ok := a.links[ancestryLink{f, id}]
	return p, ok
}

func (a *ancestry) remember(f *schema.Field, id, parent string) {
	if a != nil && a.locked {
		a.links[ancestryLink{f, id}] = parent
	}
}

// forget drops what is known of the row id of res, which the write changes.
func (a *ancestry) forget(res *schema.Resource, id string) {
	if a == nil {
		return
	}
	for _, f := range res.Fields {
		delete(a.links, ancestryLink{f, id})
	}
}

// reset drops everything: a failed item's savepoint was rolled back, and
// with it, perhaps, the ancestry lock (taken again by the next item that
// sets a link).
func (a *ancestry) reset() {
	if a != nil {
		clear(a.links)
		a.locked = false
	}
}

// notFound maps the store's not-found to the API's.
func notFound(err error) error {
	if errors.Is(err, store.ErrNotFound) {
		return errNotFound
	}
	return err
}

// constraintErr maps a constraint the database enforced to the field error
// the service would have given: a unique violation (two writers raced for
// the same tenant), or a foreign key violation (a referenced object was
// deleted between the service's check and the write).
func constraintErr(obj Object, err error) error {
	var uv *store.UniqueViolation
	var rv *store.ReferenceViolation
	var column string
	switch {
	case errors.As(err, &uv):
		column = uv.Column
	case errors.As(err, &rv):
		column = rv.Column
	default:
		return err
	}
	res := obj.Resource
	for _, f := range res.Fields {
		if f.Column() != column {
			continue
		}
		errs := apperr.FieldErrors{}
		if uv != nil && f.Unique {
			errs.Add(f.Name, msgTaken(res, f))
			return errs.Err()
		}
		if target, ok := obj.Values[f.Name].(string); rv != nil && ok {
			errs.Add(f.Name, schema.MsgNotExist(target))
			return errs.Err()
		}
	}
	return err
}
