// Package audit defines the audit trail of personal data: one entry per
// operation, chained per customer by hashes, so that an entry edited,
// deleted, inserted or moved is detected by walking the chain.
//
// Entries record who did what to which objects and the names of the
// personal fields involved, never their values.
package audit

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"time"
)

// Action is what was done to the objects of an entry.
type Action string

// The actions the service records.
const (
	Create        Action = "create"
	Read          Action = "read"
	Update        Action = "update"
	Delete        Action = "delete"
	CascadeDelete Action = "cascade_delete"
)

// HashSize is the size of an entry's hash.
const HashSize = sha256.Size

// Entry is one audited operation.
type Entry struct {
	CustomerID string
	// Position is the entry's 1-based place in its customer's chain.
	Position  int64
	Time      time.Time
	ClientID  string
	RequestID string
	Action    Action
	Resource  string
	ObjectIDs []string
	// Fields are the names of the personal fields read or changed.
	Fields []string
	// PrevHash is the previous entry's hash (zeros for the first entry).
	PrevHash []byte
	Hash     []byte
}

// Digest computes the hash an entry must carry: SHA-256 over every field
// but Hash, each length-prefixed so no two entries encode alike.
func (e *Entry) Digest() []byte {
	// Appended to one buffer sized for the entry: every read appends an
	// entry, and binary.Write's reflection allocated per field.
	n := len(digestDomain) + 8 + 8 + 4*8 + len(e.CustomerID) + len(e.ClientID) + len(e.RequestID) +
		len(e.Action) + len(e.Resource) + len(e.PrevHash)
	for _, s := range e.ObjectIDs {
		n += 4 + len(s)
	}
	for _, s := range e.Fields {
		n += 4 + len(s)
	}
	b := make([]byte, 0, n)
	str := func(s string) {
		b = binary.BigEndian.AppendUint32(b, uint32(len(s)))
		b = append(b, s...)
	}
	list := func(l []string) {
		b = binary.BigEndian.AppendUint32(b, uint32(len(l)))
		for _, s := range l {
			str(s)
		}
	}
	b = append(b, digestDomain...)
	str(e.CustomerID)
	b = binary.BigEndian.AppendUint64(b, uint64(e.Position))
	b = binary.BigEndian.AppendUint64(b, uint64(e.Time.UTC().UnixMicro()))
	str(e.ClientID)
	str(e.RequestID)
	str(string(e.Action))
	str(e.Resource)
	list(e.ObjectIDs)
	list(e.Fields)
	str(string(e.PrevHash))
	sum := sha256.Sum256(b)
	return sum[:]
}

// digestDomain begins every digest's input: the version of its encoding.
const digestDomain = "accounts.audit.v1"

// Chain links new entries after a chain's head: each gets the next
// position, the previous hash and its own hash.
type Chain struct {
	Position int64  // the head's position (0 for an empty chain)
	Hash     []byte // the head's hash (zeros for an empty chain)
}

// Append links e after the head and makes it the new head.
func (c *Chain) Append(e *Entry) {
	if c.Hash == nil {
		c.Hash = make([]byte, HashSize)
	}
	c.Position++
	e.Position = c.Position
	e.PrevHash = c.Hash
	e.Hash = e.Digest()
	c.Hash = e.Hash
}

// Verifier walks one customer's chain entry by entry, in position order.
//
// The chain and its recorded head are in the same database, so whoever
// can write it can cut the chain's end and move the head back, or erase a
// chain whole, and the chain alone can't tell. Anchor, when set, is a head
// seen earlier and kept elsewhere (audit verify --anchor): the chain must
// still reach its position with its hash there.
type Verifier struct {
	Anchor *Chain
	chain  Chain
}

// BrokenError says where a chain stops being intact: Position is the first
// position whose entry is missing, altered, inserted or out of place.
type BrokenError struct {
	CustomerID string
	Position   int64
	Reason     string
}

func (e *BrokenError) Error() string {
	return fmt.Sprintf("audit chain of customer %s broken at position %d: %s", e.CustomerID, e.Position, e.Reason)
}

// Next checks the next entry read from the store.
func (v *Verifier) Next(e Entry) error {
	want := v.chain.Position + 1
	if v.chain.Hash == nil {
		v.chain.Hash = make([]byte, HashSize)
	}
	switch {
	case e.Position != want:
		return &BrokenError{CustomerID: e.CustomerID, Position: want, Reason: fmt.Sprintf("found position %d", e.Position)}
	case !bytes.Equal(e.PrevHash, v.chain.Hash):
		return &BrokenError{CustomerID: e.CustomerID, Position: want, Reason: "previous hash does not match"}
	case !bytes.Equal(e.Hash, e.Digest()):
		return &BrokenError{CustomerID: e.CustomerID, Position: want, Reason: "entry does not match its hash"}
	}
	v.chain = Chain{Position: e.Position, Hash: e.Hash}
	if v.Anchor != nil && e.Position == v.Anchor.Position && !bytes.Equal(e.Hash, v.Anchor.Hash) {
		return &BrokenError{CustomerID: e.CustomerID, Position: e.Position, Reason: "entry differs from the anchor's"}
	}
	return nil
}

// End checks that the chain ends at the head the store recorded, so that
// entries cut from the end, or added after it, are detected too.
func (v *Verifier) End(customerID string, head Chain) error {
	switch {
	case v.Anchor != nil && v.Anchor.Position > v.chain.Position:
		return &BrokenError{CustomerID: customerID, Position: v.chain.Position + 1, Reason: "entries missing before the anchor's head"}
	case head.Position > v.chain.Position:
		return &BrokenError{CustomerID: customerID, Position: v.chain.Position + 1, Reason: "entries missing before the recorded head"}
	case head.Position < v.chain.Position:
		return &BrokenError{CustomerID: customerID, Position: head.Position + 1, Reason: "entries beyond the recorded head"}
	case head.Position > 0 && !bytes.Equal(head.Hash, v.chain.Hash):
		return &BrokenError{CustomerID: customerID, Position: head.Position, Reason: "last entry differs from the recorded head"}
	}
	return nil
}

type requestIDKey struct{}

// WithRequestID returns a context carrying the request id that audit
// entries made under it record.
func WithRequestID(ctx context.Context, id string) context.Context {
	return context.WithValue(ctx, requestIDKey{}, id)
}

// RequestID returns the request id of ctx, or "".
func RequestID(ctx context.Context) string {
	id, _ := ctx.Value(requestIDKey{}).(string)
	return id
}
