package storetest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"net/url"
	"os"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// PostgresEnv names the environment variable holding the URL of a
// PostgreSQL database (15 or later) that tests may create schemas in.
const PostgresEnv = "ACCOUNTS_TEST_POSTGRES"

// PostgresURL returns the URL of a fresh, empty schema of the test
// database: PostgresEnv's URL with search_path set to a new schema, which
// is dropped with everything in it when the test ends. It skips the test
// when PostgresEnv is unset.
func PostgresURL(t testing.TB) string {
	t.Helper()
	base := os.Getenv(PostgresEnv)
	if base == "" {
		t.Skip("PostgreSQL tests are off: set " + PostgresEnv + "=postgres://user@host:5432/dbname to run them")
	}
	schemaURL, drop, err := NewSchema(base)
	if err != nil {
		t.Fatalf("%s: %v", PostgresEnv, err)
	}
	t.Cleanup(func() {
		if err := drop(); err != nil {
			t.Error(err)
		}
	})
	return schemaURL
}

// NewSchema makes a new, empty schema in the PostgreSQL database at base
// and returns base with search_path set to it, and a function that drops the
// schema with everything in it. Its errors never quote the URL, which may
// hold a password.
func NewSchema(base string) (schemaURL string, drop func() error, err error) {
	u, err := url.Parse(base)
	if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
		return "", nil, errors.New("not a postgres:// URL")
	}
	var random [8]byte
	if _, err := rand.Read(random[:]); err != nil {
		return "", nil, err
	}
	name := "t_" + hex.EncodeToString(random[:])
	admin := func(sql string) error {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		conn, err := pgx.Connect(ctx, base)
		if err != nil {
			return err
		}
		defer conn.Close(ctx)
		_, err = conn.Exec(ctx, sql)
		return err
	}
	if err := admin("CREATE SCHEMA " + name); err != nil {
		return "", nil, errors.New("creating schema: " + err.Error())
	}
	drop = func() error {
		if err := admin("DROP SCHEMA " + name + " CASCADE"); err != nil {
			return errors.New("dropping schema " + name + ": " + err.Error())
		}
		return nil
	}
	q := u.Query()
	q.Set("search_path", name)
	u.RawQuery = q.Encode()
	return u.String(), drop, nil
}
