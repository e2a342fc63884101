package logsink

import (
	"encoding/json"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// written is the sink's underlying writer: a file, which the sink's
// goroutines write while the test reads it.
type written struct{ path string }

// msgs returns the msg of each JSON line written so far, failing the test
// on a line that is not one whole JSON object.
func (w written) msgs(t *testing.T) []string {
	t.Helper()
	data, err := os.ReadFile(w.path)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for line := range strings.Lines(string(data)) {
		var ev struct{ Msg string }
		if err := json.Unmarshal([]byte(line), &ev); err != nil {
			t.Fatalf("a line that is not a whole JSON object: %v", err)
		}
		out = append(out, ev.Msg)
	}
	return out
}

func newLogger(t *testing.T, interval time.Duration) (*slog.Logger, *Sink, written) {
	path := filepath.Join(t.TempDir(), "log")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	s := New(f, interval)
	return slog.New(s.Handler(slog.NewJSONHandler(s, nil))), s, written{path}
}

// An Info line waits in the buffer; a Warn line goes out at once, after
// the lines logged before it.
func TestWarnWritesOutAtOnce(t *testing.T) {
	log, s, out := newLogger(t, time.Hour)
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
	log, s, out := newLogger(t, 20*time.Millisecond)
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
	log, s, out := newLogger(t, time.Hour)
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
