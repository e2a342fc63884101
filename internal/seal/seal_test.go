package seal

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"errors"
	"slices"
	"testing"
)

func mustMaster(t testing.TB) *MasterKey {
	t.Helper()
	m, err := ParseMasterKey(GenerateMasterKey())
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func customerKeys(t testing.TB, m *MasterKey, customer string) *CustomerKeys {
	t.Helper()
	k, err := m.Unwrap(customer, m.NewCustomerKeys(customer))
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func TestParseMasterKeyRejectsWrongSizes(t *testing.T) {
	for _, in := range []string{"", "c2hvcnQ=", "not base64 at all!", GenerateMasterKey() + "AAAA"} {
		if _, err := ParseMasterKey(in); err == nil {
			t.Errorf("accepted a key of %d characters", len(in))
		}
	}
}

func TestSealOpensOnlyInItsPlace(t *testing.T) {
	m := mustMaster(t)
	a := customerKeys(t, m, "cust-a")
	b := customerKeys(t, m, "cust-b")
	plain := []byte(`{"first_name":"x"}`)
	sealed := a.Seal("Protectedidentity", "row-1", plain)
	if bytes.Contains(sealed, plain) {
		t.Fatal("sealed value contains the plaintext")
	}
	got, err := a.Open("Protectedidentity", "row-1", sealed)
	if err != nil || !bytes.Equal(got, plain) {
		t.Fatalf("round trip failed: %v", err)
	}
	cases := []struct {
		name     string
		keys     *CustomerKeys
		resource string
		row      string
	}{
		{"other row", a, "Protectedidentity", "row-2"},
		{"other resource", a, "Tenant", "row-1"},
		{"other customer", b, "Protectedidentity", "row-1"},
	}
	for _, c := range cases {
		if _, err := c.keys.Open(c.resource, c.row, sealed); !errors.Is(err, ErrOpen) {
			t.Errorf("%s: opened (err %v)", c.name, err)
		}
	}
	tampered := bytes.Clone(sealed)
	tampered[len(tampered)/2] ^= 1
	if _, err := a.Open("Protectedidentity", "row-1", tampered); !errors.Is(err, ErrOpen) {
		t.Error("tampered value opened")
	}
	if _, err := a.Open("Protectedidentity", "row-1", sealed[:10]); !errors.Is(err, ErrOpen) {
		t.Error("truncated value opened")
	}
}

// The associated data separates customer, resource, row and version with
// NUL; a NUL inside the resource or row would let two places join to the
// same bytes (resource "\x00" and row "0" as resource "" and row "\x000",
// found by FuzzSealMutation), so such places are refused.
func TestSealRefusesPlacesContainingNUL(t *testing.T) {
	k := customerKeys(t, mustMaster(t), "cust-a")
	sealed := k.Seal("Protectedidentity", "row-1", []byte("x"))
	for _, place := range [][2]string{{"\x00", "0"}, {"", "\x000"}, {"Protectedidentity\x00", "row-1"}, {"Protectedidentity", "row-1\x00"}} {
		if !sealPanics(k, place[0], place[1], []byte("x")) {
			t.Errorf("sealed for resource of %d and row of %d bytes containing NUL", len(place[0]), len(place[1]))
		}
		if _, err := k.Open(place[0], place[1], sealed); !errors.Is(err, ErrOpen) {
			t.Errorf("opened for resource of %d and row of %d bytes containing NUL: %v", len(place[0]), len(place[1]), err)
		}
	}
	if got, err := k.Open("Protectedidentity", "row-1", sealed); err != nil || string(got) != "x" {
		t.Errorf("a place without NUL does not open: %v", err)
	}
}

func TestWrappedKeysNeedTheirMasterAndCustomer(t *testing.T) {
	m1, m2 := mustMaster(t), mustMaster(t)
	wrapped := m1.NewCustomerKeys("cust-a")
	if _, err := m2.Unwrap("cust-a", wrapped); err == nil {
		t.Error("another master key unwrapped the keys")
	}
	moved := make([]WrappedKey, len(wrapped))
	for i, w := range wrapped {
		w.CustomerID = "cust-b"
		moved[i] = w
	}
	if _, err := m1.Unwrap("cust-b", moved); err == nil {
		t.Error("keys wrapped for one customer unwrapped for another")
	}
}

func TestBlindIndexIsKeyedPerCustomerResourceAndField(t *testing.T) {
	m := mustMaster(t)
	a := customerKeys(t, m, "cust-a")
	b := customerKeys(t, m, "cust-b")
	x := a.BlindIndex("Protectedidentity", "ssn", "value")
	if !bytes.Equal(x, a.BlindIndex("Protectedidentity", "ssn", "value")) {
		t.Error("blind index is not deterministic")
	}
	if bytes.Equal(x, b.BlindIndex("Protectedidentity", "ssn", "value")) {
		t.Error("two customers share a blind index")
	}
	// A protected identity's identity number must not be linkable to a
	// tenant's of the same number.
	if bytes.Equal(x, a.BlindIndex("Tenant", "ssn", "value")) {
		t.Error("two resources share a blind index")
	}
	if bytes.Equal(x, a.BlindIndex("Protectedidentity", "email", "value")) {
		t.Error("two fields share a blind index")
	}
	if bytes.Equal(x, a.BlindIndex("Protectedidentity", "ssn", "other")) {
		t.Error("two values share a blind index")
	}
	// The names are kept apart from each other and from the value.
	if bytes.Equal(a.BlindIndex("a", "bc", "d"), a.BlindIndex("ab", "c", "d")) ||
		bytes.Equal(a.BlindIndex("a", "b", "cd"), a.BlindIndex("a", "bc", "d")) {
		t.Error("names written differently share a blind index")
	}
}

// Rows written before the resource was bound into blind indexes carry the
// form without it (HMAC of field, NUL, value under the index key) until
// they are written again: lookups look for both.
func TestBlindIndexesFindRowsOfTheUnboundForm(t *testing.T) {
	m := mustMaster(t)
	k := customerKeys(t, m, "cust-a")
	mac := hmac.New(sha256.New, k.indexFor(k.current))
	mac.Write([]byte("ssn\x00value"))
	unbound := mac.Sum(nil)
	got := k.BlindIndexes("Tenant", "ssn", "value")
	if len(got) != 2 || !bytes.Equal(got[0], k.BlindIndex("Tenant", "ssn", "value")) || !bytes.Equal(got[1], unbound) {
		t.Errorf("a lookup looks for %d hashes, want the bound one, then the unbound one", len(got))
	}
	if bytes.Equal(k.BlindIndex("Tenant", "ssn", "value"), unbound) {
		t.Error("values are written in the unbound form")
	}
}

// Index keys follow the data key versions: values written now are indexed
// under the newest index key of a version up to the current data key's,
// lookups hash under every index key held, and keys without an index key
// for the current data version do not open.
func TestIndexKeysAreVersionedWithTheDataKeys(t *testing.T) {
	m := mustMaster(t)
	base := m.NewCustomerKeys("c")
	open := func(extra ...WrappedKey) *CustomerKeys {
		t.Helper()
		k, err := m.Unwrap("c", append(slices.Clone(base), extra...))
		if err != nil {
			t.Fatal(err)
		}
		return k
	}
	v1 := open()
	// Data key 2 without index key 2: still indexed under index key 1.
	d2 := open(m.NewDataKey("c", 2))
	if !bytes.Equal(d2.BlindIndex("R", "ssn", "x"), v1.BlindIndex("R", "ssn", "x")) || !bytes.Equal(d2.SearchKey("R", "f"), v1.SearchKey("R", "f")) {
		t.Error("data key 2 without index key 2 does not index under index key 1")
	}
	// Index key 3 before data key 3 (a rotation's first step): lookups use
	// it, writes do not yet.
	i3 := m.NewIndexKey("c", 3)
	pending := open(m.NewDataKey("c", 2), i3)
	if !bytes.Equal(pending.BlindIndex("R", "ssn", "x"), v1.BlindIndex("R", "ssn", "x")) {
		t.Error("an index key of a data version not yet made is used for writes")
	}
	if got := pending.BlindIndexes("R", "ssn", "x"); len(got) != 4 || !bytes.Equal(got[0], v1.BlindIndex("R", "ssn", "x")) {
		t.Errorf("lookups look for %d hashes, want both index keys' in both forms, the older first", len(got))
	}
	if got := pending.SearchKeys("R", "f"); len(got) != 2 || !bytes.Equal(got[0], v1.SearchKey("R", "f")) {
		t.Errorf("lookups use %d search keys, want both, the older first", len(got))
	}
	// Data key 3: writes use index key 3.
	rotated := open(m.NewDataKey("c", 2), i3, m.NewDataKey("c", 3))
	if got := rotated.BlindIndexes("R", "ssn", "x"); !bytes.Equal(rotated.BlindIndex("R", "ssn", "x"), got[1]) || bytes.Equal(got[0], got[1]) {
		t.Error("after data key 3, writes are not indexed under index key 3 alone")
	}
	if !rotated.HasIndexKey(3) || rotated.HasIndexKey(2) {
		t.Error("HasIndexKey does not report the index keys held")
	}
	// No index key up to the current data version: refused.
	if _, err := m.Unwrap("c", []WrappedKey{m.NewDataKey("c", 1), m.NewIndexKey("c", 2)}); err == nil {
		t.Error("keys without an index key for their data version opened")
	}
}

type fixedSource struct {
	keys  []WrappedKey
	calls int
}

func (f *fixedSource) CustomerKeys(context.Context, string) ([]WrappedKey, error) {
	f.calls++
	return f.keys, nil
}

func TestKeyringUnwrapsOnce(t *testing.T) {
	m := mustMaster(t)
	src := &fixedSource{keys: m.NewCustomerKeys("cust-a")}
	ring := NewKeyring(m, nil, src)
	for i := 0; i < 3; i++ {
		if _, err := ring.Customer(context.Background(), "cust-a"); err != nil {
			t.Fatal(err)
		}
	}
	if src.calls != 1 {
		t.Errorf("keys were read %d times, want 1", src.calls)
	}
}
