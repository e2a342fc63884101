package sqlite_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/google/uuid"

	"accounts/internal/audit"
	"accounts/internal/openfiles/openfilestest"
	"accounts/internal/schema"
	"accounts/internal/servetest"
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

// testCatalog is the schema openWithCustomer's stores open with (sqlbuild
// knows a resource of that catalog only).
var testCatalog = schema.New()

// openWithCustomer opens a new store at path, closed when the test ends,
// with one customer, whose id it returns.
func openWithCustomer(t *testing.T, path string) (*sqlite.DB, string) {
	t.Helper()
	ctx := context.Background()
	db, err := sqlite.Open(ctx, path, testCatalog)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { db.Close() })
	customer := uuid.NewString()
	if err := db.CreateCustomer(ctx, store.Customer{ID: customer, Name: "Fastighets AB", CreatedAt: time.Now()}); err != nil {
		t.Fatal(err)
	}
	return db, customer
}

// writeTenants writes rows new tenants of customer in one Update.
func writeTenants(db *sqlite.DB, customer string, rows int) error {
	ctx := context.Background()
	tenants := testCatalog.Resource(schema.Tenant)
	return db.Update(ctx, func(tx store.Tx) error {
		for range rows {
			row := storetest.NewRow(tenants, time.Now().UTC().Truncate(time.Microsecond), nil)
			if err := tx.Insert(ctx, customer, tenants, row); err != nil {
				return err
			}
		}
		return nil
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

// Processes started together on a new database each open it, and one
// makes its tables while the others wait their turn: none fails. (Each
// connection read the new file, then asked for the write lock to make the
// table of migrations, and SQLite refused that upgrade at once, without
// waiting, when another had written meanwhile: about one round in twenty
// of four opens failed so, and so did the first of 15 rounds in half of
// the runs.)
func TestOpenTogetherOnANewFile(t *testing.T) {
	ctx := context.Background()
	for round := range 15 {
		path := filepath.Join(t.TempDir(), "accounts.db")
		errs := make([]error, 4)
		var wg sync.WaitGroup
		for i := range errs {
			wg.Go(func() {
				db, err := sqlite.Open(ctx, path, schema.New())
				if err == nil {
					err = db.Close()
				}
				errs[i] = err
			})
		}
		wg.Wait()
		if err := errors.Join(errs...); err != nil {
			t.Fatalf("round %d: opening a new database four at a time: %v", round, err)
		}
	}
}

// A write that finds the write lock held past the busy timeout (10 s) by
// another process wrote nothing: its error is unavailability (the API's
// 503), and the next write, once the lock is free, is made. Ready reports
// the failure for as long as the lock is kept, and no longer: it tries a
// write of its own, as no request may come to a process that is not ready.
func TestWriteLockedOutIsUnavailable(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "accounts.db")
	db, customer := openWithCustomer(t, path)
	write := func() error { return writeTenants(db, customer, 1) }
	ready := func() error {
		ctx, cancel := context.WithTimeout(ctx, 2*time.Second) // as /readyz's
		defer cancel()
		return db.Ready(ctx)
	}
	release := storetest.HoldSQLiteWriteLock(t, path)
	err := write()
	readyLocked := ready()
	release()
	if err == nil || !store.Unavailable(err) {
		t.Fatalf("a write locked out by another process: %v, want unavailability", err)
	}
	if readyLocked == nil {
		t.Error("Ready: nil while another process keeps the write lock, after a write failed on it")
	}
	if err := ready(); err != nil {
		t.Errorf("Ready once the lock is given back, before any request: %v", err)
	}
	if err := write(); err != nil {
		t.Fatalf("the write after the lock was given back: %v", err)
	}
}

// A disk that fills under the store fails writes, and the reads' audit
// entries, as unavailability (the API's 503, never a 500): nothing of them
// committed, and they may be sent again; once it has room, writes go
// through again.
func TestFullDiskIsUnavailable(t *testing.T) {
	ctx := context.Background()
	db, customer := openWithCustomer(t, filepath.Join(t.TempDir(), "accounts.db"))
	write := func(rows int) error { return writeTenants(db, customer, rows) }
	if err := write(1); err != nil {
		t.Fatal(err)
	}
	if err := sqlite.LimitPages(ctx, db, 0); err != nil {
		t.Fatal(err)
	}
	err := write(500)
	if err == nil {
		t.Fatal("500 rows went into a database that may not grow")
	}
	if !store.Unavailable(err) {
		t.Errorf("a write the full disk failed: %v, want unavailability", err)
	}
	entries := make([]audit.Entry, 400)
	for i := range entries {
		entries[i] = audit.Entry{CustomerID: customer, Time: time.Now().UTC(), ClientID: uuid.NewString(), RequestID: uuid.NewString(),
			Action: audit.Read, Resource: "tenant", ObjectIDs: []string{uuid.NewString()}, Fields: []string{"first_name"}}
	}
	if err := db.AppendAuditAlone(ctx, entries); err == nil || !store.UnavailableBeneath(err) {
		t.Errorf("reads' audit entries the full disk failed: %v, want unavailability", err)
	}
	if err := sqlite.LimitPages(ctx, db, -1); err != nil {
		t.Fatal(err)
	}
	if err := write(500); err != nil {
		t.Errorf("a write once the disk has room again: %v", err)
	}
}

// A WAL removed (or renamed) or a database file replaced under a running
// store leaves it writing to files no longer at the path, which a crash
// then loses: Ready reports it.
func TestFilesReplacedIsNotReady(t *testing.T) {
	for _, file := range []string{"accounts.db-wal", "accounts.db"} {
		t.Run(file, func(t *testing.T) {
			ctx := context.Background()
			dir := t.TempDir()
			path := filepath.Join(dir, "accounts.db")
			db, err := sqlite.Open(ctx, path, schema.New())
			if err != nil {
				t.Fatalf("Open: %v", err)
			}
			defer db.Close()
			if err := db.Ready(ctx); err != nil {
				t.Fatalf("Ready before: %v", err)
			}
			openfilestest.Replacements(t, filepath.Join(dir, file), func() error { return db.Ready(ctx) })
		})
	}
}

// A read that needs a new connection the storage will not open (here a
// path through what is now a file; a file made unreadable does the same)
// is unavailability (the API's 503), on every read path: a client's
// authentication, a read transaction, a listing of clients.
func TestCantOpenIsUnavailable(t *testing.T) {
	ctx := context.Background()
	dir := filepath.Join(t.TempDir(), "data")
	db, customer := openWithCustomer(t, filepath.Join(dir, "accounts.db"))
	sqlite.OpenEachRead(db)
	if err := os.Rename(dir, dir+".away"); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(dir, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	reads := map[string]func() error{
		"Client": func() error { _, err := db.Client(ctx, uuid.NewString()); return err },
		"View":   func() error { return db.View(ctx, func(store.Tx) error { return nil }) },
		"Clients": func() error {
			_, err := db.Clients(ctx, customer)
			return err
		},
	}
	for name, read := range reads {
		if err := read(); err == nil || !store.Unavailable(err) {
			t.Errorf("%s through a connection that can't be opened: %v, want unavailability", name, err)
		}
	}
	if err := os.Remove(dir); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(dir+".away", dir); err != nil {
		t.Fatal(err)
	}
	for name, read := range reads {
		if err := read(); err != nil && !errors.Is(err, store.ErrNotFound) {
			t.Errorf("%s once the folder is back: %v", name, err)
		}
	}
}

// TestCheckpointerCopiesBesideTheWriter commits far fewer pages than make
// the writer checkpoint, and waits for the database file to grow by them:
// the checkpointer copied them from the WAL, with no write to set it off.
func TestCheckpointerCopiesBesideTheWriter(t *testing.T) {
	defer sqlite.SetCheckpointEvery(20 * time.Millisecond)()
	path := filepath.Join(t.TempDir(), "accounts.db")
	db, customer := openWithCustomer(t, path)
	size := func() int64 {
		info, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		return info.Size()
	}
	before := size()
	if err := writeTenants(db, customer, 500); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(10 * time.Second); size() <= before; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the database file stayed at %d bytes for 10 s after a commit: nothing copied the WAL into it", before)
		}
	}
}

// A database on a file system that has filled is refused at open, and by
// the customer count that commands make before they open it, with the
// cause named (ErrFileSystemFull) where SQLite says only "disk I/O error";
// once the file system has room again, it opens.
func TestOpeningOnAFullFileSystemSaysSo(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	if err := syscall.Mount("tmpfs", dir, "tmpfs", 0, "size=4m"); err != nil {
		servetest.Missing(t, "this test mounts a tmpfs, which needs root: "+err.Error())
	}
	t.Cleanup(func() {
		if err := syscall.Unmount(dir, 0); err != nil {
			t.Errorf("unmounting the test's tmpfs: %v", err)
		}
	})
	path := filepath.Join(dir, "accounts.db")
	db, err := sqlite.Open(ctx, path, testCatalog)
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	filler := filepath.Join(dir, "filler")
	f, err := os.Create(filler)
	if err != nil {
		t.Fatal(err)
	}
	for _, err = f.Write(make([]byte, 1<<20)); err == nil; _, err = f.Write(make([]byte, 1<<20)) {
	}
	f.Close()
	if !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("filling the tmpfs: %v, want ENOSPC", err)
	}
	if _, err := sqlite.Open(ctx, path, testCatalog); !errors.Is(err, sqlite.ErrFileSystemFull) {
		t.Errorf("Open on a full file system: %v, want ErrFileSystemFull", err)
	}
	if _, _, err := sqlite.CountCustomers(ctx, path, nil); !errors.Is(err, sqlite.ErrFileSystemFull) {
		t.Errorf("CountCustomers on a full file system: %v, want ErrFileSystemFull", err)
	}
	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	if _, _, err := sqlite.CountCustomers(ctx, path, nil); err != nil {
		t.Errorf("CountCustomers once the file system has room: %v", err)
	}
	db, err = sqlite.Open(ctx, path, testCatalog)
	if err != nil {
		t.Fatalf("Open once the file system has room: %v", err)
	}
	if err := db.Close(); err != nil {
		t.Error(err)
	}
}
