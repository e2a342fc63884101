package logsink

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"
)

// lockedBuffer is the sink's underlying writer: written by the sink's
// goroutines, read by the test.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

// msgs returns the msg of each JSON line written so far, failing the test
// on a line that is not one whole JSON object.
func (b *lockedBuffer) msgs(t *testing.T) []string {
	t.Helper()
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []string
	for line := range strings.Lines(b.buf.String()) {
		var ev struct{ Msg string }
		if err := json.Unmarshal([]byte(line), &ev); err != nil {
			t.Fatalf("a line that is not a whole JSON object: %v", err)
		}
		out = append(out, ev.Msg)
	}
	return out
}

func newLogger(interval time.Duration) (*slog.Logger, *Sink, *lockedBuffer) {
	out := &lockedBuffer{}
	s := New(out, interval)
	return slog.New(s.Handler(slog.NewJSONHandler(s, nil))), s, out
}

// An Info line waits in the buffer; a Warn line goes out at once, after
// the lines logged before it.
func TestWarnWritesOutAtOnce(t *testing.T) {
	log, s, out := newLogger(time.Hour)
	defer s.Close()
	log.Info("first")
	if got := out.msgs(t); len(got) != 0 {
		t.Fatalf("an Info line was written before any flush: %v", got)
	}
	log.Warn("second")
	if got := out.msgs(t); strings.Join(got, ",") != "first,second" {
		t.Errorf("after a Warn line: %v, want [first second]", got)
	}
	log.With("k", "v").WithGroup("g").Error("third")
	if got := out.msgs(t); len(got) != 3 {
		t.Errorf("after an Error line of a derived logger: %v, want 3 lines", got)
	}
}

// An Info line goes out by itself within the flush interval.
func TestInfoWrittenWithinInterval(t *testing.T) {
	log, s, out := newLogger(20 * time.Millisecond)
	defer s.Close()
	log.Info("waiting")
	deadline := time.Now().Add(5 * time.Second)
	for len(out.msgs(t)) == 0 {
		if time.Now().After(deadline) {
			t.Fatal("an Info line was not written within 5 s; the interval is 20 ms")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// Lines logged at once from many goroutines, more than the buffer holds,
// all come out whole by Close; lines logged after Close are written at
// once.
func TestCloseWritesEveryLine(t *testing.T) {
	log, s, out := newLogger(time.Hour)
	const goroutines, lines = 16, 500
	var wg sync.WaitGroup
	for range goroutines {
		wg.Go(func() {
			for range lines {
				log.Info("line", "pad", strings.Repeat("x", 100))
			}
		})
	}
	wg.Wait()
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if got := len(out.msgs(t)); got != goroutines*lines {
		t.Errorf("%d lines after Close, want %d", got, goroutines*lines)
	}
	log.Info("late")
	if got := len(out.msgs(t)); got != goroutines*lines+1 {
		t.Errorf("a line logged after Close was not written at once (%d lines)", got)
	}
}
