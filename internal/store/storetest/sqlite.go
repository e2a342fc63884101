package storetest

import (
	"context"
	"database/sql"
	"net/url"
	"testing"

	_ "modernc.org/sqlite" // the driver the SQLite store uses
)

// HoldSQLiteWriteLock takes the write lock of the SQLite database at path
// on a connection of its own, as another process would (a command, another
// server), until the returned function gives it back.
func HoldSQLiteWriteLock(t testing.TB, path string) (release func()) {
	t.Helper()
	ctx := context.Background()
	other, err := sql.Open("sqlite", "file:"+(&url.URL{Path: path}).EscapedPath()+"?_pragma=busy_timeout(10000)")
	if err != nil {
		t.Fatal(err)
	}
	conn, err := other.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := conn.ExecContext(ctx, `BEGIN IMMEDIATE`); err != nil {
		t.Fatal(err)
	}
	return func() {
		conn.ExecContext(ctx, `ROLLBACK`)
		conn.Close()
		other.Close()
	}
}
