// Package pgsafe makes PostgreSQL's errors safe to return, log and print.
// A server error's message and detail can quote the values of a row (or,
// for a failed login, the user), and pgx's connection error names the
// connection's user: none of that may reach a log line, an error body or
// the command line's output (README, Configuration). The safe errors also
// say which failures are the database's absence (store.Unavailable).
package pgsafe

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"

	"github.com/jackc/pgx/v5/pgconn"

	"accounts/internal/store"
)

// Error is a server error as the service returns it: the SQLSTATE code and
// the constraint, never the server's message or detail.
type Error struct {
	Code       string
	Constraint string
	// Connecting is set when the server refused a connection, not a
	// statement: whatever its reason (a database closed to connections,
	// a login it no longer takes), no statement ran.
	Connecting bool
}

func (e *Error) Error() string {
	if e.Constraint != "" {
		return fmt.Sprintf("postgres: SQLSTATE %s on constraint %s", e.Code, e.Constraint)
	}
	return "postgres: SQLSTATE " + e.Code
}

// Unavailable reports whether the server refused the connection, or
// refused the statement because its connection is going or gone, or it
// takes no connections (store.Unavailable): a connection exception (class
// 08), an ended backend (57P01 admin_shutdown, 57P02 crash_shutdown, 57P03
// cannot_connect_now), or too many connections (53300). Nothing of such a
// statement committed, unless it was a COMMIT, which the caller then says
// (a wrapper of its own).
func (e *Error) Unavailable() bool {
	if e.Connecting {
		return true
	}
	switch e.Code {
	case "57P01", "57P02", "57P03", "53300":
		return true
	}
	return strings.HasPrefix(e.Code, "08")
}

// connectError is a failed connection attempt without the user pgx names
// in it: what failed to connect where (addresses, the dial error), on one
// line.
type connectError struct {
	msg   string
	cause error
}

func (e *connectError) Error() string { return e.msg }

// Unwrap keeps errors.Is working on the cause (a deadline, say).
func (e *connectError) Unwrap() error { return e.cause }

// Unavailable is true: no connection, no statement (store.Unavailable).
func (e *connectError) Unavailable() bool { return true }

// SentNothing reports whether pgx failed before it sent the statement to
// the server (pgconn.SafeToRetry: a connection it found closed, say),
// for a reason other than the caller's context, which ended: the
// statement did nothing, and may run on another connection.
func SentNothing(err error) bool {
	return pgconn.SafeToRetry(err) && !errors.Is(err, context.Canceled) && !errors.Is(err, context.DeadlineExceeded)
}

// networkFailure reports whether err is the network's: an operation on the
// socket that failed, a socket already closed, or the connection's stream
// ending before the server's answer did. (Not net.Error, which a context's
// deadline is too.)
func networkFailure(err error) bool {
	var op *net.OpError
	return errors.As(err, &op) || errors.Is(err, net.ErrClosed) || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF)
}

// Err returns err made safe: a server error becomes an *Error, a failed
// connection the addresses and what failed there (a server error met while
// connecting, such as a refused login, by its code alone). An error that
// wraps one of them keeps its own words around the safe text. A failure
// of the network beneath a statement, or one pgx says sent nothing, is
// marked store.MarkUnavailable. Any other error is returned as it is.
func Err(err error) error {
	if err == nil {
		// Every statement's outcome passes here: a success asks nothing.
		return nil
	}
	var unsafe, safe error
	var ce *pgconn.ConnectError
	var pe *pgconn.PgError
	switch {
	case errors.As(err, &ce):
		unsafe = ce
		if errors.As(ce, &pe) {
			safe = &Error{Code: pe.Code, Connecting: true}
		} else {
			cause := ce.Unwrap()
			safe = &connectError{msg: "could not connect: " + strings.ReplaceAll(cause.Error(), "\n", "; "), cause: cause}
		}
	case errors.As(err, &pe):
		unsafe, safe = pe, &Error{Code: pe.Code, Constraint: pe.ConstraintName}
	case networkFailure(err) || SentNothing(err):
		// The network's words, or pgx's that it sent nothing (a
		// connection it found closed), with no value in them; nothing
		// of the statement committed, unless it was a COMMIT, which
		// the caller then says.
		return store.MarkUnavailable(err)
	default:
		return err
	}
	if err == unsafe {
		return safe
	}
	outer, inner := err.Error(), unsafe.Error()
	if !strings.Contains(outer, inner) {
		// The wrapping did not quote the error as it is: its words can't
		// be kept without the unsafe ones.
		return safe
	}
	return &wrapped{msg: strings.Replace(outer, inner, safe.Error(), 1), safe: safe}
}

// wrapped is an error that wrapped an unsafe one: its message with the
// safe text in the unsafe one's place, and the safe error beneath it.
type wrapped struct {
	msg  string
	safe error
}

func (e *wrapped) Error() string { return e.msg }
func (e *wrapped) Unwrap() error { return e.safe }

// Misconfigured reports, for an error met while connecting, whether the
// server refused what the URL names rather than failed to answer: a
// database that does not exist, a user or password it refuses, or a
// setting it does not know. Such an error does not pass by itself; it
// says what it is in words a refusal to start can give (no value of the
// URL in them).
func Misconfigured(err error) (reason string, ok bool) {
	var e *Error
	if !errors.As(err, &e) {
		return "", false
	}
	switch {
	case e.Code == "3D000":
		return "the server has no database of the name the URL gives", true
	case strings.HasPrefix(e.Code, "28"):
		return "the server refuses the URL's user or password", true
	case e.Code == "42704":
		return "the server does not know a setting the URL gives", true
	}
	return "", false
}
