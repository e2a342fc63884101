package sqlite_test

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/uuid"

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
	defer storetest.HoldSQLiteWriteLock(t, path)()
	again, err := sqlite.Open(ctx, path, schema.New())
	if err != nil {
		t.Fatalf("Open while another connection holds the write lock: %v", err)
	}
	again.Close()
}

// A write that finds the write lock held past the busy timeout (10 s) by
// another process wrote nothing: its error is unavailability (the API's
// 503), and the next write, once the lock is free, is made.
func TestWriteLockedOutIsUnavailable(t *testing.T) {
	ctx := context.Background()
	catalog := schema.New()
	path := filepath.Join(t.TempDir(), "accounts.db")
	db, err := sqlite.Open(ctx, path, catalog)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	defer db.Close()
	customer := uuid.NewString()
	if err := db.CreateCustomer(ctx, store.Customer{ID: customer, Name: "Fastighets AB", CreatedAt: time.Now()}); err != nil {
		t.Fatal(err)
	}
	tenants := catalog.Resource(schema.Tenant)
	write := func() error {
		row := storetest.NewRow(tenants, time.Now().UTC().Truncate(time.Microsecond), nil)
		return db.Update(ctx, func(tx store.Tx) error { return tx.Insert(ctx, customer, tenants, row) })
	}
	release := storetest.HoldSQLiteWriteLock(t, path)
	err = write()
	release()
	if err == nil || !store.Unavailable(err) {
		t.Fatalf("a write locked out by another process: %v, want unavailability", err)
	}
	if err := write(); err != nil {
		t.Fatalf("the write after the lock was given back: %v", err)
	}
}
