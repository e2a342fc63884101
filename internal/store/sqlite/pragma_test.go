package sqlite

import (
	"context"
	"database/sql"
	"path/filepath"
	"testing"

	"accounts/internal/schema"
)

// TestConnectionSettings checks each pool's settings as SQLite reports
// them: all durable (WAL, synchronous=FULL) with foreign keys on, a WAL
// cut back to 64 MiB when it restarts, and only
// the writer keeping its sub-journals in memory and checkpointing every
// 10,000 pages (writerPragmas).
func TestConnectionSettings(t *testing.T) {
	ctx := context.Background()
	db, err := Open(ctx, filepath.Join(t.TempDir(), "accounts.db"), schema.New())
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	defer db.Close()
	// PRAGMA temp_store is 0 (the build's default: files), 1 (files) or
	// 2 (memory); PRAGMA synchronous 2 is FULL.
	for _, pool := range []struct {
		name, tempStore, checkpoint string
		db                          *sql.DB
	}{{"writer", "2", "10000", db.writer}, {"admin", "0", "1000", db.admin}, {"reader", "0", "1000", db.reader}} {
		want := map[string]string{"journal_mode": "wal", "synchronous": "2", "foreign_keys": "1", "journal_size_limit": "67108864",
			"temp_store": pool.tempStore, "wal_autocheckpoint": pool.checkpoint}
		for pragma, value := range want {
			var got string
			if err := pool.db.QueryRowContext(ctx, "PRAGMA "+pragma).Scan(&got); err != nil {
				t.Fatalf("%s: PRAGMA %s: %v", pool.name, pragma, err)
			}
			if got != value {
				t.Errorf("%s: PRAGMA %s = %s, want %s", pool.name, pragma, got, value)
			}
		}
	}
}
