package seal

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"sync"
	"testing"
)

func TestParseMasterKeyRefusesWeakKeys(t *testing.T) {
	seq := make([]byte, 32)
	down := make([]byte, 32)
	for i := range seq {
		seq[i] = byte(i * 3)
		down[i] = byte(200 - i)
	}
	half := []byte("\x01\x9f\x33\xe0\x41\x07\xc2\x58\x6d\x12\xfa\x84\x2b\x90\x5e\xd7")
	weak := map[string][]byte{
		"all zero":             make([]byte, 32),
		"all 0xff":             bytes.Repeat([]byte{0xff}, 32),
		"two bytes repeated":   bytes.Repeat([]byte{0xde, 0xad}, 16),
		"16 distinct repeated": append(append([]byte{}, half...), half...),
		"counting up":          seq,
		"counting down":        down,
		"few values":           append(bytes.Repeat([]byte{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}, 3), 11, 12),
		"a passphrase":         []byte("correct horse battery staple!!!!"),
		"hex text":             []byte("0f3a9b2c7d4e5f60718293a4b5c6d7e8"),
	}
	for name, raw := range weak {
		encoded := base64.StdEncoding.EncodeToString(raw)
		if _, err := ParseMasterKey(encoded); !errors.Is(err, ErrWeakKey) {
			t.Errorf("%s: err %v, want ErrWeakKey", name, err)
		}
		if _, err := ParseRetiringMasterKey(encoded); err != nil {
			t.Errorf("%s as the key rotated away from: %v", name, err)
		}
	}
	for range 1000 {
		if _, err := ParseMasterKey(GenerateMasterKey()); err != nil {
			t.Fatalf("a generated key is refused: %v", err)
		}
	}
}

func TestCheckValueOpensWithItsKeyOnly(t *testing.T) {
	a, b := mustMaster(t), mustMaster(t)
	check := a.NewCheck()
	if !a.OpensCheck(check) {
		t.Error("a check value does not open with its key")
	}
	if b.OpensCheck(check) {
		t.Error("a check value opens with another key")
	}
	if bytes.Equal(check, a.NewCheck()) {
		t.Error("two check values of one key are equal")
	}
	damaged := append([]byte{}, check...)
	damaged[len(damaged)-1] ^= 1
	for _, c := range [][]byte{nil, {}, check[:5], damaged} {
		if a.OpensCheck(c) {
			t.Errorf("a check value of %d bytes opens", len(c))
		}
	}
	// Neither a wrapped key as a check value nor a check value as a key.
	w := a.NewCustomerKeys("cust")[0]
	if a.OpensCheck(w.Wrapped) {
		t.Error("a wrapped key opens as a check value")
	}
	if a.OpensKey(WrappedKey{CustomerID: "cust", Purpose: PurposeData, Version: 1, Wrapped: check}) {
		t.Error("a check value opens as a wrapped key")
	}
	if !a.OpensKey(w) || b.OpensKey(w) {
		t.Error("OpensKey does not tell the key a wrapped key is under")
	}
}

// switchable is a MasterSource whose keys the test changes, as a key file
// rewritten under a running server.
type switchable struct {
	mu      sync.Mutex
	now     []*MasterKey
	next    []*MasterKey
	reloads int
}

func (s *switchable) MasterKeys() []*MasterKey {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.now
}

func (s *switchable) Reload() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.reloads++
	if s.next == nil {
		return false
	}
	s.now, s.next = s.next, nil
	return true
}

// Keys rewrapped under a new master key open once the master keys reload;
// keys that open with no master key are ErrKeysDoNotOpen, and a customer
// without keys ErrNoKeys.
func TestKeyringReloadsMasterKeys(t *testing.T) {
	old, fresh := mustMaster(t), mustMaster(t)
	src := &fixedSource{}
	for _, w := range old.NewCustomerKeys("cust") {
		nw, err := old.Rewrap(w, fresh)
		if err != nil {
			t.Fatal(err)
		}
		src.keys = append(src.keys, nw)
	}
	masters := &switchable{now: []*MasterKey{old}}
	ring := NewKeyringFrom(masters, src)
	if _, err := ring.Customer(context.Background(), "cust"); !errors.Is(err, ErrKeysDoNotOpen) || !errors.Is(err, ErrOpen) {
		t.Fatalf("keys under another master key: err %v, want ErrKeysDoNotOpen", err)
	}
	if masters.reloads != 1 {
		t.Errorf("the master keys were reloaded %d times on a failure, want once", masters.reloads)
	}
	masters.next = []*MasterKey{fresh, old}
	if _, err := ring.Customer(context.Background(), "cust"); err != nil {
		t.Fatalf("after the key file changed: %v", err)
	}
	src.keys = nil
	if _, err := ring.Refresh(context.Background(), "cust"); !errors.Is(err, ErrNoKeys) {
		t.Errorf("a customer without keys: err %v, want ErrNoKeys", err)
	}
}
