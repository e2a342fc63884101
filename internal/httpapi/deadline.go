package httpapi

import (
	"context"
	"errors"
	"time"
)

// errRequestTimeout is the cause of a request's cancellation when its work
// ran past its time limit. writeError answers it with 503 before anything
// went out, instead of letting the server's write timeout cut a response
// that never started (which the client would see as an empty reply).
var errRequestTimeout = errors.New("httpapi: request ran past its time limit")

// deadline is a request's time limit, which a stream that makes progress
// renews (a context deadline can't be moved).
type deadline struct {
	timer *time.Timer
	limit time.Duration
}

// withDeadline gives the request's work the server's request timeout.
// stop must be called when the request is done.
func (s *Server) withDeadline(ctx context.Context) (context.Context, func()) {
	if s.requestTimeout <= 0 {
		return ctx, func() {}
	}
	ctx, cancel := context.WithCancelCause(ctx)
	d := &deadline{limit: s.requestTimeout}
	d.timer = time.AfterFunc(d.limit, func() { cancel(errRequestTimeout) })
	info(ctx).deadline = d
	return ctx, func() {
		d.timer.Stop()
		cancel(nil)
	}
}

// extend gives the request a whole time limit again from now.
func (d *deadline) extend() {
	if d != nil {
		d.timer.Reset(d.limit)
	}
}

// timedOut reports whether ctx was cancelled by its request's time limit.
func timedOut(ctx context.Context) bool {
	return errors.Is(context.Cause(ctx), errRequestTimeout)
}
