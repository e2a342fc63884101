package sqlite_test

import (
	"context"
	"database/sql"
	"path/filepath"
	"testing"

	"accounts/internal/schema"
	"accounts/internal/store"
	"accounts/internal/store/sqlite"
	"accounts/internal/store/storetest"
)

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T, catalog *schema.Catalog) store.Store {
		db, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "accounts.db"), catalog)
		if err != nil {
			t.Fatalf("Open: %v", err)
		}
		t.Cleanup(func() { db.Close() })
		return db
	})
}

// TestOpenWhileAnotherProcessWrites opens a migrated database while
// another connection holds its write lock, as a command does while servers
// write the file: opening must not wait for the lock, which a busy file's
// writers can keep from it past the busy timeout.
func TestOpenWhileAnotherProcessWrites(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "accounts.db")
	db, err := sqlite.Open(ctx, path, schema.New())
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	db.Close()
	other, err := sql.Open("sqlite", sqlite.WriterDSN(path))
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	conn, err := other.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := conn.ExecContext(ctx, `BEGIN IMMEDIATE`); err != nil {
		t.Fatal(err)
	}
	defer conn.ExecContext(ctx, `ROLLBACK`)
	again, err := sqlite.Open(ctx, path, schema.New())
	if err != nil {
		t.Fatalf("Open while another connection holds the write lock: %v", err)
	}
	again.Close()
}
