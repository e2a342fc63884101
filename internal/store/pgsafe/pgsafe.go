// Package pgsafe makes PostgreSQL's errors safe to return, log and print.
// A server error's message and detail can quote the values of a row (or,
// for a failed login, the user), and pgx's connection error names the
// connection's user: none of that may reach a log line, an error body or
// the command line's output (README, Configuration).
package pgsafe

import (
	"errors"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5/pgconn"
)

// Error is a server error as the service returns it: the SQLSTATE code and
// the constraint, never the server's message or detail.
type Error struct {
	Code       string
	Constraint string
}

func (e *Error) Error() string {
	if e.Constraint != "" {
		return fmt.Sprintf("postgres: SQLSTATE %s on constraint %s", e.Code, e.Constraint)
	}
	return "postgres: SQLSTATE " + e.Code
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

// Err returns err made safe: a server error becomes an *Error, a failed
// connection the addresses and what failed there (a server error met while
// connecting, such as a refused login, by its code alone). An error that
// wraps one of them keeps its own words around the safe text. Any other
// error is returned as it is.
func Err(err error) error {
	var unsafe, safe error
	var ce *pgconn.ConnectError
	var pe *pgconn.PgError
	switch {
	case errors.As(err, &ce):
		unsafe = ce
		if errors.As(ce, &pe) {
			safe = &Error{Code: pe.Code}
		} else {
			cause := ce.Unwrap()
			safe = &connectError{msg: "could not connect: " + strings.ReplaceAll(cause.Error(), "\n", "; "), cause: cause}
		}
	case errors.As(err, &pe):
		unsafe, safe = pe, &Error{Code: pe.Code, Constraint: pe.ConstraintName}
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
