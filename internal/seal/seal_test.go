package seal

import (
	"bytes"
	"context"
	"errors"
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

func TestBlindIndexIsKeyedPerCustomerAndField(t *testing.T) {
	m := mustMaster(t)
	a := customerKeys(t, m, "cust-a")
	b := customerKeys(t, m, "cust-b")
	x := a.BlindIndex("ssn", "value")
	if !bytes.Equal(x, a.BlindIndex("ssn", "value")) {
		t.Error("blind index is not deterministic")
	}
	if bytes.Equal(x, b.BlindIndex("ssn", "value")) {
		t.Error("two customers share a blind index")
	}
	if bytes.Equal(x, a.BlindIndex("email", "value")) {
		t.Error("two fields share a blind index")
	}
	if bytes.Equal(x, a.BlindIndex("ssn", "other")) {
		t.Error("two values share a blind index")
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
