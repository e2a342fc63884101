package postgres

import (
	"context"
	"strconv"
	"testing"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"accounts/internal/schema"
	"accounts/internal/store"
	"accounts/internal/store/storetest"
)

func TestTokenFormatUpgrade(t *testing.T) {
	dbURL := storetest.PostgresURL(t)
	storetest.TokenFormatUpgrade(t, func(t *testing.T) (string, string) {
		migrations, err := store.LoadMigrations(migrationFiles, "migrations")
		if err != nil {
			t.Fatal(err)
		}
		ctx := context.Background()
		conn, err := pgx.Connect(ctx, dbURL)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close(ctx)
		customerID, tenantID := uuid.NewString(), uuid.NewString()
		stmts := []string{`CREATE TABLE schema_migrations (
			version integer PRIMARY KEY, name text NOT NULL, applied_at timestamptz NOT NULL)`}
		for _, m := range migrations[:4] {
			stmts = append(stmts, m.SQL, `INSERT INTO schema_migrations VALUES (`+strconv.Itoa(m.Version)+`, '`+m.Name+`', now())`)
		}
		stmts = append(stmts,
			`INSERT INTO customers (id, name, created_at) VALUES ('`+customerID+`', 'Kund', now())`,
			`INSERT INTO tenants (customer_id, id, created_at, seq, sealed, search_tokens_v2)
			 VALUES ('`+customerID+`', '`+tenantID+`', now(), 1, '\x00', '{1,2}')`)
		for _, s := range stmts {
			if _, err := conn.Exec(ctx, s); err != nil {
				t.Fatalf("making the database of migration 4: %v", err)
			}
		}
		return customerID, tenantID
	}, func(t *testing.T, catalog *schema.Catalog) store.Store {
		return open(t, dbURL, catalog)
	})
}
