package records

import (
	"context"
	"fmt"
	"sync"
	"time"

	"accounts/internal/audit"
	"accounts/internal/auth"
	"accounts/internal/schema"
	"accounts/internal/store"
)

// entry builds the audit entry of one operation by p on objects of res.
func (s *Service) entry(ctx context.Context, p auth.Principal, action audit.Action, res *schema.Resource, ids []string, fields []string) audit.Entry {
	return audit.Entry{
		CustomerID: p.CustomerID,
		Time:       s.now().UTC().Truncate(time.Microsecond),
		ClientID:   p.ClientID,
		RequestID:  audit.RequestID(ctx),
		Action:     action,
		Resource:   res.Name,
		ObjectIDs:  ids,
		Fields:     fields,
	}
}

// auditWrites gathers the entries of a transaction's writes, to append them
// in one go before it commits: the writes and their entries commit, or fail,
// together, and a bulk write of a thousand objects extends the chain once.
type auditWrites struct {
	entries []audit.Entry
}

// add records a write of one object.
func (w *auditWrites) add(s *Service, ctx context.Context, p auth.Principal, action audit.Action, res *schema.Resource, id string, fields []string) {
	if audits(res) {
		w.entries = append(w.entries, s.entry(ctx, p, action, res, []string{id}, fields))
	}
}

// flush appends the gathered entries in tx.
func (w *auditWrites) flush(ctx context.Context, tx store.Tx) error {
	if len(w.entries) == 0 {
		return nil
	}
	if err := tx.AppendAudit(ctx, w.entries); err != nil {
		return fmt.Errorf("records: audit: %w", err)
	}
	w.entries = nil
	return nil
}

// setFields returns the names of the personal fields that hold a value in
// any of values, in declaration order.
func setFields(res *schema.Resource, values ...schema.Values) []string {
	var out []string
	for _, f := range res.PersonalFields() {
		for _, v := range values {
			if v[f.Name] != nil {
				out = append(out, f.Name)
				break
			}
		}
	}
	return out
}

// sentOrSetFields returns the names of the personal fields among changes or
// holding a value in values, in declaration order.
func sentOrSetFields(res *schema.Resource, changes, values schema.Values) []string {
	var out []string
	for _, f := range res.PersonalFields() {
		if _, sent := changes[f.Name]; sent || values[f.Name] != nil {
			out = append(out, f.Name)
		}
	}
	return out
}

func personalNames(res *schema.Resource) []string {
	var out []string
	for _, f := range res.PersonalFields() {
		out = append(out, f.Name)
	}
	return out
}

// audits reports whether operations on res are audited: those of resources
// that hold personal data.
func audits(res *schema.Resource) bool { return auditEnabled && len(res.PersonalFields()) > 0 }

// readLog appends the audit entries of reads. A read must not answer before
// its entry is durable, and a commit per read would make every read wait for
// its own disk flush; so appends from concurrent reads are gathered and
// written together, one transaction per batch (group commit). Each caller
// still returns only once the batch holding its entry has committed.
type readLog struct {
	db store.Store

	mu          sync.Mutex
	writing     bool
	pending     []*pendingEntry
	lastArrival time.Time
}

type pendingEntry struct {
	entry audit.Entry
	done  chan error
	// lead is signalled when this caller is to write the next batch.
	lead chan struct{}
	// busy says reads were arriving close together when this one came.
	busy bool
}

// gatherWait is how long a writer lets a batch gather when reads are
// arriving close together: fewer, larger commits cost less in all than many
// small ones. A lone read never waits.
const gatherWait = 300 * time.Microsecond

// batchTimeout bounds one batch's commit, whatever the callers' contexts:
// a batch carries the entries of many requests.
const batchTimeout = 10 * time.Second

// record appends e and returns once it is durable (or failed). At most one
// caller writes at a time; entries arriving meanwhile wait, and the writer
// hands the next batch to the first of them, so no caller writes more than
// one batch. Callers wait for their batch even when their context ends: a
// batch's commit is bounded by batchTimeout, and a caller that left could
// not take its turn to write.
func (l *readLog) record(e audit.Entry) error {
	p := &pendingEntry{entry: e, done: make(chan error, 1), lead: make(chan struct{}, 1)}
	now := time.Now()
	l.mu.Lock()
	p.busy = now.Sub(l.lastArrival) < 2*gatherWait
	l.lastArrival = now
	l.pending = append(l.pending, p)
	if !l.writing {
		l.writing = true
		p.lead <- struct{}{}
	}
	l.mu.Unlock()
	select {
	case err := <-p.done:
		return err
	case <-p.lead:
	}
	if p.busy {
		time.Sleep(gatherWait)
	}
	l.mu.Lock()
	batch := l.pending
	l.pending = nil
	l.mu.Unlock()
	l.write(batch)
	l.mu.Lock()
	if len(l.pending) > 0 {
		l.pending[0].lead <- struct{}{}
	} else {
		l.writing = false
	}
	l.mu.Unlock()
	return <-p.done
}

func (l *readLog) write(batch []*pendingEntry) {
	entries := make([]audit.Entry, len(batch))
	for i, p := range batch {
		entries[i] = p.entry
	}
	ctx, cancel := context.WithTimeout(context.Background(), batchTimeout)
	defer cancel()
	err := l.db.Update(ctx, func(tx store.Tx) error { return tx.AppendAudit(ctx, entries) })
	for _, p := range batch {
		p.done <- err
	}
}
