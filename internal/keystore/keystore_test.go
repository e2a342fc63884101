package keystore

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"

	"accounts/internal/seal"
	"accounts/internal/store/storetest"
)

func testStore(t *testing.T, location string) {
	ctx := context.Background()
	s, err := Open(ctx, location)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	defer s.Close()
	master, err := seal.ParseMasterKey(seal.GenerateMasterKey())
	if err != nil {
		t.Fatal(err)
	}
	a, b := master.NewCustomerKeys("cust-a"), master.NewCustomerKeys("cust-b")
	if err := s.Put(ctx, append(a, b...)); err != nil {
		t.Fatalf("Put: %v", err)
	}
	if err := s.Put(ctx, a[:1]); err == nil {
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
	changed := got[0]
	changed.Wrapped = bytes.Repeat([]byte{7}, len(changed.Wrapped))
	if err := s.Replace(ctx, []seal.WrappedKey{changed}); err != nil {
		t.Fatalf("Replace: %v", err)
	}
	if again, _ := s.CustomerKeys(ctx, "cust-a"); !bytes.Equal(again[0].Wrapped, changed.Wrapped) {
		t.Error("Replace did not replace the key")
	}
	missing := changed
	missing.CustomerID = "nobody"
	if err := s.Replace(ctx, []seal.WrappedKey{missing}); err == nil {
		t.Error("Replace of a key that is not there succeeded")
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
