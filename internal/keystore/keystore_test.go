package keystore

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"accounts/internal/openfiles/openfilestest"
	"accounts/internal/seal"
	"accounts/internal/store/storetest"
)

func newMaster(t *testing.T) *seal.MasterKey {
	t.Helper()
	m, err := seal.ParseMasterKey(seal.GenerateMasterKey())
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func testStore(t *testing.T, location string) {
	ctx := context.Background()
	if s, ok, err := Lookup(ctx, location); err != nil || ok || s != nil {
		t.Fatalf("Lookup before Open: ok %v, err %v; want no key store", ok, err)
	}
	s, err := Open(ctx, location)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	defer s.Close()
	master := newMaster(t)
	a, b := master.NewCustomerKeys("cust-a"), master.NewCustomerKeys("cust-b")
	if err := s.Put(ctx, nil, append(a, b...)); err != nil {
		t.Fatalf("Put: %v", err)
	}
	if err := s.Put(ctx, nil, a[:1]); err == nil {
		t.Error("a key was stored twice")
	}
	got, err := s.CustomerKeys(ctx, "cust-a")
	if err != nil || len(got) != 2 {
		t.Fatalf("CustomerKeys: %d keys, err %v", len(got), err)
	}
	if _, err := master.Unwrap("cust-a", got); err != nil {
		t.Errorf("stored keys do not unwrap: %v", err)
	}
	all, err := s.All(ctx)
	if err != nil || len(all) != 4 {
		t.Fatalf("All: %d keys, err %v", len(all), err)
	}

	// The check value: none yet; the first one stays.
	if c, err := s.Check(ctx); err != nil || c != nil {
		t.Fatalf("Check of a new key store: %d bytes, err %v", len(c), err)
	}
	check := master.NewCheck()
	if stored, err := s.InitCheck(ctx, check); err != nil || !bytes.Equal(stored, check) {
		t.Fatalf("InitCheck: err %v, or another value stored", err)
	}
	if stored, err := s.InitCheck(ctx, newMaster(t).NewCheck()); err != nil || !bytes.Equal(stored, check) {
		t.Fatalf("a second InitCheck: err %v, or it replaced the first", err)
	}
	if err := s.Put(ctx, nil, master.NewCustomerKeys("cust-c")); !errors.Is(err, ErrCheckChanged) {
		t.Errorf("Put without the check value: err %v, want ErrCheckChanged", err)
	}
	if err := s.Put(ctx, newMaster(t).NewCheck(), master.NewCustomerKeys("cust-c")); !errors.Is(err, ErrCheckChanged) {
		t.Errorf("Put with another check value: err %v, want ErrCheckChanged", err)
	}
	if err := s.Put(ctx, check, master.NewCustomerKeys("cust-c")); err != nil {
		t.Errorf("Put with the check value: %v", err)
	}

	// Lookup reads the same, opened for reading only.
	r, ok, err := Lookup(ctx, location)
	if err != nil || !ok {
		t.Fatalf("Lookup after Open: ok %v, err %v", ok, err)
	}
	if c, err := r.Check(ctx); err != nil || !bytes.Equal(c, check) {
		t.Errorf("Lookup's Check: err %v, or another value", err)
	}
	if all, err := r.All(ctx); err != nil || len(all) != 6 {
		t.Errorf("Lookup's All: %d keys, err %v", len(all), err)
	}
	r.Close()

	// Rotate: every key and the check value, together.
	fresh := newMaster(t)
	freshCheck := fresh.NewCheck()
	err = s.Rotate(ctx, func(c []byte, keys []seal.WrappedKey) ([]byte, []seal.WrappedKey, error) {
		if !bytes.Equal(c, check) || len(keys) != 6 {
			return nil, nil, fmt.Errorf("rotation saw %d keys, and the check value equal: %v", len(keys), bytes.Equal(c, check))
		}
		var out []seal.WrappedKey
		for _, k := range keys {
			nk, err := master.Rewrap(k, fresh)
			if err != nil {
				return nil, nil, err
			}
			out = append(out, nk)
		}
		return freshCheck, out, nil
	})
	if err != nil {
		t.Fatalf("Rotate: %v", err)
	}
	if c, _ := s.Check(ctx); !bytes.Equal(c, freshCheck) {
		t.Error("Rotate did not store the new check value")
	}
	all, _ = s.All(ctx)
	for _, k := range all {
		if !fresh.OpensKey(k) || master.OpensKey(k) {
			t.Error("a key is not under the new master key after Rotate")
		}
	}
	// A failing rotation changes nothing.
	err = s.Rotate(ctx, func([]byte, []seal.WrappedKey) ([]byte, []seal.WrappedKey, error) {
		return nil, nil, errors.New("stop")
	})
	if err == nil {
		t.Error("a failing Rotate succeeded")
	}
	if c, _ := s.Check(ctx); !bytes.Equal(c, freshCheck) {
		t.Error("a failing Rotate changed the check value")
	}
	missing := all[0]
	missing.CustomerID = "nobody"
	err = s.Rotate(ctx, func(c []byte, _ []seal.WrappedKey) ([]byte, []seal.WrappedKey, error) {
		return c, []seal.WrappedKey{missing}, nil
	})
	if err == nil {
		t.Error("Rotate of a key that is not there succeeded")
	}

	if err := s.Destroy(ctx, "cust-a"); err != nil {
		t.Fatalf("Destroy: %v", err)
	}
	if keys, err := s.CustomerKeys(ctx, "cust-a"); err != nil || len(keys) != 0 {
		t.Errorf("after Destroy: %d keys, err %v", len(keys), err)
	}
	if keys, _ := s.CustomerKeys(ctx, "cust-b"); len(keys) != 2 {
		t.Errorf("Destroy took another customer's keys: %d left", len(keys))
	}
}

func TestSQLiteKeyStore(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sub", "keys.db")
	testStore(t, path)
	if info, err := os.Stat(path); err != nil || info.Mode().Perm() != 0o600 {
		t.Errorf("key store file mode %v (err %v), want 0600", info.Mode().Perm(), err)
	}
}

func TestPostgresKeyStore(t *testing.T) {
	testStore(t, storetest.PostgresURL(t))
}

// Processes opening a new key store at once all open it: its tables are
// made once, the others wait for them (on PostgreSQL, two CREATE TABLE IF
// NOT EXISTS at once fail one of them).
func testOpenTogether(t *testing.T, location string) {
	const n = 8
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			ks, err := Open(context.Background(), location)
			if err == nil {
				_, err = ks.All(context.Background())
				ks.Close()
			}
			errs[i] = err
		})
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("Open %d of %d at once: %v", i, n, err)
		}
	}
}

func TestSQLiteOpenTogether(t *testing.T) {
	testOpenTogether(t, filepath.Join(t.TempDir(), "keys.db"))
}

func TestPostgresOpenTogether(t *testing.T) {
	for range 3 {
		testOpenTogether(t, storetest.PostgresURL(t))
	}
}

// Keys put while a rotation runs are either rewrapped by it or refused
// (ErrCheckChanged): the key store never ends with keys under two master
// keys.
func testPutDuringRotate(t *testing.T, location string) {
	ctx := context.Background()
	s, err := Open(ctx, location)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	old, fresh := newMaster(t), newMaster(t)
	check, err := s.InitCheck(ctx, old.NewCheck())
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	refused := 0
	var mu sync.Mutex
	for i := range 20 {
		wg.Go(func() {
			err := s.Put(ctx, check, old.NewCustomerKeys(fmt.Sprintf("cust-%d", i)))
			mu.Lock()
			defer mu.Unlock()
			if errors.Is(err, ErrCheckChanged) {
				refused++
			} else if err != nil {
				t.Errorf("Put: %v", err)
			}
		})
	}
	wg.Go(func() {
		err := s.Rotate(ctx, func(_ []byte, keys []seal.WrappedKey) ([]byte, []seal.WrappedKey, error) {
			var out []seal.WrappedKey
			for _, k := range keys {
				nk, err := old.Rewrap(k, fresh)
				if err != nil {
					return nil, nil, err
				}
				out = append(out, nk)
			}
			return fresh.NewCheck(), out, nil
		})
		if err != nil {
			t.Errorf("Rotate: %v", err)
		}
	})
	wg.Wait()
	all, err := s.All(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(all) != 2*(20-refused) {
		t.Errorf("%d keys stored, want %d", len(all), 2*(20-refused))
	}
	for _, k := range all {
		if !fresh.OpensKey(k) {
			t.Errorf("a key of %s is not under the rotated master key", k.CustomerID)
		}
	}
}

func TestSQLitePutDuringRotate(t *testing.T) {
	testPutDuringRotate(t, filepath.Join(t.TempDir(), "keys.db"))
}

func TestPostgresPutDuringRotate(t *testing.T) {
	testPutDuringRotate(t, storetest.PostgresURL(t))
}

// TestSQLiteFileReplacedFailsCheck moves a serving process's key store file
// away, and puts a copy in its place: the keys a process writes then go
// to the file it has open, which nothing reads once it stops. Check, which
// readiness calls, fails until the file it opened is back.
func TestSQLiteFileReplacedFailsCheck(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	path := filepath.Join(dir, "keys.db")
	s, err := Open(ctx, path)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	defer s.Close()
	if _, err := s.InitCheck(ctx, newMaster(t).NewCheck()); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Check(ctx); err != nil {
		t.Fatalf("Check before: %v", err)
	}
	openfilestest.Replacements(t, path, func() error {
		_, err := s.Check(ctx)
		return err
	})
	if check, err := s.Check(ctx); err != nil || check == nil {
		t.Errorf("Check after: %v (check value %v)", err, check != nil)
	}
}
