package audit

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"
)

// auditTestChain builds an intact chain of n entries for one customer,
// linked by Chain.Append, and returns the entries and the head.
func auditTestChain(n int) ([]Entry, Chain) {
	var c Chain
	base := time.Date(2026, 3, 4, 5, 6, 7, 123456000, time.UTC)
	actions := []Action{Create, Read, Update, Read, Delete, CascadeDelete}
	out := make([]Entry, n)
	for i := range out {
		e := Entry{
			CustomerID: "11111111-1111-4111-8111-111111111111",
			Time:       base.Add(time.Duration(i) * time.Second),
			ClientID:   "22222222-2222-4222-8222-222222222222",
			RequestID:  fmt.Sprintf("req-%d", i),
			Action:     actions[i%len(actions)],
			Resource:   "Tenant",
			ObjectIDs:  []string{fmt.Sprintf("obj-%d", i), fmt.Sprintf("obj-%d-b", i)},
			Fields:     []string{"first_name", "email"},
		}
		c.Append(&e)
		out[i] = e
	}
	return out, c
}

// cloneEntries copies entries deeply enough that editing one copy's slices
// leaves the original alone.
func cloneEntries(in []Entry) []Entry {
	out := make([]Entry, len(in))
	for i, e := range in {
		e.ObjectIDs = slices.Clone(e.ObjectIDs)
		e.Fields = slices.Clone(e.Fields)
		e.PrevHash = bytes.Clone(e.PrevHash)
		e.Hash = bytes.Clone(e.Hash)
		out[i] = e
	}
	return out
}

// verifyAll walks entries with a Verifier and ends at head; it returns the
// first error.
func verifyAll(entries []Entry, customerID string, head Chain) error {
	var v Verifier
	for _, e := range entries {
		if err := v.Next(e); err != nil {
			return err
		}
	}
	return v.End(customerID, head)
}

// brokenAt asserts err is a *BrokenError at position want.
func brokenAt(t *testing.T, label string, err error, want int64) {
	t.Helper()
	var be *BrokenError
	if !errors.As(err, &be) {
		t.Errorf("%s: error %v, want a *BrokenError at position %d", label, err, want)
		return
	}
	if be.Position != want {
		t.Errorf("%s: broken at position %d, want %d (reason %q)", label, be.Position, want, be.Reason)
	}
	if be.Error() == "" {
		t.Errorf("%s: empty error message", label)
	}
}

const testChainLen = 8

func TestChainAppendLinks(t *testing.T) {
	entries, head := auditTestChain(testChainLen)
	if head.Position != testChainLen {
		t.Fatalf("head position %d, want %d", head.Position, testChainLen)
	}
	if !bytes.Equal(head.Hash, entries[testChainLen-1].Hash) {
		t.Errorf("head hash is not the last entry's hash")
	}
	prev := make([]byte, HashSize)
	seen := map[string]bool{}
	for i, e := range entries {
		if e.Position != int64(i+1) {
			t.Errorf("entry %d: position %d, want %d", i, e.Position, i+1)
		}
		if !bytes.Equal(e.PrevHash, prev) {
			t.Errorf("entry %d: prev hash is not the previous entry's hash (zeros for the first)", i)
		}
		if len(e.Hash) != HashSize || !bytes.Equal(e.Hash, e.Digest()) {
			t.Errorf("entry %d: hash is not its digest", i)
		}
		if seen[string(e.Hash)] {
			t.Errorf("entry %d: hash repeats an earlier entry's", i)
		}
		seen[string(e.Hash)] = true
		prev = e.Hash
	}
	// Appending continues from a head read back from the store.
	c := Chain{Position: head.Position, Hash: bytes.Clone(head.Hash)}
	next := Entry{CustomerID: entries[0].CustomerID, Action: Read, Resource: "Tenant", Time: entries[0].Time}
	c.Append(&next)
	if next.Position != testChainLen+1 || !bytes.Equal(next.PrevHash, head.Hash) {
		t.Errorf("append after a stored head: position %d, prev hash linked %v", next.Position, bytes.Equal(next.PrevHash, head.Hash))
	}
	if err := verifyAll(append(cloneEntries(entries), next), next.CustomerID, c); err != nil {
		t.Errorf("chain continued from a stored head: %v", err)
	}
}

func TestVerifierIntact(t *testing.T) {
	for _, n := range []int{0, 1, 2, testChainLen} {
		entries, head := auditTestChain(n)
		if err := verifyAll(entries, "c", head); err != nil {
			t.Errorf("intact chain of %d entries: %v", n, err)
		}
	}
	// A store that keeps no head row for an empty chain reports Chain{}.
	var v Verifier
	if err := v.End("c", Chain{}); err != nil {
		t.Errorf("empty chain, empty head: %v", err)
	}
}

// auditEdits are single-column edits of a stored entry, the hash left as it was.
var auditEdits = []struct {
	name string
	edit func(e *Entry)
}{
	{"customer_id", func(e *Entry) { e.CustomerID = "33333333-3333-4333-8333-333333333333" }},
	{"time", func(e *Entry) { e.Time = e.Time.Add(time.Microsecond) }},
	{"client_id", func(e *Entry) { e.ClientID = "forged-client" }},
	{"request_id", func(e *Entry) { e.RequestID = "forged-request" }},
	{"action", func(e *Entry) {
		if e.Action == Delete {
			e.Action = Read
		} else {
			e.Action = Delete
		}
	}},
	{"resource", func(e *Entry) { e.Resource = "Protectedidentity" }},
	{"object_ids (one removed)", func(e *Entry) { e.ObjectIDs = e.ObjectIDs[:1] }},
	{"object_ids (one replaced)", func(e *Entry) { e.ObjectIDs[0] = "obj-forged" }},
	{"fields (one removed)", func(e *Entry) { e.Fields = e.Fields[1:] }},
	{"fields (one added)", func(e *Entry) { e.Fields = append(e.Fields, "ssn") }},
	{"prev_hash", func(e *Entry) { e.PrevHash[0] ^= 1 }},
	{"hash", func(e *Entry) { e.Hash[HashSize-1] ^= 1 }},
}

func TestVerifierDetectsEdit(t *testing.T) {
	orig, head := auditTestChain(testChainLen)
	for k := 1; k <= testChainLen; k++ {
		for _, ed := range auditEdits {
			entries := cloneEntries(orig)
			ed.edit(&entries[k-1])
			brokenAt(t, fmt.Sprintf("%s edited at %d", ed.name, k), verifyAll(entries, "c", head), int64(k))
		}
	}
}

// An attacker who edits an entry and recomputes its own hash is still
// caught: the next entry's prev hash (or the recorded head) no longer
// matches.
func TestVerifierDetectsEditWithRehash(t *testing.T) {
	orig, head := auditTestChain(testChainLen)
	for k := 1; k <= testChainLen; k++ {
		entries := cloneEntries(orig)
		entries[k-1].Action = Delete
		if orig[k-1].Action == Delete {
			entries[k-1].Action = Read
		}
		entries[k-1].Hash = entries[k-1].Digest()
		err := verifyAll(entries, "c", head)
		var be *BrokenError
		if !errors.As(err, &be) {
			t.Errorf("rehashed edit at %d: error %v, want a *BrokenError", k, err)
			continue
		}
		if be.Position != int64(k) && be.Position != int64(k+1) {
			t.Errorf("rehashed edit at %d: broken at %d, want %d or %d", k, be.Position, k, k+1)
		}
		if k == testChainLen && be.Position != int64(k) {
			t.Errorf("rehashed edit of the last entry: broken at %d, want %d", be.Position, k)
		}
	}
}

func TestVerifierDetectsDelete(t *testing.T) {
	orig, head := auditTestChain(testChainLen)
	for k := 1; k <= testChainLen; k++ {
		entries := slices.Delete(cloneEntries(orig), k-1, k)
		brokenAt(t, fmt.Sprintf("entry %d deleted", k), verifyAll(entries, "c", head), int64(k))
	}
}

func TestVerifierDetectsInsert(t *testing.T) {
	orig, head := auditTestChain(testChainLen)
	for k := 1; k <= testChainLen+1; k++ {
		// A copy of another entry given position k, the entries from k on
		// shifted up by one.
		src := k % testChainLen // a different entry than the one at k
		entries := cloneEntries(orig)
		forged := cloneEntries(orig[src : src+1])[0]
		forged.Position = int64(k)
		for i := k - 1; i < len(entries); i++ {
			entries[i].Position++
		}
		entries = slices.Insert(entries, k-1, forged)
		brokenAt(t, fmt.Sprintf("copy inserted at %d", k), verifyAll(entries, "c", head), int64(k))

		// The same forged entry rehashed (its own hash recomputed).
		entries = cloneEntries(entries)
		entries[k-1].Hash = entries[k-1].Digest()
		brokenAt(t, fmt.Sprintf("rehashed copy inserted at %d", k), verifyAll(entries, "c", head), int64(k))
	}
	// A correctly linked entry appended after the recorded head: only End
	// can see it.
	entries := cloneEntries(orig)
	c := Chain{Position: head.Position, Hash: bytes.Clone(head.Hash)}
	extra := Entry{CustomerID: "c", Action: Read, Resource: "Tenant", Time: orig[0].Time}
	c.Append(&extra)
	brokenAt(t, "linked entry appended after the head", verifyAll(append(entries, extra), "c", head), testChainLen+1)
}

func TestVerifierDetectsReorder(t *testing.T) {
	orig, head := auditTestChain(testChainLen)
	for k := 1; k < testChainLen; k++ {
		// Contents swapped, positions as stored (the rows swapped positions).
		entries := cloneEntries(orig)
		entries[k-1], entries[k] = entries[k], entries[k-1]
		entries[k-1].Position, entries[k].Position = int64(k), int64(k+1)
		brokenAt(t, fmt.Sprintf("entries %d and %d swapped", k, k+1), verifyAll(entries, "c", head), int64(k))

		// Read back out of position order (positions kept).
		entries = cloneEntries(orig)
		entries[k-1], entries[k] = entries[k], entries[k-1]
		brokenAt(t, fmt.Sprintf("entries %d and %d read out of order", k, k+1), verifyAll(entries, "c", head), int64(k))
	}
}

func TestVerifierEnd(t *testing.T) {
	orig, head := auditTestChain(testChainLen)
	// Truncation: the last m entries cut, the head still recorded.
	for m := 1; m <= testChainLen; m++ {
		entries := cloneEntries(orig[:testChainLen-m])
		brokenAt(t, fmt.Sprintf("last %d entries cut", m), verifyAll(entries, "c", head), int64(testChainLen-m+1))
	}
	// Extra entries beyond the recorded head.
	for m := 1; m <= 3; m++ {
		short := Chain{Position: orig[testChainLen-m-1].Position, Hash: orig[testChainLen-m-1].Hash}
		brokenAt(t, fmt.Sprintf("%d entries beyond the head", m), verifyAll(cloneEntries(orig), "c", short), int64(testChainLen-m+1))
	}
	// The head's hash differs from the last entry's.
	bad := Chain{Position: head.Position, Hash: bytes.Clone(head.Hash)}
	bad.Hash[0] ^= 1
	brokenAt(t, "head hash differs", verifyAll(cloneEntries(orig), "c", bad), testChainLen)
	// No entries although the head says there are.
	brokenAt(t, "all entries gone", verifyAll(nil, "c", head), 1)
	// End names the customer it was given.
	var v Verifier
	err := v.End("customer-x", Chain{Position: 2, Hash: make([]byte, HashSize)})
	var be *BrokenError
	if !errors.As(err, &be) || be.CustomerID != "customer-x" {
		t.Errorf("End: error %v, want a *BrokenError naming the customer", err)
	}
}

// An anchor (a head seen earlier, kept elsewhere) catches what the chain
// and its head, rewritten together, can't: the end cut with the head moved
// back, the whole chain erased, a chain rebuilt from some position on. A
// chain that grew past its anchor, or reaches it intact, passes.
func TestVerifierAnchor(t *testing.T) {
	orig, head := auditTestChain(testChainLen)
	verify := func(entries []Entry, head Chain, anchor Chain) error {
		v := Verifier{Anchor: &anchor}
		for _, e := range entries {
			if err := v.Next(e); err != nil {
				return err
			}
		}
		return v.End("c", head)
	}
	at := func(n int) Chain { return Chain{Position: orig[n-1].Position, Hash: orig[n-1].Hash} }
	if err := verify(cloneEntries(orig), head, at(testChainLen)); err != nil {
		t.Errorf("the chain at its anchor: %v", err)
	}
	if err := verify(cloneEntries(orig), head, at(3)); err != nil {
		t.Errorf("the chain grown past its anchor: %v", err)
	}
	// The end cut and the head moved back with it: intact without the
	// anchor, broken with it.
	for m := 1; m < testChainLen; m++ {
		cut := cloneEntries(orig[:testChainLen-m])
		if err := verifyAll(cut, "c", at(testChainLen-m)); err != nil {
			t.Fatalf("last %d entries cut with the head: the chain alone finds %v (the test assumes nothing)", m, err)
		}
		brokenAt(t, fmt.Sprintf("last %d entries cut with the head", m), verify(cut, at(testChainLen-m), head), int64(testChainLen-m+1))
	}
	brokenAt(t, "the chain erased with its head", verify(nil, Chain{}, head), 1)
	// Rebuilt from position 3 on (new entries, rehashed, head rewritten).
	rebuilt := cloneEntries(orig)
	c := Chain{Position: orig[1].Position, Hash: orig[1].Hash}
	for i := 2; i < len(rebuilt); i++ {
		rebuilt[i].RequestID = "rewritten"
		c.Append(&rebuilt[i])
	}
	if err := verifyAll(rebuilt, "c", c); err != nil {
		t.Fatalf("a rebuilt chain: the chain alone finds %v (the test assumes nothing)", err)
	}
	brokenAt(t, "rebuilt from position 3, the anchor at the end", verify(rebuilt, c, head), testChainLen)
}

func TestDigestCoversEveryField(t *testing.T) {
	base := func() Entry {
		return Entry{
			CustomerID: "cust",
			Position:   7,
			Time:       time.Date(2026, 1, 2, 3, 4, 5, 6000, time.UTC),
			ClientID:   "client",
			RequestID:  "request",
			Action:     Update,
			Resource:   "Tenant",
			ObjectIDs:  []string{"a", "b"},
			Fields:     []string{"first_name", "email"},
			PrevHash:   bytes.Repeat([]byte{7}, HashSize),
		}
	}
	cases := []struct {
		name   string
		change func(e *Entry)
	}{
		{"customer_id", func(e *Entry) { e.CustomerID = "cust2" }},
		{"position", func(e *Entry) { e.Position = 8 }},
		{"time (1µs)", func(e *Entry) { e.Time = e.Time.Add(time.Microsecond) }},
		{"time (1s)", func(e *Entry) { e.Time = e.Time.Add(time.Second) }},
		{"client_id", func(e *Entry) { e.ClientID = "client2" }},
		{"request_id", func(e *Entry) { e.RequestID = "request2" }},
		{"action", func(e *Entry) { e.Action = Delete }},
		{"resource", func(e *Entry) { e.Resource = "Subtenant" }},
		{"object_ids [a b] -> [ab]", func(e *Entry) { e.ObjectIDs = []string{"ab"} }},
		{"object_ids [a b] -> [b a]", func(e *Entry) { e.ObjectIDs = []string{"b", "a"} }},
		{"object_ids [a b] -> [a]", func(e *Entry) { e.ObjectIDs = []string{"a"} }},
		{"object_ids [a b] -> [a b \"\"]", func(e *Entry) { e.ObjectIDs = []string{"a", "b", ""} }},
		{"object_ids [a b] -> []", func(e *Entry) { e.ObjectIDs = nil }},
		{"fields [first_name email] -> [first_nameemail]", func(e *Entry) { e.Fields = []string{"first_nameemail"} }},
		{"fields order", func(e *Entry) { e.Fields = []string{"email", "first_name"} }},
		{"fields -> []", func(e *Entry) { e.Fields = nil }},
		{"fields added", func(e *Entry) { e.Fields = append(e.Fields, "ssn") }},
		{"prev_hash", func(e *Entry) { e.PrevHash = bytes.Repeat([]byte{8}, HashSize) }},
		{"prev_hash empty", func(e *Entry) { e.PrevHash = nil }},
		// Bytes moved between neighbouring fields.
		{"client_id/request_id boundary", func(e *Entry) { e.ClientID, e.RequestID = "clientr", "equest" }},
		{"action/resource boundary", func(e *Entry) { e.Action, e.Resource = "updateT", "enant" }},
		{"object id moved to fields", func(e *Entry) { e.ObjectIDs, e.Fields = []string{"a"}, []string{"b", "first_name", "email"} }},
		{"customer_id/client_id boundary", func(e *Entry) { e.CustomerID, e.ClientID = "custc", "lient" }},
	}
	want := base()
	ref := want.Digest()
	if len(ref) != HashSize {
		t.Fatalf("digest is %d bytes, want %d", len(ref), HashSize)
	}
	again := base()
	if !bytes.Equal(again.Digest(), ref) {
		t.Fatalf("digest is not deterministic")
	}
	seen := map[string]string{string(ref): "base"}
	for _, tc := range cases {
		e := base()
		tc.change(&e)
		d := e.Digest()
		if bytes.Equal(d, ref) {
			t.Errorf("%s: digest unchanged", tc.name)
		}
		if prev, ok := seen[string(d)]; ok && prev != "base" {
			t.Errorf("%s: digest equals that of %s", tc.name, prev)
		}
		seen[string(d)] = tc.name
	}
}

func TestDigestIgnoresHashAndRepresentation(t *testing.T) {
	e := Entry{
		CustomerID: "cust", Position: 1, Time: time.Date(2026, 1, 2, 3, 4, 5, 6000, time.UTC),
		ClientID: "client", RequestID: "r", Action: Read, Resource: "Address",
		PrevHash: make([]byte, HashSize),
	}
	ref := e.Digest()
	// The entry's own hash is not part of what it hashes.
	e.Hash = bytes.Repeat([]byte{1}, HashSize)
	if !bytes.Equal(e.Digest(), ref) {
		t.Errorf("digest depends on the hash field")
	}
	// Stores read back empty lists as nil or as empty slices.
	e.ObjectIDs, e.Fields = []string{}, []string{}
	if !bytes.Equal(e.Digest(), ref) {
		t.Errorf("digest differs between nil and empty lists")
	}
	// A store may read the time back in another zone.
	e.Time = e.Time.In(time.FixedZone("CET", 3600))
	if !bytes.Equal(e.Digest(), ref) {
		t.Errorf("digest depends on the time's zone, not only the instant")
	}
}

func TestRequestIDContext(t *testing.T) {
	if got := RequestID(context.Background()); got != "" {
		t.Errorf("RequestID of a bare context: %q, want empty", got)
	}
	ctx := WithRequestID(context.Background(), "abc-123")
	if got := RequestID(ctx); got != "abc-123" {
		t.Errorf("RequestID: %q, want abc-123", got)
	}
	if got := RequestID(WithRequestID(ctx, "def")); got != "def" {
		t.Errorf("inner RequestID: %q, want def", got)
	}
}

// The digest of a fixed entry is the one chains already stored carry: a
// change of its encoding would make every stored chain fail verification.
func TestDigestStable(t *testing.T) {
	e := Entry{CustomerID: "c1", Position: 42, Time: time.Date(2026, 1, 2, 3, 4, 5, 6000, time.UTC),
		ClientID: "k1", RequestID: "r1", Action: Read, Resource: "protectedidentity",
		ObjectIDs: []string{"o1", "o2"}, Fields: []string{"ssn", "email"}, PrevHash: bytes.Repeat([]byte{7}, HashSize)}
	if got := fmt.Sprintf("%x", e.Digest()); got != digestGolden {
		t.Errorf("digest %s, want %s", got, digestGolden)
	}
}

const digestGolden = "cf272f6a19e078dbb88f495ab3409d4fd8ceaa8bb3e021b9ef8cb4fe0876588a"
