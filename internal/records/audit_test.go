package records

import (
	"context"
	"errors"
	"path/filepath"
	"testing"
	"time"

	"accounts/internal/auth"
	"accounts/internal/schema"
	"accounts/internal/seal"
	"accounts/internal/store"
	"accounts/internal/store/storetest"
)

// lockedOutService is a service on an SQLite file holding one customer's
// tenant, whose write lock another connection then keeps until release.
func lockedOutService(t *testing.T) (svc *Service, p auth.Principal, tenants *schema.Resource, obj Object, release func()) {
	t.Helper()
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "a.db")
	catalog, db, ks, master := openTestStoreAt(t, path)
	p = listNewCustomer(t, ctx, db, ks, master, "Customer One")
	svc = New(catalog, db, seal.NewKeyring(master, nil, ks), nil)
	tenants = catalog.Resource(schema.Tenant)
	obj, err := svc.Create(ctx, p, tenants, listBody(t, "first_name", "Readlog"))
	listCheckCreate(t, "tenant", err)
	return svc, p, tenants, obj, storetest.HoldSQLiteWriteLock(t, path)
}

// A read whose audit entry the database does not take within the read
// log's batch timeout (10 s; here a write lock another process keeps, with
// writes queued before the entry) returns nothing, and its error is
// unavailability (the API's 503): it may be sent again, and once the lock
// is free it is served.
func TestReadLockedOutOfItsAuditEntry(t *testing.T) {
	ctx := context.Background()
	svc, p, tenants, obj, release := lockedOutService(t)
	// One write waits for the lock, and another behind it, which will
	// lead the next batch: the read's entry joins that batch, and the
	// read log's time for it ends while the batch waits.
	write := func() chan error {
		wrote := make(chan error, 1)
		go func() {
			_, err := svc.Create(ctx, p, tenants, listBody(t, "first_name", "Readlog-Write"))
			wrote <- err
		}()
		return wrote
	}
	// The first write's batch is the one waiting for the lock (the store
	// says its writes are stalled) before anything else is queued: had
	// the read's entry gone first, on a loaded machine, its batch would
	// have met the busy timeout in the first write's place, and the write
	// would have found the lock free.
	first := write()
	for !errors.Is(svc.db.Ready(ctx), store.ErrWritesStalled) {
		select {
		case err := <-first:
			t.Fatalf("the first write ended before it stalled: %v", err)
		case <-time.After(20 * time.Millisecond):
		}
	}
	second := write()
	time.Sleep(200 * time.Millisecond)
	_, err := svc.Get(ctx, p, tenants, obj.ID)
	release()
	if err := <-first; !store.Unavailable(err) {
		t.Errorf("the write locked out: %v, want unavailability", err)
	}
	<-second
	if err == nil || !store.Unavailable(err) {
		t.Fatalf("a read whose audit entry was locked out: %v, want unavailability", err)
	}
	if _, err := svc.Get(ctx, p, tenants, obj.ID); err != nil {
		t.Fatalf("the read after the lock was given back: %v", err)
	}
}

// A read and a write whose time runs out while another process keeps the
// write lock stop waiting then, with an error and nothing given, though
// each is the first of its batch (whose commit waits on for the lock):
// neither is held to the database's busy timeout (10 s). Once the lock is
// free, both are served.
func TestLockedOutRequestsLeaveAtTheirTimeLimit(t *testing.T) {
	ctx := context.Background()
	svc, p, tenants, obj, release := lockedOutService(t)
	limited := func(what string, op func(ctx context.Context) error) {
		t.Helper()
		ctx, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
		defer cancel()
		began := time.Now()
		err := op(ctx)
		if err == nil {
			t.Errorf("%s while the write lock is held elsewhere: no error", what)
		}
		if waited := time.Since(began); waited > 5*time.Second {
			t.Errorf("%s with 300 ms to run returned after %v: held past its time limit", what, waited.Round(time.Millisecond))
		}
	}
	limited("a read", func(ctx context.Context) error {
		_, err := svc.Get(ctx, p, tenants, obj.ID)
		return err
	})
	limited("a write", func(ctx context.Context) error {
		_, err := svc.Create(ctx, p, tenants, listBody(t, "first_name", "Readlog-Write"))
		return err
	})
	release()
	if _, err := svc.Get(ctx, p, tenants, obj.ID); err != nil {
		t.Errorf("the read after the lock was given back: %v", err)
	}
	_, err := svc.Create(ctx, p, tenants, listBody(t, "first_name", "Readlog-Write"))
	listCheckCreate(t, "the write after the lock was given back", err)
}
