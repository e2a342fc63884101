package records

import (
	"context"
	"errors"
	"fmt"
	"time"

	"accounts/internal/audit"
	"accounts/internal/auth"
	"accounts/internal/schema"
	"accounts/internal/store"
	"accounts/internal/store/group"
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
// its own disk flush; so the entries of concurrent reads are gathered and
// written together, one transaction per batch (group commit, see
// store/group), each read returning once the batch holding its entry has
// committed. A failure or panic in a batch fails its reads (they answer an
// error, never the object) and leaves the next batches to go on.
type readLog struct {
	batches *group.Committer[audit.Entry]
}

// The bounds of the read log's batches. Entries arriving close together
// wait up to gatherWait for a batch to gather: fewer, larger commits cost
// less in all than many small ones, and a lone read never waits. A batch
// holds at most maxReadBatch entries, so reads gathered behind a slow
// commit are written in bounded transactions. One batch commits at a time,
// on both engines: the reads that arrive while it commits form the next,
// handed over as it ends. On PostgreSQL, batches side by side were each
// smaller and each paid a transaction's fixed cost (four round trips and
// the server's work on each). On SQLite, four batches queued at once in the
// writer's queue made batches of 5-6 entries where one at a time makes
// batches of 14-15, and a GET cost 6-9% more CPU (docs/benchmarks.md).
const (
	gatherWait   = 300 * time.Microsecond
	maxReadBatch = 256
)

// batchTimeout bounds one batch's commit, whatever the callers' contexts:
// a batch carries the entries of many requests.
const batchTimeout = 10 * time.Second

func newReadLog(db store.Store) *readLog {
	cfg := group.Config[audit.Entry]{MaxBatch: maxReadBatch, MaxDelay: gatherWait, MaxInFlight: 1}
	return &readLog{batches: group.New(cfg, func(entries []audit.Entry, _ []error) error {
		ctx, cancel := context.WithTimeout(context.Background(), batchTimeout)
		defer cancel()
		err := db.AppendAuditAlone(ctx, entries)
		if err != nil && (ctx.Err() != nil || store.UnavailableBeneath(err)) {
			// The database did not take the batch in time (a lock
			// another process kept, a network gone silent), or lost
			// its connection, even at the COMMIT: the batch's reads
			// returned nothing, whatever became of their entries, and
			// may be sent again, as when the database can't be
			// reached.
			return store.MarkUnavailable(err)
		}
		return err
	})}
}

// ErrReadsStalled is Ready's error while a batch of reads' audit entries
// has been committing for longer than store.WriteStall.
var ErrReadsStalled = errors.New("records: reads' audit entries have been committing for longer than " + store.WriteStall.String())

// Ready reports ErrReadsStalled while a batch of reads' audit entries has
// been committing for longer than store.WriteStall: a lock held elsewhere
// on the audit trail, a database gone silent. Every audited read is then
// refused, and a load balancer should learn of it. The store's Ready says
// so for its writes only, and on PostgreSQL the reads' entries commit
// apart from them, so a stall that holds back only the audit trail's
// reads' entries would go unseen there.
func (s *Service) Ready() error {
	if s.reads.batches.Stalled(store.WriteStall) {
		return ErrReadsStalled
	}
	return nil
}

// record appends e and returns once it is durable (or failed), or when ctx
// ends first: a read whose entry is not yet durable when its time is up
// returns nothing (the entry may still be written: a read attempted). A
// batch's commit is bounded by batchTimeout where a context can bound it;
// a disk that stalls holds the batch, not the callers.
func (l *readLog) record(ctx context.Context, e audit.Entry) error { return l.batches.Do(ctx, e) }
