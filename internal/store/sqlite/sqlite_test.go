package sqlite_test

import (
	"context"
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
