package limit

import (
	"sync"
	"time"
)

// maxKeys bounds each keyed table, so that callers who vary a key (source
// addresses, made-up client ids) can't grow memory without end. When a
// table is full, entries that no longer matter are swept, at most once per
// sweepEvery so that a full table costs nothing per request; if none can
// go, a new key is not tracked: its caller is admitted, which is the safe
// side for a real client, while the ones already tracked stay throttled.
const (
	maxKeys    = 1 << 16
	sweepEvery = time.Second
)

// sweeper runs a sweep of a full table at most once per sweepEvery.
type sweeper struct{ last time.Time }

func (s *sweeper) due(now time.Time) bool {
	if now.Sub(s.last) < sweepEvery {
		return false
	}
	s.last = now
	return true
}

// buckets are token buckets per key: each holds up to burst tokens,
// refilled at rate per second; a request takes one.
type buckets struct {
	mu    sync.Mutex
	rate  float64
	burst float64
	byKey map[string]*bucket
	sweeper
}

type bucket struct {
	tokens float64
	at     time.Time
}

func newBuckets(rate float64, burst int) *buckets {
	return &buckets{rate: rate, burst: float64(burst), byKey: map[string]*bucket{}}
}

// take takes a token for key, or returns how long until one is there.
func (b *buckets) take(key string, now time.Time) time.Duration {
	if b.rate <= 0 {
		return 0
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	bk := b.byKey[key]
	if bk == nil {
		if len(b.byKey) >= maxKeys && !(b.due(now) && b.sweep(now)) {
			return 0
		}
		bk = &bucket{tokens: b.burst, at: now}
		b.byKey[key] = bk
	}
	bk.tokens = min(b.burst, bk.tokens+now.Sub(bk.at).Seconds()*b.rate)
	bk.at = now
	if bk.tokens < 1 {
		return time.Duration((1 - bk.tokens) / b.rate * float64(time.Second))
	}
	bk.tokens--
	return 0
}

// sweep drops the buckets that have refilled (a new bucket would be the
// same), reporting whether any went. Called with mu held.
func (b *buckets) sweep(now time.Time) bool {
	n := len(b.byKey)
	for k, bk := range b.byKey {
		if bk.tokens+now.Sub(bk.at).Seconds()*b.rate >= b.burst {
			delete(b.byKey, k)
		}
	}
	return len(b.byKey) < n
}

// failureWindows count failures per key in fixed windows: the first
// failure opens a window of length window; once it holds max failures, the
// key is blocked until the window ends.
type failureWindows struct {
	mu     sync.Mutex
	window time.Duration
	max    int
	byKey  map[string]*failures
	sweeper
}

type failures struct {
	start time.Time
	count int
}

func newFailureWindows(window time.Duration, max int) *failureWindows {
	return &failureWindows{window: window, max: max, byKey: map[string]*failures{}}
}

func (w *failureWindows) off() bool { return w.max <= 0 || w.window <= 0 }

// blocked returns how long key stays blocked, 0 when it is not.
func (w *failureWindows) blocked(key string, now time.Time) time.Duration {
	if w.off() || key == "" {
		return 0
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	f := w.byKey[key]
	if f == nil || f.count < w.max {
		return 0
	}
	if left := f.start.Add(w.window).Sub(now); left > 0 {
		return left
	}
	return 0
}

// fail counts a failure for key.
func (w *failureWindows) fail(key string, now time.Time) {
	if w.off() || key == "" {
		return
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	f := w.byKey[key]
	if f != nil && now.Sub(f.start) >= w.window {
		f = nil // that window is over: a new one opens
	}
	if f == nil {
		if len(w.byKey) >= maxKeys && !(w.due(now) && w.sweep(now)) {
			return
		}
		f = &failures{start: now}
		w.byKey[key] = f
	}
	f.count++
}

// sweep drops windows that are over, reporting whether any went. Called
// with mu held.
func (w *failureWindows) sweep(now time.Time) bool {
	n := len(w.byKey)
	for k, f := range w.byKey {
		if now.Sub(f.start) >= w.window {
			delete(w.byKey, k)
		}
	}
	return len(w.byKey) < n
}
