package seal

import (
	"bytes"
	"encoding/binary"
	"errors"
	"strings"
	"testing"
)

// The customer ids of the fuzz targets: ids, not personal values.
const (
	fuzzCustomer = "0b6e3c1a-5f7d-4e2b-9c8a-1d2f3e4a5b6c"
	fuzzOther    = "7a8b9c0d-1e2f-4a3b-8c4d-5e6f7a8b9c0d"
)

// fuzzKeyset is what the seal fuzz targets seal and open with, made once per
// fuzzing process: a customer whose data key was rotated (versions 1 and 2),
// the same customer before the rotation (version 1 only), the same customer
// id with keys of its own (a customer crypto-shredded and made again), and
// another customer.
type fuzzKeyset struct {
	current, beforeRotation, recreated, other *CustomerKeys
}

func newFuzzKeyset(tb testing.TB) fuzzKeyset {
	m := mustMaster(tb)
	wrapped := m.NewCustomerKeys(fuzzCustomer)
	before, err := m.Unwrap(fuzzCustomer, wrapped)
	if err != nil {
		tb.Fatal(err)
	}
	current, err := m.Unwrap(fuzzCustomer, append(wrapped, m.NewDataKey(fuzzCustomer, 2)))
	if err != nil {
		tb.Fatal(err)
	}
	if before.Current() != 1 || current.Current() != 2 {
		tb.Fatalf("key versions %d and %d, want 1 and 2", before.Current(), current.Current())
	}
	return fuzzKeyset{
		current:        current,
		beforeRotation: before,
		recreated:      customerKeys(tb, m, fuzzCustomer),
		other:          customerKeys(tb, m, fuzzOther),
	}
}

// as returns k's keys bound to another customer id, so that a target can
// show the id in the associated data matters on its own, whatever the keys.
func (k *CustomerKeys) as(customerID string) *CustomerKeys {
	return &CustomerKeys{customerID: customerID, current: k.current, data: k.data, index: k.index}
}

// Ciphertext mutations of FuzzSealMutation, chosen by its op argument.
const (
	mutNone     = iota
	mutFlipBit  // flip bit pos of the value
	mutTruncate // keep the first pos bytes
	mutExtend   // append extra
	mutVersion  // set the key version field to pos
	mutFormat   // set the format byte to the low byte of pos
	mutSplice   // insert extra at pos
	mutCount
)

// Binding changes of FuzzSealMutation, chosen by its bind argument: bits
// for the resource and the row, a bit for sealing under the key version
// before the rotation, two bits (bindOpenerShift) choosing the keys that
// open, and two (bindBoundaryShift) choosing a boundary move.
const (
	bindResource      = 1 << 0
	bindRow           = 1 << 1
	bindSealV1        = 1 << 2
	bindOpenerShift   = 3
	bindBoundaryShift = 5
)

// Boundary moves, chosen by bits bindBoundaryShift and up of bind. The
// associated data joins the resource and the row into one string; these
// look for two bindings that join to the same, which a fuzzer mutating
// resource2 and row2 at random would hardly ever meet.
const (
	boundaryNone    = iota
	boundaryShift   // resource+row split at another place
	boundaryResplit // resource+"\x00"+row split at another byte, which is dropped
	boundaryCount
)

// moveBoundary applies boundary move op at cut to resource and row.
func moveBoundary(op byte, cut uint16, resource, row string) (string, string) {
	switch op % boundaryCount {
	case boundaryShift:
		j := resource + row
		k := int(cut) % (len(j) + 1)
		return j[:k], j[k:]
	case boundaryResplit:
		j := resource + "\x00" + row
		k := int(cut) % len(j)
		return j[:k], j[k+1:]
	}
	return resource, row
}

// Openers, chosen by bits bindOpenerShift and up of bind.
const (
	openCurrent     = iota // the keys that sealed (after the rotation)
	openRecreated          // the same customer id, other keys
	openOther              // another customer
	openAsCustomer2        // the same keys, bound to customer id customer2
	openerCount
)

// mutate returns a changed copy of sealed (or an equal one, for mutNone
// and for changes that happen to write what was there), so the caller can
// tell by comparing whether the value was tampered with.
func mutate(sealed []byte, op byte, pos uint32, extra []byte) []byte {
	b := bytes.Clone(sealed)
	switch op % mutCount {
	case mutFlipBit:
		i := int(pos % uint32(len(b)*8))
		b[i/8] ^= 1 << (i % 8)
	case mutTruncate:
		b = b[:int(pos%uint32(len(b)))]
	case mutExtend:
		if len(extra) == 0 {
			extra = []byte{0}
		}
		b = append(b, extra...)
	case mutVersion:
		binary.BigEndian.PutUint32(b[1:5], pos)
	case mutFormat:
		b[0] = byte(pos)
	case mutSplice:
		i := int(pos % uint32(len(b)+1))
		b = append(b[:i], append(bytes.Clone(extra), b[i:]...)...)
	}
	return b
}

// FuzzSealMutation seals a plaintext for a resource and row, then changes
// the sealed bytes (flip a bit, truncate, extend, splice, the key version,
// the format byte) and/or where it is opened (another resource, row,
// customer id, customer keys, or the resource/row boundary moved). The
// oracle: the value as sealed opens in its
// place to the plaintext, under the rotated keys too; any change of bytes
// or of place fails with ErrOpen and no plaintext, never a panic.
func FuzzSealMutation(f *testing.F) {
	keys := newFuzzKeyset(f)
	const pi, row = "Protectedidentity", "3f2a1b0c-9d8e-4f7a-8b6c-5d4e3f2a1b0c"
	plain := []byte(`{"first_name":"x","last_name":"y"}`)
	//     plain, resource, row, op, pos, extra, bind, cut, resource2, row2, customer2
	f.Add(plain, pi, row, byte(mutNone), uint32(0), []byte(nil), byte(0), uint16(0), "", "", "")
	f.Add([]byte{}, pi, row, byte(mutNone), uint32(0), []byte(nil), byte(bindSealV1), uint16(0), "", "", "")
	f.Add(plain, pi, row, byte(mutFlipBit), uint32(0), []byte(nil), byte(0), uint16(0), "", "", "")
	f.Add(plain, pi, row, byte(mutFlipBit), uint32(8*17), []byte(nil), byte(0), uint16(0), "", "", "") // first ciphertext bit
	f.Add(plain, pi, row, byte(mutFlipBit), uint32(8*(17+len(plain))), []byte(nil), byte(0), uint16(0), "", "", "")
	f.Add(plain, pi, row, byte(mutTruncate), uint32(17+len(plain)), []byte(nil), byte(0), uint16(0), "", "", "") // tag cut off
	f.Add(plain, pi, row, byte(mutTruncate), uint32(17), []byte(nil), byte(0), uint16(0), "", "", "")
	f.Add(plain, pi, row, byte(mutExtend), uint32(0), []byte{0}, byte(0), uint16(0), "", "", "")
	f.Add(plain, pi, row, byte(mutSplice), uint32(17), []byte{0, 0, 0, 0}, byte(0), uint16(0), "", "", "")
	f.Add(plain, pi, row, byte(mutVersion), uint32(1), []byte(nil), byte(0), uint16(0), "", "", "")
	f.Add(plain, pi, row, byte(mutVersion), uint32(2), []byte(nil), byte(bindSealV1), uint16(0), "", "", "")
	f.Add(plain, pi, row, byte(mutVersion), uint32(1<<31), []byte(nil), byte(0), uint16(0), "", "", "")
	f.Add(plain, pi, row, byte(mutFormat), uint32(2), []byte(nil), byte(0), uint16(0), "", "", "")
	f.Add(plain, pi, row, byte(mutNone), uint32(0), []byte(nil), byte(bindResource), uint16(0), "Tenant", "", "")
	f.Add(plain, pi, row, byte(mutNone), uint32(0), []byte(nil), byte(bindResource), uint16(0), "protectedidentity", "", "")
	f.Add(plain, pi, row, byte(mutNone), uint32(0), []byte(nil), byte(bindRow), uint16(0), "", "3F2A1B0C-9D8E-4F7A-8B6C-5D4E3F2A1B0C", "")
	f.Add(plain, pi, row, byte(mutNone), uint32(0), []byte(nil), byte(bindRow), uint16(0), "", row+" ", "")
	f.Add(plain, pi, row, byte(mutNone), uint32(0), []byte(nil), byte(boundaryShift<<bindBoundaryShift), uint16(len(pi)-1), "", "", "")
	f.Add(plain, pi, row, byte(mutNone), uint32(0), []byte(nil), byte(boundaryResplit<<bindBoundaryShift), uint16(len(pi)+8), "", "", "")
	f.Add(plain, pi, row, byte(mutNone), uint32(0), []byte(nil), byte(openRecreated<<bindOpenerShift), uint16(0), "", "", "")
	f.Add(plain, pi, row, byte(mutNone), uint32(0), []byte(nil), byte(openOther<<bindOpenerShift), uint16(0), "", "", "")
	f.Add(plain, pi, row, byte(mutNone), uint32(0), []byte(nil), byte(openAsCustomer2<<bindOpenerShift), uint16(0), "", "", fuzzOther)
	f.Add(plain, pi, row, byte(mutNone), uint32(0), []byte(nil), byte(openAsCustomer2<<bindOpenerShift), uint16(0), "", "", fuzzCustomer)
	f.Fuzz(func(t *testing.T, plain []byte, resource, row string, op byte, pos uint32, extra []byte,
		bind byte, cut uint16, resource2, row2, customer2 string) {
		sealer := keys.current
		if bind&bindSealV1 != 0 {
			sealer = keys.beforeRotation
		}
		if strings.IndexByte(resource, 0) >= 0 || strings.IndexByte(row, 0) >= 0 {
			// The associated data separates its fields with NUL: such a
			// place can't be bound, and nothing opens there.
			if !sealPanics(sealer, resource, row, plain) {
				t.Fatal("sealed for a resource or row containing NUL")
			}
			near := sealer.Seal(strings.ReplaceAll(resource, "\x00", ""), strings.ReplaceAll(row, "\x00", ""), plain)
			if got, err := sealer.Open(resource, row, near); !errors.Is(err, ErrOpen) || got != nil {
				t.Fatalf("opening in a place containing NUL: %v and %d bytes; want ErrOpen and none", err, len(got))
			}
			return
		}
		sealed := sealer.Seal(resource, row, plain)
		if len(sealed) != headerSize+len(plain)+16 {
			t.Fatalf("sealed %d bytes into %d, want %d", len(plain), len(sealed), headerSize+len(plain)+16)
		}
		if v, ok := Version(sealed); !ok || v != sealer.Current() {
			t.Fatalf("Version = %d, %v; sealed under %d", v, ok, sealer.Current())
		}
		// 16 bytes of plaintext turning up in a random-looking ciphertext by
		// chance is out of the question; shorter ones could.
		if len(plain) >= 16 && bytes.Contains(sealed, plain) {
			t.Fatal("the sealed value contains the plaintext")
		}
		if bytes.Equal(sealed, sealer.Seal(resource, row, plain)) {
			t.Fatal("sealing twice gave the same bytes: the nonce is not fresh")
		}
		got, err := keys.current.Open(resource, row, sealed)
		if err != nil || !bytes.Equal(got, plain) {
			t.Fatalf("the value as sealed did not open to its plaintext in its place: %v", err)
		}

		mutated := mutate(sealed, op, pos, extra)
		openRes, openRow := resource, row
		if bind&bindResource != 0 {
			openRes = resource2
		}
		if bind&bindRow != 0 {
			openRow = row2
		}
		openRes, openRow = moveBoundary(bind>>bindBoundaryShift, cut, openRes, openRow)
		opener, sameKeys := keys.current, true
		switch (bind >> bindOpenerShift) % openerCount {
		case openRecreated:
			opener, sameKeys = keys.recreated, false
		case openOther:
			opener, sameKeys = keys.other, false
		case openAsCustomer2:
			opener, sameKeys = keys.current.as(customer2), customer2 == fuzzCustomer
		}
		tampered := !bytes.Equal(mutated, sealed)
		moved := !sameKeys || openRes != resource || openRow != row
		got, err = opener.Open(openRes, openRow, mutated)
		if !tampered && !moved {
			if err != nil || !bytes.Equal(got, plain) {
				t.Fatalf("unchanged value in its place did not open: %v", err)
			}
			return
		}
		if err == nil {
			t.Fatalf("opened (%d bytes) with mutation %d, tampered %v, moved %v (resource %v, row %v, keys %v)",
				len(got), op%mutCount, tampered, moved, openRes != resource, openRow != row, !sameKeys)
		}
		if !errors.Is(err, ErrOpen) || got != nil {
			t.Fatalf("failed to open with %v and %d bytes; want ErrOpen and none", err, len(got))
		}
	})
}

// sealPanics reports whether k.Seal panics.
func sealPanics(k *CustomerKeys, resource, row string, plain []byte) (panicked bool) {
	defer func() { panicked = recover() != nil }()
	k.Seal(resource, row, plain)
	return false
}

// FuzzOpen feeds arbitrary bytes, in an arbitrary place, to Open. The
// oracle: it never panics, and it opens only the values the test itself
// sealed for exactly that place, to their plaintexts; everything else
// fails with ErrOpen. Every fuzzing process makes keys of its own, so a
// sealed seed of one process is, to another, bytes that must not open.
func FuzzOpen(f *testing.F) {
	keys := newFuzzKeyset(f)
	openers := []*CustomerKeys{keys.current, keys.beforeRotation, keys.recreated, keys.other}
	type genuine struct {
		resource, row string
		plain         []byte
		openers       map[int]bool // indexes into openers
	}
	sealedHere := map[string]genuine{}
	seal := func(sealer int, resource, row string, plain []byte) []byte {
		b := openers[sealer].Seal(resource, row, plain)
		g := genuine{resource: resource, row: row, plain: plain, openers: map[int]bool{sealer: true}}
		if sealer == 1 { // version 1 also opens with the keys after the rotation
			g.openers[0] = true
		}
		sealedHere[string(b)] = g
		return b
	}
	const pi, row = "Protectedidentity", "3f2a1b0c-9d8e-4f7a-8b6c-5d4e3f2a1b0c"
	for i := range openers {
		for _, plain := range [][]byte{nil, []byte(`{"email":"x@example.se"}`)} {
			b := seal(i, pi, row, plain)
			f.Add(b, pi, row, byte(i))
			f.Add(b, "Tenant", row, byte(i))
			f.Add(b, pi, row, byte(i+1))
			f.Add(b[:len(b)-1], pi, row, byte(i))
		}
	}
	header := make([]byte, headerSize)
	header[0] = formatV1
	f.Add([]byte{}, pi, row, byte(0))
	f.Add([]byte{formatV1}, pi, row, byte(0))
	f.Add(header, pi, row, byte(0))
	f.Add(append(bytes.Clone(header), make([]byte, 16)...), pi, row, byte(0))
	binary.BigEndian.PutUint32(header[1:5], 2)
	f.Add(append(bytes.Clone(header), make([]byte, 16)...), pi, row, byte(0))
	binary.BigEndian.PutUint32(header[1:5], 0xffffffff)
	f.Add(append(bytes.Clone(header), make([]byte, 32)...), pi, row, byte(0))
	f.Fuzz(func(t *testing.T, data []byte, resource, row string, which byte) {
		i := int(which) % len(openers)
		plain, err := openers[i].Open(resource, row, data)
		v, versionOK := Version(data)
		g, known := sealedHere[string(data)]
		known = known && g.openers[i] && g.resource == resource && g.row == row
		if err != nil {
			if known {
				t.Fatalf("a value sealed here did not open in its place: %v", err)
			}
			if !errors.Is(err, ErrOpen) || plain != nil {
				t.Fatalf("failed to open with %v and %d bytes; want ErrOpen and none", err, len(plain))
			}
			return
		}
		if !known {
			t.Fatalf("opened %d bytes that were not sealed for this place into %d bytes", len(data), len(plain))
		}
		if !bytes.Equal(plain, g.plain) {
			t.Fatal("opened to another plaintext than was sealed")
		}
		if !versionOK || v < 1 || v > openers[i].Current() {
			t.Fatalf("opened a value whose version reads %d, %v", v, versionOK)
		}
	})
}
