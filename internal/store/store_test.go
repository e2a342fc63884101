package store

import (
	"errors"
	"fmt"
	"testing"
)

// outcomeUnknown is an engine's wrapper saying that a lost connection
// left the outcome unknown (as the PostgreSQL store's lost COMMIT does).
type outcomeUnknown struct{ err error }

func (e *outcomeUnknown) Error() string     { return e.err.Error() }
func (e *outcomeUnknown) Unwrap() error     { return e.err }
func (e *outcomeUnknown) Unavailable() bool { return false }

// Unavailable takes the verdict of the outermost error that gives one;
// UnavailableBeneath finds unavailability under an unknown outcome too.
func TestUnavailableVerdicts(t *testing.T) {
	lost := MarkUnavailable(errors.New("connection reset"))
	atCommit := fmt.Errorf("batch: %w", &outcomeUnknown{lost})
	plain := errors.New("constraint")
	for _, c := range []struct {
		name                 string
		err                  error
		unavailable, beneath bool
	}{
		{"lost", lost, true, true},
		{"lost, wrapped", fmt.Errorf("records: %w", lost), true, true},
		{"lost at the COMMIT", atCommit, false, true},
		{"another failure", plain, false, false},
		{"no error", nil, false, false},
	} {
		if got := Unavailable(c.err); got != c.unavailable {
			t.Errorf("%s: Unavailable %v, want %v", c.name, got, c.unavailable)
		}
		if got := UnavailableBeneath(c.err); got != c.beneath {
			t.Errorf("%s: UnavailableBeneath %v, want %v", c.name, got, c.beneath)
		}
	}
}
