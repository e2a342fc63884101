package httpapi

import (
	"sync"
	"time"
)

// eventFolder folds repeated security events into the next line logged of
// their kind. A flood of refused requests (a client past its rate, a
// guesser past its lockout) logged a WARN line each, flushed at once: a
// 4 s flood wrote 43 MB of log and a system call per request. So of the
// events of one reason and one caller (its client id, else the client id
// it claimed, else its source address), one a second is logged, with the
// number of those folded since the last in "repeated"; the metric
// accounts_security_events_total still counts every one, and every
// request still has its own request line.
type eventFolder struct {
	mu   sync.Mutex
	last map[foldKey]*foldedEvents
	// swept is when a full table was last swept: at most once a window.
	swept time.Time
}

type foldKey struct{ reason, caller string }

type foldedEvents struct {
	logged   time.Time
	repeated int
}

// foldWindow is how long after a logged event those like it are folded,
// and maxFoldKeys how many kinds are tracked: past it (callers that vary
// their address or claimed id), events of new kinds are logged unfolded.
const (
	foldWindow  = time.Second
	maxFoldKeys = 1 << 14
)

func newEventFolder() *eventFolder {
	return &eventFolder{last: map[foldKey]*foldedEvents{}}
}

// fold reports whether an event of k at now is to be logged, and how many
// like it were folded since the last one logged.
func (f *eventFolder) fold(k foldKey, now time.Time) (logIt bool, repeated int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	e := f.last[k]
	if e != nil && now.Sub(e.logged) < foldWindow {
		e.repeated++
		return false, 0
	}
	if e == nil {
		if len(f.last) >= maxFoldKeys {
			if now.Sub(f.swept) < foldWindow {
				return true, 0
			}
			f.swept = now
			f.sweep(now)
			if len(f.last) >= maxFoldKeys {
				return true, 0
			}
		}
		e = &foldedEvents{}
		f.last[k] = e
	}
	repeated = e.repeated
	e.logged, e.repeated = now, 0
	return true, repeated
}

// sweep forgets the kinds whose window has passed with nothing folded.
func (f *eventFolder) sweep(now time.Time) {
	for k, e := range f.last {
		if now.Sub(e.logged) >= foldWindow && e.repeated == 0 {
			delete(f.last, k)
		}
	}
}
