package apitest

import (
	"database/sql"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"testing"

	"accounts/internal/config"
	"accounts/internal/store/dialect"

	_ "github.com/jackc/pgx/v5/stdlib"
	_ "modernc.org/sqlite"
)

// engineEnv selects the database the suite runs on: unset for SQLite, or
// "postgres". The SQLite pass starts the PostgreSQL pass itself (see
// runPostgresPass), so one `go test ./...` runs the whole suite on both.
const engineEnv = "ACCOUNTS_TEST_ENGINE"

func onPostgres() bool { return os.Getenv(engineEnv) == "postgres" }

// runPostgresPass runs this test binary again, with the same flags, on
// PostgreSQL, when ACCOUNTS_TEST_POSTGRES names a server.
func runPostgresPass() int {
	if os.Getenv("ACCOUNTS_TEST_POSTGRES") == "" {
		fmt.Println("apitest: PostgreSQL pass not run: set ACCOUNTS_TEST_POSTGRES=postgres://user@host:5432/db to run the suite on PostgreSQL too")
		return 0
	}
	fmt.Println("apitest: PostgreSQL pass")
	cmd := exec.Command(os.Args[0], os.Args[1:]...)
	cmd.Env = append(os.Environ(), engineEnv+"=postgres")
	cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
	if err := cmd.Run(); err != nil {
		fmt.Println("apitest: PostgreSQL pass failed:", err)
		return 1
	}
	return 0
}

// rawDB is the test's database opened directly, behind the service's
// back, to inspect or tamper with what is stored. Statements use ?
// placeholders on both engines.
type rawDB struct {
	t       testing.TB
	db      *sql.DB
	pg      bool
	dialect dialect.Dialect
}

func (e *env) rawDB() *rawDB {
	e.t.Helper()
	var db *sql.DB
	var err error
	if onPostgres() {
		db, err = sql.Open("pgx", e.vars[config.EnvDatabase])
	} else {
		db, err = sql.Open("sqlite", "file:"+(&url.URL{Path: e.vars[config.EnvDatabase]}).EscapedPath()+
			"?_pragma=busy_timeout(10000)&_pragma=foreign_keys(0)")
		if err == nil {
			db.SetMaxOpenConns(1)
		}
	}
	if err != nil {
		e.t.Fatalf("opening the database directly: %v", err)
	}
	e.t.Cleanup(func() { db.Close() })
	d := dialect.SQLite
	if onPostgres() {
		d = dialect.Postgres
	}
	return &rawDB{t: e.t, db: db, pg: onPostgres(), dialect: d}
}

// bind writes q's ? placeholders as the database's engine takes them.
func (r *rawDB) bind(q string) string { return r.dialect.Bind(q) }

// exec runs one statement that must change exactly one row.
func (r *rawDB) exec(q string, args ...any) {
	r.t.Helper()
	res, err := r.db.Exec(r.bind(q), args...)
	if err != nil {
		r.t.Fatalf("exec: %v", err)
	}
	if n, err := res.RowsAffected(); err != nil || n != 1 {
		r.t.Fatalf("exec changed %d rows (err %v), want 1", n, err)
	}
}

// count runs a count query.
func (r *rawDB) count(q string, args ...any) int {
	r.t.Helper()
	var n int
	if err := r.db.QueryRow(r.bind(q), args...).Scan(&n); err != nil {
		r.t.Fatalf("count: %v", err)
	}
	return n
}

// storedCopy is a named copy of what the database keeps on disk or would
// put in a backup.
type storedCopy struct {
	name string
	data []byte
}

// storedBytes returns every byte the database holds for this test: the
// SQLite file and its WAL (which must exist: the server is open), or a
// pg_dump of the test's PostgreSQL schema.
func (e *env) storedBytes() []storedCopy {
	e.t.Helper()
	if onPostgres() {
		u, err := url.Parse(e.vars[config.EnvDatabase])
		if err != nil {
			e.t.Fatal(err)
		}
		q := u.Query()
		schema := q.Get("search_path")
		q.Del("search_path")
		u.RawQuery = q.Encode()
		out, err := exec.Command("pg_dump", "--schema="+schema, "--no-owner", u.String()).Output()
		if err != nil {
			e.t.Fatalf("pg_dump: %v", err)
		}
		return []storedCopy{{"pg_dump of the test schema", out}}
	}
	path := e.vars[config.EnvDatabase]
	main, err := os.ReadFile(path)
	if err != nil {
		e.t.Fatalf("reading the database file: %v", err)
	}
	wal, err := os.ReadFile(path + "-wal")
	if err != nil || len(wal) == 0 {
		e.t.Fatalf("reading the WAL file (the server is open, so it must exist and hold data): %v", err)
	}
	return []storedCopy{{"database file", main}, {"WAL file", wal}}
}
