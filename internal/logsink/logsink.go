// Package logsink buffers the server's log on its way to stderr, so that a
// request does not wait for a write system call of its own access log
// line: lines are written out together at least every interval, at once
// when a line at Warn or above is logged (with every line before it, in
// order), and when the sink is closed at shutdown. A process killed
// outright loses at most the last interval's lines of Info.
package logsink

import (
	"bufio"
	"context"
	"io"
	"log/slog"
	"sync"
	"time"
)

// FlushInterval is the longest a line waits in the buffer.
const FlushInterval = 100 * time.Millisecond

// bufferSize is the buffer's size: a line that does not fit makes the
// buffer write out first, so memory stays bounded whatever the rate.
const bufferSize = 64 << 10

// Sink is an io.Writer, safe for concurrent use, that buffers what it is
// given for its underlying writer.
type Sink struct {
	mu     sync.Mutex
	buf    *bufio.Writer
	closed bool
	stop   chan struct{}
	done   chan struct{}
}

// New returns a sink writing to w at least every interval until Close.
func New(w io.Writer, interval time.Duration) *Sink {
	s := &Sink{buf: bufio.NewWriterSize(w, bufferSize), stop: make(chan struct{}), done: make(chan struct{})}
	go s.flushEvery(interval)
	return s
}

func (s *Sink) flushEvery(interval time.Duration) {
	defer close(s.done)
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for {
		select {
		case <-tick.C:
			s.Flush()
		case <-s.stop:
			return
		}
	}
}

// Write buffers p (one log line, as slog's handlers write them). After
// Close it writes through.
func (s *Sink) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	n, err := s.buf.Write(p)
	if err == nil && s.closed {
		err = s.buf.Flush()
	}
	return n, err
}

// Flush writes out what is buffered.
func (s *Sink) Flush() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.buf.Flush()
}

// Close stops the periodic writes and writes out what is buffered; lines
// logged later are written at once.
func (s *Sink) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	s.mu.Unlock()
	close(s.stop)
	<-s.done
	return s.Flush()
}

// Handler returns h, which must write into s, made to write s out after
// each record at Warn or above: a warning or an error reaches the log at
// once.
func (s *Sink) Handler(h slog.Handler) slog.Handler { return urgent{h: h, s: s} }

type urgent struct {
	h slog.Handler
	s *Sink
}

func (u urgent) Enabled(ctx context.Context, l slog.Level) bool { return u.h.Enabled(ctx, l) }

func (u urgent) Handle(ctx context.Context, r slog.Record) error {
	err := u.h.Handle(ctx, r)
	if r.Level >= slog.LevelWarn {
		if ferr := u.s.Flush(); err == nil {
			err = ferr
		}
	}
	return err
}

func (u urgent) WithAttrs(attrs []slog.Attr) slog.Handler {
	return urgent{h: u.h.WithAttrs(attrs), s: u.s}
}

func (u urgent) WithGroup(name string) slog.Handler { return urgent{h: u.h.WithGroup(name), s: u.s} }
