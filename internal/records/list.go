package records

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"accounts/internal/audit"
	"accounts/internal/auth"
	"accounts/internal/query"
	"accounts/internal/schema"
	"accounts/internal/seal"
	"accounts/internal/store"
)

// listPlan splits a query between the database and the service. The
// database sees only clear columns, blind indexes and search tokens;
// everything about a personal field's value is decided here, after
// decryption, over rows the database has already narrowed to one customer.
type listPlan struct {
	where []store.Condition
	// inService are the filters the database can't decide (alone).
	inService []query.Filter
	// match narrows to the candidates of the filters and _search that the
	// search tokens can narrow (every candidate is confirmed here).
	match []store.TokenQuery
	// order is the database's order; nil when the service sorts.
	order []store.OrderBy
	// open says the personal fields must be decrypted.
	open bool
}

func plan(keys *seal.CustomerKeys, res *schema.Resource, q query.Query) listPlan {
	p := listPlan{open: !q.Slim || q.Search != ""}
	searched := res.SearchIndexed()
	for _, f := range q.Filters {
		cond, exact := condition(keys, res, f)
		if cond != nil {
			p.where = append(p.where, *cond)
		}
		if !exact {
			p.inService = append(p.inService, f)
			p.open = p.open || f.Field.Personal
		}
		if searched && cond == nil {
			if tq, ok := filterTokens(keys, res, f); ok {
				p.match = append(p.match, tq)
			}
		}
	}
	if searched && q.Search != "" {
		if tq, ok := searchTermTokens(keys, res, q.Search); ok {
			p.match = append(p.match, tq)
		}
	}
	for _, k := range q.Order {
		if k.Field.Personal {
			p.order = nil
			p.open = true
			return p
		}
		p.order = append(p.order, store.OrderBy{Column: k.Field.Column(), Desc: k.Desc})
	}
	return p
}

// condition returns the database condition for a filter, if any, and
// whether it decides the filter exactly (else the service checks it too).
func condition(keys *seal.CustomerKeys, res *schema.Resource, f query.Filter) (*store.Condition, bool) {
	op, ok := storeOps[f.Op]
	if f.Field.Personal {
		if !f.Field.BlindIndexed {
			return nil, false
		}
		col := f.Field.IndexColumn()
		if f.Op == query.IsNull {
			return &store.Condition{Column: col, Op: store.IsNull, Negate: f.Negate, Values: f.Values}, true
		}
		// E-mail addresses are indexed lower-cased, so the index narrows
		// exact and iexact matches and the service confirms them; the other
		// indexed fields are indexed as stored, so the index decides.
		email := f.Field.Type == schema.Email
		if f.Op == query.IExact && email {
			op, ok = store.Eq, true
		}
		if !ok || (email && f.Negate) {
			return nil, false
		}
		// A value's hashes under every index key held: rows are indexed
		// under the key of their seal version (see seal.CustomerKeys), in
		// either form (seal.CustomerKeys.BlindIndexes).
		var hashes []any
		for _, v := range f.Values {
			for _, h := range keys.BlindIndexes(res.Name, f.Field.Name, indexForm(f.Field, v.(string))) {
				hashes = append(hashes, h)
			}
		}
		if op == store.Eq && len(hashes) > 1 {
			op = store.In
		}
		return &store.Condition{Column: col, Op: op, Negate: f.Negate, Values: hashes}, !email
	}
	if !ok {
		return nil, false // substring and case-insensitive matching run in the service
	}
	values := f.Values
	if f.Field.Type == schema.DateTime && op != store.IsNull {
		values = make([]any, len(f.Values))
		for i, v := range f.Values {
			values[i] = formatTime(v)
		}
	}
	return &store.Condition{Column: f.Field.Column(), Op: op, Negate: f.Negate, Values: values}, true
}

var storeOps = map[query.Op]store.CondOp{
	query.Exact: store.Eq, query.In: store.In, query.IsNull: store.IsNull,
	query.GT: store.GT, query.GTE: store.GTE, query.LT: store.LT, query.LTE: store.LTE,
}

// errEmitted refuses to read a list again once part of it has gone out.
var errEmitted = errors.New("records: a list can't be read again once objects went out")

// errStop ends a scan early once a page is complete.
var errStop = errors.New("records: enough rows")

// List emits the objects q selects, in q's order, as they are read when the
// database can order them, so memory does not grow with the result. It
// returns the number of matches before paging when q asks for statistics.
func (s *Service) List(ctx context.Context, p auth.Principal, res *schema.Resource, q query.Query, emit func(Object) error) (int, error) {
	keys, err := s.customerKeys(ctx, p.CustomerID)
	if err != nil {
		return 0, err
	}
	pl := plan(keys, res, q)
	meter, err := newWorkMeter(s.limits, p.CustomerID)
	if err != nil {
		return 0, err
	}
	defer meter.done()
	emitted := false // whether any object has gone out
	out := emit
	emit = func(o Object) error {
		emitted = true
		return out(o)
	}
	var audited *auditedEmit
	if queried := queriedFields(res, q); audits(res) && (!q.Slim || len(queried) > 0) {
		// A slim list carries no personal field, but one that filters,
		// searches or orders on personal fields still tells something of
		// them: it is a read of those fields.
		audited = &auditedEmit{s: s, ctx: ctx, p: p, res: res, emit: emit, queried: queried}
		if q.Paged() {
			audited.buf = make([]Object, 0, min(q.PageSize, listAuditChunk))
		}
		if q.Slim {
			audited.fields = queried
		}
		emit = audited.add
	}
	first, last := 0, -1 // the window of matches to emit, last < 0 for no end
	if q.Paged() {
		first = (q.Page - 1) * q.PageSize
		last = first + q.PageSize - 1
	}
	count := 0
	sortRows := s.sortRows(pl)
	// The service must look at personal values: a small customer's are in
	// the cache of decoded objects, which every filter can be checked
	// against at no decryption. When they are current, the list needs no
	// transaction.
	fromCache := pl.open && (pl.order == nil || len(pl.inService) > 0 || q.Search != "")
	var current *objectSet
	if fromCache {
		if current, err = s.currentObjects(ctx, p.CustomerID, res); err != nil {
			return 0, err
		}
	}
	// A list the cache answers reads no row, but each object it sends
	// costs what one read from the database does, past the decryption:
	// encoding and writing it. So they count as rows read, and a list
	// that sends more than ExpensiveRows is expensive work either way.
	emitCached := func(o Object) error {
		if err := meter.row(); err != nil {
			return err
		}
		return emit(o)
	}
	// A value sealed under a data key version newer than the keys at hand
	// stops the read; when nothing has gone out yet, it is read again with
	// fresh keys (else the error stands: a client never gets a row twice).
	err = s.retryOnNewKeys(ctx, p.CustomerID, &keys, func() error {
		if emitted {
			return errEmitted
		}
		count = 0
		if audited != nil {
			audited.buf = audited.buf[:0]
		}
		if current != nil {
			var err error
			count, err = current.page(res, q, first, last, sortRows, emitCached)
			return err
		}
		return s.db.View(ctx, func(tx store.Tx) error {
			decode := func(row store.Row) (Object, bool, error) {
				if err := meter.row(); err != nil {
					return Object{}, false, err
				}
				obj, err := fromRow(keys, res, row, pl.open)
				if err != nil {
					return Object{}, false, err
				}
				return obj, matches(res, q, pl.inService, obj), nil
			}
			if fromCache {
				set, ok, err := s.objects(ctx, tx, keys, p.CustomerID, res, meter)
				if err != nil {
					return err
				}
				if ok {
					count, err = set.page(res, q, first, last, sortRows, emitCached)
					return err
				}
			}
			if len(pl.match) > 0 && s.candidates > 0 {
				var done bool
				var err error
				if shortTerms(pl.match) && pl.order != nil && q.Paged() && !q.Statistics {
					// A short term matches many rows, likely enough to fill
					// a page from the first rows read in order.
					count, done, err = pageFromFirstRows(ctx, tx, p.CustomerID, res, q, pl, first, last, decode, emit)
					if err != nil || done {
						return err
					}
				}
				// A large customer's (or with the cache off): a selective
				// query is answered from its candidates alone.
				count, done, err = s.listCandidates(ctx, tx, p.CustomerID, res, q, pl, first, last, decode, emit)
				if err != nil || done {
					return err
				}
			}
			switch {
			case pl.order == nil:
				// Sort in memory: every match is needed before the first goes out.
				sorter := newMemorySort(s.limits, q, first, last, sortRows)
				defer sorter.release()
				err := tx.List(ctx, p.CustomerID, res, store.ListSpec{Where: pl.where}, func(row store.Row) error {
					obj, ok, err := decode(row)
					if err != nil || !ok {
						return err
					}
					return sorter.add(obj)
				})
				if err != nil {
					return err
				}
				count = sorter.matches
				return sorter.emit(emit)
			case len(pl.inService) == 0 && q.Search == "":
				// The database decides everything, paging included.
				spec := store.ListSpec{Where: pl.where, Order: pl.order}
				if q.Paged() {
					spec.Limit, spec.Offset = q.PageSize, first
				}
				if q.Statistics {
					if count, err = tx.Count(ctx, p.CustomerID, res, pl.where); err != nil {
						return err
					}
				}
				return tx.List(ctx, p.CustomerID, res, spec, func(row store.Row) error {
					obj, _, err := decode(row)
					if err != nil {
						return err
					}
					return emit(obj)
				})
			default:
				// The database orders and narrows; the service filters as rows stream.
				err := tx.List(ctx, p.CustomerID, res, store.ListSpec{Where: pl.where, Order: pl.order}, func(row store.Row) error {
					obj, ok, err := decode(row)
					if err != nil || !ok {
						return err
					}
					i := count
					count++
					if i >= first && (last < 0 || i <= last) {
						return emit(obj)
					}
					if last >= 0 && i > last && !q.Statistics {
						return errStop
					}
					return nil
				})
				if errors.Is(err, errStop) {
					return nil
				}
				return err
			}
		})
	})
	switch {
	case audited == nil:
	case err == nil:
		err = audited.finish()
	case ctx.Err() == nil:
		// Refused, not abandoned: the client hears why.
		err = audited.refused(err)
	}
	return count, err
}

// queriedFields returns the names of the personal fields a list filters,
// searches or orders on, in declaration order.
func queriedFields(res *schema.Resource, q query.Query) []string {
	used := map[string]bool{}
	for _, f := range q.Filters {
		used[f.Field.Name] = f.Field.Personal
	}
	for _, k := range q.Order {
		used[k.Field.Name] = used[k.Field.Name] || k.Field.Personal
	}
	if q.Search != "" {
		for _, f := range res.SearchFields() {
			used[f.Name] = used[f.Name] || f.Personal
		}
	}
	var out []string
	for _, f := range res.PersonalFields() {
		if used[f.Name] {
			out = append(out, f.Name)
		}
	}
	return out
}

// listAuditChunk is how many listed objects at most wait for their read to
// be recorded before they go out: a page is one entry, a stream one entry
// per chunk, and memory stays bounded.
const listAuditChunk = 1000

// auditedEmit holds listed objects back until their read is recorded.
type auditedEmit struct {
	s    *Service
	ctx  context.Context
	p    auth.Principal
	res  *schema.Resource
	emit func(Object) error
	buf  []Object
	// fields, when set, are the fields the entries name (a slim list's
	// queried fields); else the personal fields the objects hold.
	fields []string
	// queried are the personal fields the list filters, searches or
	// orders on (finish records them when no object went out); recorded
	// says whether an entry was written.
	queried  []string
	recorded bool
}

func (a *auditedEmit) add(o Object) error {
	a.buf = append(a.buf, o)
	if len(a.buf) >= listAuditChunk {
		return a.flush()
	}
	return nil
}

// record writes one read entry of the objects and fields.
func (a *auditedEmit) record(ids, fields []string) error {
	entry := a.s.entry(a.ctx, a.p, audit.Read, a.res, ids, fields)
	if err := a.s.reads.record(a.ctx, entry); err != nil {
		return fmt.Errorf("records: audit: %w", err)
	}
	a.recorded = true
	return nil
}

// finish records the objects still held. A list that queried personal
// fields and let no object out is a read of those fields all the same: a
// lookup that found nothing, or a count of matches (_statistics past the
// last page), answers a question about the values, and asked over and
// over would recover them; its entry names the fields and no object.
func (a *auditedEmit) finish() error {
	if err := a.flush(); err != nil {
		return err
	}
	if a.recorded || len(a.queried) == 0 {
		return nil
	}
	return a.record([]string{}, a.queried)
}

// refused records a list that queried personal fields and was refused
// (err) before any object went out: too many matches to sort, too many
// rows read for its customer's share of the work. Whether it is refused
// can depend on the values (how many people's names begin so), so the
// refusal answers a question about them, as a lookup that found nothing
// does. When the entry can't be written, that error is the answer.
func (a *auditedEmit) refused(err error) error {
	if a.recorded || len(a.queried) == 0 {
		return err
	}
	if aerr := a.record([]string{}, a.queried); aerr != nil {
		return aerr
	}
	return err
}

// flush records one read entry for the held objects, then lets them out.
func (a *auditedEmit) flush() error {
	if len(a.buf) == 0 {
		return nil
	}
	ids := make([]string, len(a.buf))
	values := make([]schema.Values, len(a.buf))
	for i, o := range a.buf {
		ids[i], values[i] = o.ID, o.Values
	}
	fields := a.fields
	if fields == nil {
		fields = setFields(a.res, values...)
	}
	if err := a.record(ids, fields); err != nil {
		return err
	}
	for _, o := range a.buf {
		if err := a.emit(o); err != nil {
			return err
		}
	}
	a.buf = a.buf[:0]
	return nil
}

// matches applies the filters the database could not decide, and _search.
func matches(res *schema.Resource, q query.Query, filters []query.Filter, obj Object) bool {
	for _, f := range filters {
		if !f.Match(valueOf(obj, f.Field)) {
			return false
		}
	}
	return q.Search == "" || query.MatchSearch(res, q.Search, obj.Values)
}

// valueOf returns an object's value of a filterable field.
func valueOf(obj Object, f *schema.Field) any {
	switch f {
	case schema.IDField:
		return obj.ID
	case schema.CreatedAtField:
		return obj.CreatedAt
	}
	return obj.Values[f.Name]
}

// sortObjects sorts by the order keys, reading each object's keys once.
// The keys end with id, which is unique, so the order is total and an
// unstable sort is deterministic.
func sortObjects(objs []Object, order []query.OrderKey) {
	type keyed struct {
		keys []any
		obj  Object
	}
	ks := make([]keyed, len(objs))
	flat := make([]any, len(objs)*len(order))
	for i, o := range objs {
		k := flat[i*len(order) : (i+1)*len(order)]
		for j, ok := range order {
			k[j] = valueOf(o, ok.Field)
		}
		ks[i] = keyed{keys: k, obj: o}
	}
	slices.SortFunc(ks, func(a, b keyed) int {
		for j, k := range order {
			if c := query.Compare(a.keys[j], b.keys[j]); c != 0 {
				if k.Desc {
					return -c
				}
				return c
			}
		}
		return 0
	})
	for i := range ks {
		objs[i] = ks[i].obj
	}
}

func formatTime(v any) any { return v.(time.Time).UTC().Format(store.TimeLayout) }
