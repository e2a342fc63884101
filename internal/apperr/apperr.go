// Package apperr is the service's small error vocabulary: a fixed set of kinds
// that the HTTP layer maps to status codes in one place, and field errors that
// carry validation messages per field.
//
// Messages in these errors are shown to API clients, so they name rules and
// never repeat a submitted value.
package apperr

import (
	"errors"
	"fmt"
	"sort"
	"time"
)

// Kind classifies an error. The set is append-only: clients and the status
// table depend on it.
type Kind int

// The kinds of error the service distinguishes.
const (
	Internal         Kind = iota // anything unexpected: logged, never shown
	Invalid                      // validation failed: FieldErrors says where
	NotFound                     // no such object for this customer
	Unauthenticated              // credentials missing or wrong
	Forbidden                    // authenticated but not allowed
	Unavailable                  // a dependency (the database) is not reachable
	Malformed                    // the body is not JSON, or not JSON that decodes exactly
	TooLarge                     // the body is over its limit
	UnsupportedMedia             // the body is not application/json in UTF-8
	Throttled                    // the caller is over its share: try again after RetryAfter
	Overloaded                   // the process is over its capacity: try again after RetryAfter
)

// Error is an error of a known kind.
type Error struct {
	Kind   Kind
	Fields FieldErrors // set for Invalid
	// Items is set for an Invalid bulk write: one FieldErrors per item,
	// empty for the items that were fine.
	Items []FieldErrors
	Err   error // the cause, for logs; never shown to clients
	// RetryAfter is when a Throttled or Overloaded request may be tried
	// again.
	RetryAfter time.Duration
	// Reason names, for Throttled and Overloaded, the limit that refused
	// the request (a metric label and a log field; never shown).
	Reason string
}

func (e *Error) Error() string {
	if e.Err != nil {
		return fmt.Sprintf("%s: %v", e.Kind, e.Err)
	}
	if e.Reason != "" {
		return fmt.Sprintf("%s: %s", e.Kind, e.Reason)
	}
	if e.Kind == Invalid && e.Items != nil {
		return fmt.Sprintf("invalid: bulk write of %d items", len(e.Items))
	}
	if e.Kind == Invalid {
		return "invalid: " + e.Fields.keys()
	}
	return e.Kind.String()
}

func (e *Error) Unwrap() error { return e.Err }

func (k Kind) String() string {
	switch k {
	case Invalid:
		return "invalid"
	case NotFound:
		return "not found"
	case Unauthenticated:
		return "unauthenticated"
	case Forbidden:
		return "forbidden"
	case Unavailable:
		return "unavailable"
	case Malformed:
		return "malformed"
	case TooLarge:
		return "too large"
	case UnsupportedMedia:
		return "unsupported media type"
	case Throttled:
		return "throttled"
	case Overloaded:
		return "overloaded"
	default:
		return "internal"
	}
}

// KindOf returns the kind of err: Internal unless err wraps an *Error.
func KindOf(err error) Kind {
	var e *Error
	if errors.As(err, &e) {
		return e.Kind
	}
	return Internal
}

// New returns an error of kind k wrapping cause (which may be nil).
func New(k Kind, cause error) error { return &Error{Kind: k, Err: cause} }

// Refused returns a Throttled or Overloaded error: the limit named by
// reason refused the request, which may be tried again after retryAfter.
func Refused(k Kind, reason string, retryAfter time.Duration) error {
	return &Error{Kind: k, Reason: reason, RetryAfter: retryAfter}
}

// RefusalOf returns the reason and retry delay of a Throttled or
// Overloaded error.
func RefusalOf(err error) (reason string, retryAfter time.Duration) {
	var e *Error
	if errors.As(err, &e) {
		return e.Reason, e.RetryAfter
	}
	return "", 0
}

// NonFieldErrors is the key of errors that concern the object as a whole.
const NonFieldErrors = "non_field_errors"

// FieldErrors maps a field name (or NonFieldErrors) to its messages, the shape
// of a Django REST Framework validation error body.
type FieldErrors map[string][]string

// Add records a message for field.
func (f FieldErrors) Add(field, msg string) { f[field] = append(f[field], msg) }

// Has reports whether field already has an error.
func (f FieldErrors) Has(field string) bool { return len(f[field]) > 0 }

// Err returns an Invalid error when any field failed, else nil.
func (f FieldErrors) Err() error {
	if len(f) == 0 {
		return nil
	}
	return &Error{Kind: Invalid, Fields: f}
}

// keys lists the failing fields in order, for log lines (names only, no values).
func (f FieldErrors) keys() string {
	ks := make([]string, 0, len(f))
	for k := range f {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return fmt.Sprint(ks)
}

// ItemErrors returns an Invalid error for a bulk write whose items failed.
func ItemErrors(items []FieldErrors) error { return &Error{Kind: Invalid, Items: items} }

// FieldsOf returns the field errors in err, or nil.
func FieldsOf(err error) FieldErrors {
	var e *Error
	if errors.As(err, &e) {
		return e.Fields
	}
	return nil
}

// ItemsOf returns the per-item errors of a failed bulk write, or nil.
func ItemsOf(err error) []FieldErrors {
	var e *Error
	if errors.As(err, &e) {
		return e.Items
	}
	return nil
}
