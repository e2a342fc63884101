package sqlite

import (
	"context"
	"database/sql"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/google/uuid"

	"accounts/internal/schema"
	"accounts/internal/store"
	"accounts/internal/store/storetest"
)

func TestTokenFormatUpgrade(t *testing.T) {
	path := filepath.Join(t.TempDir(), "accounts.db")
	storetest.TokenFormatUpgrade(t, func(t *testing.T) (string, string) {
		migrations, err := store.LoadMigrations(migrationFiles, "migrations")
		if err != nil {
			t.Fatal(err)
		}
		raw, err := sql.Open("sqlite", WriterDSN(path))
		if err != nil {
			t.Fatal(err)
		}
		defer raw.Close()
		customerID, tenantID := uuid.NewString(), uuid.NewString()
		stmts := []string{`CREATE TABLE schema_migrations (
			version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TEXT NOT NULL) STRICT`}
		for _, m := range migrations[:4] {
			stmts = append(stmts, m.SQL, `INSERT INTO schema_migrations VALUES (`+strconv.Itoa(m.Version)+`, '`+m.Name+`', '2026-11-29T00:00:00.000000Z')`)
		}
		stmts = append(stmts,
			`INSERT INTO customers (id, name, created_at) VALUES ('`+customerID+`', 'Kund', '2026-11-29T00:00:00.000000Z')`,
			`INSERT INTO tenants (customer_id, id, created_at, seq, sealed, search_tokens_v2, search_row)
			 VALUES ('`+customerID+`', '`+tenantID+`', '2026-11-29T00:00:00.000000Z', 1, x'00', 2, 1)`,
			`INSERT INTO tenants_search (rowid, tokens) VALUES (1, 't1 t2')`)
		for _, s := range stmts {
			if _, err := raw.Exec(s); err != nil {
				t.Fatalf("making the database of migration 4: %v", err)
			}
		}
		return customerID, tenantID
	}, func(t *testing.T, catalog *schema.Catalog) store.Store {
		db, err := Open(context.Background(), path, catalog)
		if err != nil {
			t.Fatalf("Open: %v", err)
		}
		t.Cleanup(func() { db.Close() })
		// The FTS5 index agrees with its table after the migration.
		if _, err := db.writer.Exec(`INSERT INTO tenants_search (tenants_search) VALUES ('integrity-check')`); err != nil {
			t.Errorf("FTS5 integrity-check: %v", err)
		}
		return db
	})
}
