package group

import (
	"context"
	"errors"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

var errInjected = errors.New("injected failure")

// recorder is a CommitFunc that remembers its batches and fails the way
// its failure hook says.
type recorder struct {
	mu      sync.Mutex
	batches [][]int
	// fail, when set, is called with each batch before it is recorded.
	fail func(batch []int, errs []error) error
}

func (r *recorder) commit(batch []int, errs []error) error {
	if r.fail != nil {
		if err := r.fail(batch, errs); err != nil {
			return err
		}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.batches = append(r.batches, slices.Clone(batch))
	return nil
}

func (r *recorder) committed() []int {
	r.mu.Lock()
	defer r.mu.Unlock()
	var all []int
	for _, b := range r.batches {
		all = append(all, b...)
	}
	slices.Sort(all)
	return all
}

// doAll runs Do for items 0..n-1 at once and returns each one's error.
func doAll(c *Committer[int], from, n int) []error {
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = c.Do(context.Background(), from+i)
		}()
	}
	wg.Wait()
	return errs
}

// allServed runs Do for items from..from+n-1 at once (within) and fails
// the test for each that returned an error.
func allServed(t *testing.T, what string, c *Committer[int], from, n int) {
	t.Helper()
	var errs []error
	within(t, what, func() { errs = doAll(c, from, n) })
	for i, err := range errs {
		if err != nil {
			t.Errorf("%s: request %d: %v", what, i, err)
		}
	}
}

// within fails the test when fn does not return in time: a wedged
// committer shows as a timeout, not as a test that hangs.
func within(t *testing.T, what string, fn func()) {
	t.Helper()
	done := make(chan struct{})
	go func() {
		defer close(done)
		fn()
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatalf("%s did not return: the committer is wedged", what)
	}
}

func TestEveryRequestCommittedOnce(t *testing.T) {
	r := &recorder{}
	c := New(Config[int]{MaxBatch: 8, MaxDelay: 100 * time.Microsecond, MaxInFlight: 1}, r.commit)
	var errs []error
	within(t, "200 concurrent requests", func() { errs = doAll(c, 0, 200) })
	for i, err := range errs {
		if err != nil {
			t.Fatalf("request %d: %v", i, err)
		}
	}
	want := make([]int, 200)
	for i := range want {
		want[i] = i
	}
	if got := r.committed(); !slices.Equal(got, want) {
		t.Fatalf("committed %v, want each of 0..199 once", got)
	}
	for _, b := range r.batches {
		if len(b) > 8 {
			t.Errorf("a batch of %d requests, above MaxBatch 8", len(b))
		}
	}
}

// A failing commit fails every request of its batch, and the next
// requests are served.
func TestErrorReachesEveryMemberAndNextRequestsServed(t *testing.T) {
	r := &recorder{}
	var failing sync.Mutex
	failNext := true
	r.fail = func([]int, []error) error {
		failing.Lock()
		defer failing.Unlock()
		if failNext {
			return errInjected
		}
		return nil
	}
	c := New(Config[int]{MaxBatch: 64, MaxInFlight: 1}, r.commit)
	var errs []error
	within(t, "requests of a failing batch", func() { errs = doAll(c, 0, 16) })
	for i, err := range errs {
		if !errors.Is(err, errInjected) {
			t.Errorf("request %d of a failing commit returned %v, want the commit's error", i, err)
		}
	}
	failing.Lock()
	failNext = false
	failing.Unlock()
	allServed(t, "requests after a failed batch", c, 100, 16)
	if got := len(r.committed()); got != 16 {
		t.Errorf("committed %d requests after the failure, want 16", got)
	}
}

// A panic in a commit reaches every member as an error, and the next
// requests are served: nothing is left holding the turn.
func TestPanicReachesEveryMemberAndNextRequestsServed(t *testing.T) {
	for _, inFlight := range []int{1, 3} {
		r := &recorder{}
		var mu sync.Mutex
		panics := true
		r.fail = func(batch []int, _ []error) error {
			mu.Lock()
			p := panics
			mu.Unlock()
			if p {
				panic("injected panic")
			}
			return nil
		}
		c := New(Config[int]{MaxBatch: 4, MaxDelay: 50 * time.Microsecond, MaxInFlight: inFlight}, r.commit)
		var errs []error
		within(t, "requests of panicking batches", func() { errs = doAll(c, 0, 32) })
		for i, err := range errs {
			var pe *PanicError
			if !errors.Is(err, ErrPanic) || !errors.As(err, &pe) || pe.Value != "injected panic" {
				t.Errorf("in flight %d: request %d of a panicking commit returned %v, want a *PanicError", inFlight, i, err)
			}
		}
		mu.Lock()
		panics = false
		mu.Unlock()
		allServed(t, "requests after panicking batches", c, 100, 32)
	}
}

// A commit that ends its goroutine (runtime.Goexit, as t.FailNow does)
// fails the other members of its batch, and later requests are served.
func TestGoexitInCommitDoesNotWedge(t *testing.T) {
	r := &recorder{}
	var mu sync.Mutex
	exit := true
	exited := make(chan struct{})
	r.fail = func([]int, []error) error {
		mu.Lock()
		e := exit
		exit = false
		mu.Unlock()
		if e {
			close(exited)
			runtime.Goexit()
		}
		return nil
	}
	c := New(Config[int]{MaxBatch: 1, MaxInFlight: 1}, r.commit)
	// The first request's own goroutine ends inside the commit, so its
	// Do never returns: run it apart, and the others once it has.
	go c.Do(context.Background(), 0)
	<-exited
	allServed(t, "requests after a commit that exited", c, 1, 8)
}

// A commit can fail one member alone; the others commit.
func TestMemberErrorFailsThatMemberOnly(t *testing.T) {
	r := &recorder{}
	r.fail = func(batch []int, errs []error) error {
		for i, v := range batch {
			if v%2 == 1 {
				errs[i] = errInjected
			}
		}
		return nil
	}
	c := New(Config[int]{MaxBatch: 16, MaxDelay: 100 * time.Microsecond, MaxInFlight: 1}, r.commit)
	var errs []error
	within(t, "a batch with failing members", func() { errs = doAll(c, 0, 32) })
	for i, err := range errs {
		if odd := i%2 == 1; odd != errors.Is(err, errInjected) {
			t.Errorf("request %d returned %v", i, err)
		}
	}
}

// A panic after the commit failed members alone still fails them all:
// nothing of a panicking batch can count as committed.
func TestPanicAfterMemberErrorFailsAll(t *testing.T) {
	c := New(Config[int]{MaxBatch: 4, MaxInFlight: 1}, func(batch []int, errs []error) error {
		errs[0] = errInjected
		panic("later")
	})
	var err error
	within(t, "a panicking batch", func() { err = c.Do(context.Background(), 1) })
	if !errors.Is(err, ErrPanic) {
		t.Fatalf("Do returned %v, want ErrPanic", err)
	}
}

// slowCommit is a CommitFunc that takes 20 ms, recording each batch and
// how many commits ran at once.
type slowCommit struct {
	mu            sync.Mutex
	batches       [][]int
	running, most int
}

func (s *slowCommit) commit(batch []int, _ []error) error {
	s.mu.Lock()
	s.batches = append(s.batches, slices.Clone(batch))
	s.running++
	s.most = max(s.most, s.running)
	s.mu.Unlock()
	time.Sleep(20 * time.Millisecond)
	s.mu.Lock()
	s.running--
	s.mu.Unlock()
	return nil
}

// While a slow commit runs, requests gather and are committed in batches of
// at most MaxBatch, one commit at a time with MaxInFlight 1.
func TestBatchesCappedDuringSlowCommit(t *testing.T) {
	s := &slowCommit{}
	c := New(Config[int]{MaxBatch: 5, MaxInFlight: 1}, s.commit)
	within(t, "requests behind a slow commit", func() { doAll(c, 0, 40) })
	total := 0
	for _, b := range s.batches {
		total += len(b)
		if len(b) > 5 {
			t.Errorf("batch of %d, above MaxBatch 5", len(b))
		}
	}
	if total != 40 {
		t.Errorf("committed %d requests, want 40", total)
	}
	if s.most != 1 {
		t.Errorf("%d commits ran at once, want 1", s.most)
	}
	if len(s.batches) >= 40 {
		t.Errorf("%d commits for 40 requests: nothing was batched", len(s.batches))
	}
}

// With MaxInFlight above 1, several batches commit at once, never more.
func TestSeveralBatchesInFlight(t *testing.T) {
	s := &slowCommit{}
	c := New(Config[int]{MaxBatch: 2, MaxInFlight: 3}, s.commit)
	var errs []error
	within(t, "requests with three batches in flight", func() { errs = doAll(c, 0, 30) })
	for i, err := range errs {
		if err != nil {
			t.Fatalf("request %d: %v", i, err)
		}
	}
	if s.most < 2 || s.most > 3 {
		t.Errorf("%d commits ran at once, want 2 or 3 (MaxInFlight 3)", s.most)
	}
}

// A lone request does not wait for a batch to gather.
func TestLoneRequestDoesNotWait(t *testing.T) {
	c := New(Config[int]{MaxBatch: 8, MaxDelay: time.Second, MaxInFlight: 1}, func([]int, []error) error { return nil })
	start := time.Now()
	if err := c.Do(context.Background(), 1); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d > 500*time.Millisecond {
		t.Errorf("a lone request took %v with MaxDelay 1s: it waited for a batch", d)
	}
}

func TestNewRefusesZeroBounds(t *testing.T) {
	for _, cfg := range []Config[int]{{MaxBatch: 0, MaxInFlight: 1}, {MaxBatch: 1, MaxInFlight: 0}} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("New(%+v) did not panic", cfg)
				}
			}()
			New(cfg, func([]int, []error) error { return nil })
		}()
	}
}

// With Weight set, a batch holds requests of at most MaxWeight in all, or
// one heavier request alone.
func TestBatchesCappedByWeight(t *testing.T) {
	s := &slowCommit{}
	weight := func(v int) int { return v % 100 }
	c := New(Config[int]{MaxBatch: 100, MaxInFlight: 1, MaxWeight: 10, Weight: weight}, s.commit)
	// Weights 1 (values 1, 101, ...) and one of 50 (value 50).
	var wg sync.WaitGroup
	for i := range 40 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			v := 1 + 100*i
			if i == 20 {
				v = 50
			}
			if err := c.Do(context.Background(), v); err != nil {
				t.Errorf("Do(%d): %v", v, err)
			}
		}()
	}
	within(t, "weighed requests", wg.Wait)
	for _, b := range s.batches {
		total := 0
		for _, v := range b {
			total += weight(v)
		}
		if total > 10 && len(b) > 1 {
			t.Errorf("a batch %v of weight %d, above MaxWeight 10", b, total)
		}
	}
}

// stuckOnce is a committer, one batch at a time, whose first commit
// closes stuck and then waits until release is closed (a disk that
// stalls); later commits do not wait.
func stuckOnce() (c *Committer[int], stuck, release chan struct{}) {
	c, _, stuck, release = stuckOnceWith(Config[int]{MaxBatch: 4, MaxInFlight: 1})
	return c, stuck, release
}

// stuckOnceWith is stuckOnce with cfg, and the recorder of its commits.
func stuckOnceWith(cfg Config[int]) (c *Committer[int], r *recorder, stuck, release chan struct{}) {
	r = &recorder{}
	stuck, release = make(chan struct{}), make(chan struct{})
	var once sync.Once
	r.fail = func([]int, []error) error {
		once.Do(func() { close(stuck); <-release })
		return nil
	}
	return New(cfg, r.commit), r, stuck, release
}

// A caller whose context ends while its batch's commit is stuck (a disk
// that stalls) stops waiting at once with its context's error; the
// commit's outcome still reaches the others, and later requests are
// served once it returns.
func TestCallerLeavesWhenItsContextEnds(t *testing.T) {
	c, stuck, release := stuckOnce()
	held := make(chan error, 1)
	go func() { held <- c.Do(context.Background(), 0) }()
	<-stuck
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	var err error
	within(t, "a request whose context ends behind a stuck commit", func() { err = c.Do(ctx, 1) })
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("the request that left: %v, want its context's error", err)
	}
	close(release)
	within(t, "the stuck request", func() { err = <-held })
	if err != nil {
		t.Errorf("the request of the stuck commit: %v", err)
	}
	allServed(t, "requests after the stuck commit", c, 2, 8)
}

// The request whose arrival started a batch stops waiting too when its
// context ends while that batch's commit is stuck: no caller runs a
// commit, so none is held past its time limit by one.
func TestFirstCallerLeavesWhenItsContextEnds(t *testing.T) {
	c, stuck, release := stuckOnce()
	ctx, cancel := context.WithCancel(context.Background())
	left := make(chan error, 1)
	go func() { left <- c.Do(ctx, 0) }()
	<-stuck
	cancel()
	var err error
	within(t, "the request of the stuck commit, its context ended", func() { err = <-left })
	if !errors.Is(err, context.Canceled) {
		t.Errorf("the request that left: %v, want its context's error", err)
	}
	close(release)
	allServed(t, "requests after the stuck commit", c, 1, 8)
}

// Requests that gathered behind a stuck commit and were left (Config.Leave
// said they may be) are handed to no later commit: what they hold is let
// go of when their callers leave, not when the stuck commit returns.
func TestLeftRequestsAreHandedToNoCommit(t *testing.T) {
	c, r, stuck, release := stuckOnceWith(Config[int]{MaxBatch: 4, MaxInFlight: 1, Leave: func(int) bool { return true }})
	held := make(chan error, 1)
	go func() { held <- c.Do(context.Background(), 0) }()
	<-stuck
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	var left sync.WaitGroup
	for item := 1; item <= 6; item++ {
		left.Go(func() {
			if err := c.Do(ctx, item); !errors.Is(err, context.DeadlineExceeded) {
				t.Errorf("request %d behind the stuck commit: %v, want its context's error", item, err)
			}
		})
	}
	within(t, "the requests that left", left.Wait)
	close(release)
	within(t, "the stuck request", func() { <-held })
	within(t, "a request after the stuck commit", func() { doAll(c, 7, 1) })
	if got, want := r.committed(), []int{0, 7}; !slices.Equal(got, want) {
		t.Errorf("committed %v, want %v: requests left behind the stuck commit were handed to one", got, want)
	}
}

// Stalled tells a batch that has been committing for longer than asked,
// and stops once it has committed.
func TestStalled(t *testing.T) {
	c, stuck, release := stuckOnce()
	if c.Stalled(0) {
		t.Error("stalled before any batch")
	}
	done := make(chan error, 1)
	go func() { done <- c.Do(context.Background(), 0) }()
	<-stuck
	time.Sleep(30 * time.Millisecond)
	if !c.Stalled(10 * time.Millisecond) {
		t.Error("a batch committing for 30 ms is not stalled past 10 ms")
	}
	if c.Stalled(time.Minute) {
		t.Error("a batch committing for 30 ms is stalled past a minute")
	}
	close(release)
	within(t, "the stalled request", func() { <-done })
	if c.Stalled(0) {
		t.Error("stalled once the batch has committed")
	}
}

// A caller whose context ends after its batch's commit has begun running
// its request (Config.Leave says it can't leave) waits for the batch's
// outcome, though another caller commits that batch; a caller whose
// request has not begun leaves at once.
func TestCallerStaysOnceItsRequestBegan(t *testing.T) {
	var begun [4]atomic.Bool
	firstHeld, releaseFirst := make(chan struct{}), make(chan struct{})
	secondHeld, releaseSecond := make(chan struct{}), make(chan struct{})
	commit := func(batch []int, _ []error) error {
		for _, item := range batch {
			begun[item].Store(true)
			switch item {
			case 0:
				close(firstHeld)
				<-releaseFirst
			case 1:
				close(secondHeld)
				<-releaseSecond
			}
		}
		return nil
	}
	c := New(Config[int]{MaxBatch: 2, MaxInFlight: 1, Leave: func(item int) bool { return !begun[item].Load() }}, commit)
	pending := func(n int) {
		within(t, "the requests queueing", func() {
			for {
				c.mu.Lock()
				got := len(c.pending)
				c.mu.Unlock()
				if got == n {
					return
				}
				time.Sleep(time.Millisecond)
			}
		})
	}
	results := make([]chan error, 4)
	do := func(ctx context.Context, item int) {
		results[item] = make(chan error, 1)
		go func() { results[item] <- c.Do(ctx, item) }()
	}
	do(context.Background(), 0)
	<-firstHeld
	// 2 queues before 1, so 2's caller commits the batch holding both.
	do(context.Background(), 2)
	pending(1)
	ctx, cancel := context.WithCancel(context.Background())
	do(ctx, 1)
	pending(2)
	close(releaseFirst)
	<-secondHeld
	lateCtx, cancelLate := context.WithCancel(context.Background())
	do(lateCtx, 3)
	pending(1)
	cancel()
	cancelLate()
	var err error
	within(t, "a request whose context ended before its turn", func() { err = <-results[3] })
	if !errors.Is(err, context.Canceled) {
		t.Errorf("the request whose turn had not come: %v, want its context's error", err)
	}
	select {
	case err := <-results[1]:
		t.Fatalf("the request whose commit had begun returned before its batch committed: %v", err)
	case <-time.After(100 * time.Millisecond):
	}
	close(releaseSecond)
	for _, item := range []int{0, 1, 2} {
		within(t, "the committed requests", func() { err = <-results[item] })
		if err != nil {
			t.Errorf("request %d: %v", item, err)
		}
	}
}
