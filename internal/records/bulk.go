package records

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"

	"accounts/internal/apperr"
	"accounts/internal/auth"
	"accounts/internal/schema"
	"accounts/internal/store"

	"github.com/google/uuid"
)

// MaxBulkItems bounds a bulk write.
const MaxBulkItems = 1000

// ErrTooManyItems refuses a bulk write of more than MaxBulkItems items.
var ErrTooManyItems = apperr.FieldErrors{apperr.NonFieldErrors: {
	fmt.Sprintf("Ensure this list has no more than %d items.", MaxBulkItems)}}.Err()

// Bulk writes items in one transaction, all or nothing: an item without
// "id" is created, an item with "id" is a partial update of that object.
// Items are applied in order, each in its own savepoint, so a failing item
// is reported at its index (uniqueness inside the batch included) while the
// others are still checked; if any item fails nothing is written. A nil
// item stands for one that is not a JSON object: its error is
// schema.MsgNotObject. Bulk takes items over: it clears each body from the
// slice once decoded (the caller must not use them again), so that a write
// waiting its turn holds only what it will write.
func (s *Service) Bulk(ctx context.Context, p auth.Principal, res *schema.Resource, items []Body) ([]Object, error) {
	return s.BulkFrom(ctx, p, res, func() ([]Body, error) { return items, nil })
}

// BulkFrom is Bulk of the items read returns, called once the write is
// admitted as expensive work: reading and decoding a bulk body (up to
// 16 MiB) is part of that work, so as many bodies are read at once as
// bulk writes may run, and one refused is never read.
func (s *Service) BulkFrom(ctx context.Context, p auth.Principal, res *schema.Resource, read func() ([]Body, error)) ([]Object, error) {
	if !p.CanWrite() {
		return nil, errForbidden
	}
	release, err := s.limits.Expensive(p.CustomerID)
	if err != nil {
		return nil, err
	}
	defer release()
	items, err := read()
	if err != nil {
		return nil, err
	}
	if len(items) > MaxBulkItems {
		return nil, ErrTooManyItems
	}
	ctx = store.WithWriteRows(ctx, len(items))
	// decodeErrs are the items' errors before the database is asked;
	// each attempt at the write starts its items' errors from them.
	decodeErrs := make([]apperr.FieldErrors, len(items))
	ids := make([]string, len(items))
	decoded := make([]schema.Values, len(items))
	undecoded := false
	for i, body := range items {
		if body == nil {
			decodeErrs[i] = apperr.FieldErrors{apperr.NonFieldErrors: {schema.MsgNotObject}}
			undecoded = true
			continue
		}
		ids[i], decodeErrs[i] = bulkID(body)
		var errs apperr.FieldErrors
		decoded[i], errs = s.decode(res, body, ids[i] == "" && !decodeErrs[i].Has("id"))
		for k, msgs := range errs {
			decodeErrs[i][k] = append(decodeErrs[i][k], msgs...)
		}
		undecoded = undecoded || len(decodeErrs[i]) > 0
	}
	// The raw bodies are decoded: let them go while the write waits its
	// turn (32 bulk writes of 1,000 items held ~12 MiB of them, and still
	// did when nothing below referred to items: the argument stays live).
	clear(items)
	keys, err := s.customerKeys(ctx, p.CustomerID)
	if err != nil {
		return nil, err
	}
	// The objects the items update, locked before any is written.
	var updated []string
	for _, id := range ids {
		if id != "" {
			updated = append(updated, id)
		}
	}
	out := make([]Object, len(items))
	// apply writes the items in order. Isolated, each item runs in its own
	// savepoint and every failure is recorded; otherwise the first failure
	// ends the attempt with errIsolate.
	apply := func(tx store.Tx, isolated bool) error {
		ctx, known := withAncestry(ctx)
		// The ancestry lock, if an item will need it, before the rows'
		// locks, as a single write takes them: a bulk write that locked
		// its rows first and then the ancestry lock deadlocked on
		// PostgreSQL with a single write of one of its rows' parents.
		for _, values := range decoded {
			if err := lockAncestry(ctx, tx, p.CustomerID, res, values); err != nil {
				return err
			}
			if known.locked {
				break
			}
		}
		// In the order of their ids, not the items': two bulk writes of
		// the same objects in other orders would deadlock on PostgreSQL,
		// where both lock rows one item at a time.
		if err := tx.LockRows(ctx, p.CustomerID, res, updated); err != nil {
			return err
		}
		w := &auditWrites{}
		failed := undecoded
		itemErrs := make([]apperr.FieldErrors, len(ids))
		for i := range ids {
			itemErrs[i] = maps.Clone(decodeErrs[i])
			if len(itemErrs[i]) > 0 {
				if isolated && decoded[i] != nil {
					// The item's errors come with those of its values
					// that need the database, as a single write's do;
					// an update of no object is that error alone.
					switch err := s.failing(ctx, tx, p.CustomerID, res, ids[i], decoded[i], itemErrs[i]); apperr.KindOf(err) {
					case apperr.NotFound:
						itemErrs[i] = noObject(ids[i])
					case apperr.Invalid:
					default:
						return err
					}
				}
				continue
			}
			write := func() error {
				var err error
				if ids[i] == "" {
					out[i], err = s.createIn(ctx, tx, keys, w, p, res, decoded[i])
				} else {
					out[i], err = s.updateIn(ctx, tx, keys, w, p, res, ids[i], decoded[i])
				}
				return err
			}
			var err error
			if isolated {
				err = tx.Savepoint(ctx, write)
			} else {
				err = write()
			}
			if err == nil {
				continue
			}
			kind := apperr.KindOf(err)
			if kind != apperr.Invalid && kind != apperr.NotFound {
				return err
			}
			if !isolated {
				return errIsolate
			}
			known.reset()
			failed = true
			if kind == apperr.NotFound {
				itemErrs[i] = noObject(ids[i])
			} else {
				itemErrs[i] = apperr.FieldsOf(err)
			}
		}
		if failed {
			return apperr.ItemErrors(itemErrs)
		}
		return w.flush(ctx, tx)
	}
	// Batches are usually good: try without savepoints first, and only when
	// an item fails, write again item by item to report every failure.
	if !undecoded {
		err = s.retryOnNewKeys(ctx, p.CustomerID, &keys, func() error {
			return s.db.Update(ctx, func(tx store.Tx) error { return apply(tx, false) })
		})
		if err == nil {
			return out, nil
		}
		if !errors.Is(err, errIsolate) {
			return nil, err
		}
	}
	err = s.retryOnNewKeys(ctx, p.CustomerID, &keys, func() error {
		return s.db.Update(ctx, func(tx store.Tx) error { return apply(tx, true) })
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// noObject is the error of a bulk item that updates no object of the
// customer.
func noObject(id string) apperr.FieldErrors {
	return apperr.FieldErrors{"id": {schema.MsgNotExist(id)}}
}

// errIsolate ends a bulk write's fast attempt at its first failing item.
var errIsolate = errors.New("records: a bulk item failed")

// bulkID returns the object id an item updates ("" for a create) and a
// fresh error map for the item, holding an error when the id is malformed.
func bulkID(body Body) (string, apperr.FieldErrors) {
	errs := apperr.FieldErrors{}
	raw, ok := body["id"]
	if !ok {
		return "", errs
	}
	var s string
	if json.Unmarshal(raw, &s) != nil {
		errs.Add("id", "Must be a valid UUID.")
		return "", errs
	}
	id, err := uuid.Parse(s)
	if err != nil || len(s) != 36 {
		errs.Add("id", "Must be a valid UUID.")
		return "", errs
	}
	return id.String(), errs
}
