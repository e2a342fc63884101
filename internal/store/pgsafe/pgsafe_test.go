package pgsafe

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"accounts/internal/store"
)

// connect tries a real connection to url and returns its error.
func connect(t *testing.T, url string) error {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, url)
	if err == nil {
		conn.Close(ctx)
		t.Fatal("the connection succeeded")
	}
	return err
}

// closedAddress is the address of a port that was just closed: nothing
// listens there.
func closedAddress(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// checkSafe asserts that err, made safe, is one line that keeps prefix and
// names neither the user nor the password.
func checkSafe(t *testing.T, label string, err error, prefix string, secrets ...string) error {
	t.Helper()
	safe := Err(err)
	msg := safe.Error()
	for _, s := range secrets {
		if strings.Contains(msg, s) {
			t.Errorf("%s: the safe error names a secret of the URL", label)
		}
	}
	if strings.Contains(msg, "\n") {
		t.Errorf("%s: the safe error is not one line", label)
	}
	if !strings.HasPrefix(msg, prefix) {
		t.Errorf("%s: the safe error lost its context (want the prefix %q)", label, prefix)
	}
	return safe
}

// A failed connection's error names the connection's user (pgx's
// ConnectError) and, when the server refused the login, the server's
// message quotes it too: Err keeps neither, on a bare error or one wrapped
// with words of its own.
func TestConnectErrorsNameNoUser(t *testing.T) {
	addr := closedAddress(t)
	refused := connect(t, "postgres://pgsafe_probe_user:pgsafe_probe_pw@"+addr+"/nodb?connect_timeout=5")
	if !strings.Contains(refused.Error(), "pgsafe_probe_user") {
		t.Fatal("pgx's error does not name the user: this test would prove nothing")
	}
	safe := checkSafe(t, "refused", refused, "could not connect: ", "pgsafe_probe_user", "pgsafe_probe_pw")
	if !strings.Contains(safe.Error(), addr) {
		t.Errorf("the safe error does not name the address it could not reach")
	}
	checkSafe(t, "refused, wrapped", fmt.Errorf("keystore: reading: %w", refused), "keystore: reading: could not connect: ",
		"pgsafe_probe_user", "pgsafe_probe_pw")

	// A deadline stays visible to errors.Is.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := pgx.Connect(ctx, "postgres://pgsafe_probe_user@"+addr+"/nodb")
	if err == nil || !errors.Is(Err(err), context.Canceled) {
		t.Errorf("a canceled connection attempt: errors.Is(Err(err), context.Canceled) is false (err %v)", err != nil)
	}

	base := os.Getenv("ACCOUNTS_TEST_POSTGRES")
	if base == "" {
		t.Skip("the login refused by a server needs PostgreSQL: set ACCOUNTS_TEST_POSTGRES")
	}
	u, err := url.Parse(base)
	if err != nil {
		t.Fatal("ACCOUNTS_TEST_POSTGRES does not parse")
	}
	// A role that does not exist: the server's FATAL message quotes it.
	u.User = url.User("pgsafe_no_such_role")
	login := connect(t, u.String())
	if !strings.Contains(login.Error(), "pgsafe_no_such_role") {
		t.Fatal("pgx's error does not name the role: this test would prove nothing")
	}
	safe = checkSafe(t, "login", fmt.Errorf("postgres: connecting: %w", login), "postgres: connecting: postgres: SQLSTATE ", "pgsafe_no_such_role")
	var e *Error
	if !errors.As(safe, &e) || e.Code != "28000" {
		t.Errorf("the refused login's safe error: %v, want SQLSTATE 28000 (invalid_authorization_specification)", safe)
	}
}

// The errors of a database that can't be reached, or of a connection lost
// under a statement, are unavailability (store.Unavailable), which the API
// answers 503; a server's refusal of the statement itself is not.
func TestUnavailable(t *testing.T) {
	refused := Err(connect(t, "postgres://pgsafe_probe_user@"+closedAddress(t)+"/nodb?connect_timeout=5"))
	for _, c := range []struct {
		name string
		err  error
		want bool
	}{
		{"a refused connection", refused, true},
		{"a refused connection, wrapped", fmt.Errorf("postgres: reading: %w", refused), true},
		{"an ended backend", Err(&pgconn.PgError{Code: "57P01"}), true},
		{"a connection exception", Err(&pgconn.PgError{Code: "08006"}), true},
		{"too many connections", Err(&pgconn.PgError{Code: "53300"}), true},
		{"a unique violation", Err(&pgconn.PgError{Code: "23505"}), false},
		{"a deadline", Err(context.DeadlineExceeded), false},
	} {
		if got := store.Unavailable(c.err); got != c.want {
			t.Errorf("%s: Unavailable %v, want %v", c.name, got, c.want)
		}
	}

	base := os.Getenv("ACCOUNTS_TEST_POSTGRES")
	if base == "" {
		t.Skip("a connection lost under a statement needs PostgreSQL: set ACCOUNTS_TEST_POSTGRES")
	}
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, base)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)

	// A server that refuses the connection itself, whatever its code
	// (here 55000, a database an administrator closed to connections):
	// no statement ran.
	if _, err := conn.Exec(ctx, `DROP DATABASE IF EXISTS pgsafe_closed`); err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Exec(ctx, `CREATE DATABASE pgsafe_closed ALLOW_CONNECTIONS false`); err != nil {
		t.Fatal(err)
	}
	u, err := url.Parse(base)
	if err != nil {
		t.Fatal("ACCOUNTS_TEST_POSTGRES does not parse")
	}
	u.Path = "/pgsafe_closed"
	closed := Err(connect(t, u.String()))
	var e *Error
	if !errors.As(closed, &e) || e.Code != "55000" {
		t.Fatalf("a database closed to connections: %v, want SQLSTATE 55000", closed)
	}
	if !store.Unavailable(closed) || !store.Unavailable(fmt.Errorf("keystore: reading: %w", closed)) {
		t.Error("a connection the server refused: not unavailable")
	}
	if _, err := conn.Exec(ctx, `DROP DATABASE pgsafe_closed`); err != nil {
		t.Fatal(err)
	}

	conn.PgConn().Conn().Close()
	var one int
	err = conn.QueryRow(ctx, "SELECT 1").Scan(&one)
	if err == nil {
		t.Fatal("a statement on a closed connection succeeded")
	}
	if !store.Unavailable(Err(err)) {
		t.Errorf("a statement on a lost connection: not unavailable (%T)", err)
	}
	// pgx knows the connection closed now, and sends nothing.
	err = conn.QueryRow(ctx, "SELECT 1").Scan(&one)
	if !SentNothing(err) || !store.Unavailable(Err(err)) {
		t.Errorf("a statement on a connection pgx found closed: sent nothing %v, unavailable %v; want both (%T)",
			SentNothing(err), store.Unavailable(Err(err)), err)
	}
	// A statement whose context had ended sent nothing either, but it
	// is the caller's doing, not the database's absence.
	live, err := pgx.Connect(ctx, base)
	if err != nil {
		t.Fatal(err)
	}
	defer live.Close(ctx)
	ended, cancel := context.WithCancel(ctx)
	cancel()
	err = live.QueryRow(ended, "SELECT 1").Scan(&one)
	if err == nil || SentNothing(err) || store.Unavailable(Err(err)) {
		t.Errorf("a statement whose context had ended: err %v, sent nothing %v, unavailable %v; want neither", err != nil, SentNothing(err), store.Unavailable(Err(err)))
	}
}
