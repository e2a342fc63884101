// Package group commits concurrent requests together (group commit): a
// request waits until the batch holding it has committed, and a batch
// commits all its requests with one transaction and one flush, so that
// requests arriving together share the cost of making them durable.
//
// It follows bbolt's DB.Batch (a capped batch, a panic in it turned into
// an error) and pebble's LogWriter.flushLoop (the pending requests taken
// whole while one batch commits). Each batch commits on a goroutine of its
// own, started by the request that finds no batch committing, or by the
// batch before it for what gathered while it committed; so no caller runs
// a commit, and every caller may stop waiting when its context ends (a
// disk that stalls holds the batch, not any request's answer), unless
// Config.Leave says its request has begun. It fails safe: every request
// of a batch gets the batch's outcome, whatever the commit did (returned
// an error, panicked, or ended its goroutine), and the hand-off to the
// next batch runs in a defer, so no failure can leave later requests
// waiting for a batch that never starts.
package group

import (
	"context"
	"errors"
	"slices"
	"sync"
	"time"
)

// Config bounds the batches of a Committer of requests of type T.
type Config[T any] struct {
	// MaxBatch is the most requests one batch holds (at least 1). The
	// requests that gather while a slow commit runs are committed in
	// batches of at most this many, so one batch's work stays bounded.
	MaxBatch int
	// MaxDelay is how long a caller that starts committing, with no batch
	// to take over, lets its batch gather when requests are arriving close
	// together (within twice MaxDelay of each other); a lone request never
	// waits, and a batch handed over after a commit never waits either: it
	// gathered while that commit ran. 0 never waits.
	MaxDelay time.Duration
	// MaxInFlight is how many batches may commit at once (at least 1).
	MaxInFlight int
	// Weight, when set, weighs a request (the rows it writes, say), and
	// a batch holds requests of at most MaxWeight in all, or a single
	// heavier one: so the batch's memory and time stay bounded when some
	// requests are large. Without it every request weighs nothing.
	Weight    func(T) int
	MaxWeight int
	// Leave, when set, is asked when a caller's context ends while it
	// waits: it reports whether the request may still be left, because
	// its commit has not begun running it (and now never will): a request
	// left so is handed to no commit that has not taken it yet. When it
	// reports false, the caller waits for its batch's outcome instead:
	// a caller told that its time was up must not see its request commit
	// after all. Without it a caller always leaves, and its request may
	// still commit with its batch.
	Leave func(T) bool
}

// CommitFunc commits one batch, in the order the requests came. It may set
// errs[i] (len(errs) == len(batch)) to fail request i alone; the error it
// returns fails every request it has not failed alone. A panic fails every
// request of the batch.
type CommitFunc[T any] func(batch []T, errs []error) error

// Committer gathers requests of type T into batches and commits them.
type Committer[T any] struct {
	cfg    Config[T]
	commit CommitFunc[T]

	mu          sync.Mutex
	pending     []*call[T]
	inFlight    int
	lastArrival time.Time
	// committing holds when each batch committing now began (Stalled).
	committing map[*call[T]]time.Time
}

// call is one request waiting for its batch.
type call[T any] struct {
	item T
	done chan error
}

// New returns a Committer committing batches with commit. It panics when
// cfg's bounds are below 1: that is a programming error.
func New[T any](cfg Config[T], commit CommitFunc[T]) *Committer[T] {
	if cfg.MaxBatch < 1 || cfg.MaxInFlight < 1 {
		panic("group: MaxBatch and MaxInFlight must be at least 1")
	}
	return &Committer[T]{cfg: cfg, commit: commit}
}

// ErrPanic is the error (wrapped in a *PanicError) that every request of a
// batch whose commit panicked gets.
var ErrPanic = errors.New("group: the batch's commit panicked")

// ErrAbandoned is the error every request of a batch gets when its commit
// ended its goroutine without returning (runtime.Goexit).
var ErrAbandoned = errors.New("group: the batch's commit did not return")

// PanicError carries the value a commit panicked with. Its message does not
// quote the value, which may hold any data of the batch.
type PanicError struct{ Value any }

func (e *PanicError) Error() string { return ErrPanic.Error() }

// Unwrap makes errors.Is(err, ErrPanic) hold.
func (e *PanicError) Unwrap() error { return ErrPanic }

// Do adds item to a batch and returns once that batch has committed: nil
// when it did and the commit did not fail item alone, else the error. When
// ctx ends first it returns ctx's error at once. Without Config.Leave, item
// stays in its batch, and may still commit (or already have); with it,
// item is dropped when Leave says it has not begun, and else Do waits for
// the outcome instead.
func (c *Committer[T]) Do(ctx context.Context, item T) error {
	cl := &call[T]{item: item, done: make(chan error, 1)}
	now := time.Now()
	c.mu.Lock()
	busy := now.Sub(c.lastArrival) < 2*c.cfg.MaxDelay
	c.lastArrival = now
	c.pending = append(c.pending, cl)
	first := c.inFlight < c.cfg.MaxInFlight
	if first {
		c.inFlight++
	}
	c.mu.Unlock()
	if first {
		go c.gatherAndRun(busy)
	}
	return c.wait(ctx, cl)
}

// gatherAndRun lets a batch gather for MaxDelay when requests are arriving
// close together (busy), then commits what is pending.
func (c *Committer[T]) gatherAndRun(busy bool) {
	if busy && c.cfg.MaxDelay > 0 {
		time.Sleep(c.cfg.MaxDelay)
	}
	c.mu.Lock()
	batch := c.take()
	c.mu.Unlock()
	c.run(batch)
}

// wait returns cl's outcome, or ctx's error when ctx ends first, unless
// Config.Leave says cl can no longer be left: then it waits on for the
// outcome. The outcome's channel is buffered, so a commit answering a
// caller that has left does not block.
func (c *Committer[T]) wait(ctx context.Context, cl *call[T]) error {
	select {
	case err := <-cl.done:
		return err
	case <-ctx.Done():
		if c.cfg.Leave != nil {
			if !c.cfg.Leave(cl.item) {
				return <-cl.done
			}
			c.drop(cl)
		}
		return ctx.Err()
	}
}

// drop removes a request that will never run from the pending ones, so
// that what it holds (a bulk write's thousand objects) is let go of now:
// while a commit stalls, the requests that gather behind it and leave at
// their time limit would otherwise all stay held until it returns, though
// their callers have been answered and their admission slots freed.
func (c *Committer[T]) drop(cl *call[T]) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if i := slices.Index(c.pending, cl); i >= 0 {
		c.pending = slices.Delete(c.pending, i, i+1)
	}
}

// Stalled reports whether a batch has been committing for longer than d:
// a disk or a database that stopped answering, which a readiness check
// reports before the requests behind it run out of time.
func (c *Committer[T]) Stalled(d time.Duration) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, began := range c.committing {
		if time.Since(began) > d {
			return true
		}
	}
	return false
}

// take removes the next batch from the pending requests. Called with mu
// held.
func (c *Committer[T]) take() []*call[T] {
	n, weight := 0, 0
	for n < len(c.pending) && n < c.cfg.MaxBatch {
		if c.cfg.Weight != nil {
			weight += c.cfg.Weight(c.pending[n].item)
			if n > 0 && weight > c.cfg.MaxWeight {
				break
			}
		}
		n++
	}
	batch := c.pending[:n:n]
	c.pending = c.pending[n:]
	if len(c.pending) == 0 {
		c.pending = nil
	}
	return batch
}

// run commits batch (which may be empty: another committer took its
// requests) and then hands the turn over. Both the answers and the
// hand-off are deferred, so they happen however the commit ends.
func (c *Committer[T]) run(batch []*call[T]) {
	defer c.handOff()
	errs := make([]error, len(batch))
	err := ErrAbandoned
	defer func() {
		for i, cl := range batch {
			if errs[i] != nil {
				cl.done <- errs[i]
			} else {
				cl.done <- err
			}
		}
		// The batch shares its array with the pending requests that
		// came after it: let go of what its requests hold (a bulk
		// write's thousand objects) now, not when the array is dropped.
		clear(batch)
	}()
	if len(batch) == 0 {
		err = nil
		return
	}
	items := make([]T, len(batch))
	for i, cl := range batch {
		items[i] = cl.item
	}
	err = c.timedCommit(batch[0], items, errs)
}

// timedCommit commits, known as committing (Stalled) until it returns,
// however it does: before its requests are answered.
func (c *Committer[T]) timedCommit(key *call[T], items []T, errs []error) error {
	c.mu.Lock()
	if c.committing == nil {
		c.committing = map[*call[T]]time.Time{}
	}
	c.committing[key] = time.Now()
	c.mu.Unlock()
	defer func() {
		c.mu.Lock()
		delete(c.committing, key)
		c.mu.Unlock()
	}()
	return c.safelyCommit(items, errs)
}

// safelyCommit runs the commit, turning a panic into a *PanicError for the
// whole batch.
func (c *Committer[T]) safelyCommit(items []T, errs []error) (err error) {
	defer func() {
		if p := recover(); p != nil {
			clear(errs)
			err = &PanicError{Value: p}
		}
	}()
	return c.commit(items, errs)
}

// handOff starts the commit of the requests that gathered, without
// waiting, or ends this turn when none did.
func (c *Committer[T]) handOff() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.pending) == 0 {
		c.inFlight--
		return
	}
	go c.run(c.take())
}
