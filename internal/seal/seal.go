// Package seal encrypts personal fields at rest and computes blind indexes.
//
// The key hierarchy: a master key, held outside the database, wraps each
// customer's keys; each customer has versioned data keys (AES-256-GCM) that
// seal row values, and versioned index keys (HMAC-SHA-256) for blind
// indexes and search tokens. The
// associated data of every sealed value binds it to its customer, resource,
// row and key version, so a ciphertext copied anywhere else fails to open.
package seal

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"strings"
)

// KeySize is the size of every key in the hierarchy: 256 bits.
const KeySize = 32

// Key purposes of a customer's wrapped keys.
const (
	PurposeData  = "data"
	PurposeIndex = "index"
)

// formatV1 is the first byte of every sealed value, so the layout can evolve.
const formatV1 = 1

// headerSize is format byte + key version + GCM nonce.
const headerSize = 1 + 4 + 12

// ErrOpen is returned when a sealed value does not open: wrong key, wrong
// place, or tampered bytes. It says nothing about the value.
var ErrOpen = errors.New("seal: value does not open")

// ErrUnknownVersion is returned when a value is sealed under a data key
// version the keys at hand do not have: a newer one, made since they were
// loaded (see Keyring.Refresh).
var ErrUnknownVersion = fmt.Errorf("%w: data key version not loaded", ErrOpen)

// MasterKey wraps and unwraps customer keys. It is never stored in the database.
type MasterKey struct{ aead cipher.AEAD }

// ErrWeakKey is returned for a master key whose bytes are not random
// enough to be a key: see weakness.
var ErrWeakKey = errors.New("seal: weak master key")

// GenerateHint is how to make a good master key; messages about a missing
// or weak key end with it.
const GenerateHint = "head -c 32 /dev/urandom | base64"

// ParseMasterKey decodes a base64 (standard or URL alphabet, padded or not)
// 32-byte key, and refuses a weak one (ErrWeakKey): a key that is all zero,
// a repeated pattern or a passphrase protects every customer's data no
// better than a guess does.
func ParseMasterKey(encoded string) (*MasterKey, error) {
	raw, err := decodeKey(encoded)
	if err != nil {
		return nil, err
	}
	if why := weakness(raw); why != "" {
		return nil, fmt.Errorf("%w: %s; generate one with: %s", ErrWeakKey, why, GenerateHint)
	}
	return newMasterKey(raw)
}

// ParseRetiringMasterKey is ParseMasterKey without the strength check, for
// the one key that may be weak: the key being rotated away from. A
// deployment started before weak keys were refused must still be able to
// rewrap its keys under a good one.
func ParseRetiringMasterKey(encoded string) (*MasterKey, error) {
	raw, err := decodeKey(encoded)
	if err != nil {
		return nil, err
	}
	return newMasterKey(raw)
}

func decodeKey(encoded string) ([]byte, error) {
	encoded = strings.TrimSpace(encoded)
	var raw []byte
	var err error
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		if raw, err = enc.DecodeString(encoded); err == nil {
			break
		}
	}
	if err != nil || len(raw) != KeySize {
		return nil, errors.New("seal: master key must be base64 of 32 bytes; generate one with: " + GenerateHint)
	}
	return raw, nil
}

func newMasterKey(raw []byte) (*MasterKey, error) {
	aead, err := newGCM(raw)
	if err != nil {
		return nil, err
	}
	return &MasterKey{aead: aead}, nil
}

// minDistinctBytes is the fewest different byte values a key may hold. 32
// random bytes hold about 30; fewer than 16 happens by chance with a
// probability below 1e-15, while a key typed or built by hand (a repeated
// word, a few digits) rarely reaches it.
const minDistinctBytes = 16

// weakness says why raw is not a random key, or "" when nothing shows it.
// It finds keys made by hand or by mistake, not every weak key: a key
// derived from a guessable secret by a hash looks random here.
func weakness(raw []byte) string {
	distinct := map[byte]bool{}
	for _, b := range raw {
		distinct[b] = true
	}
	switch {
	case len(distinct) == 1:
		return "all its bytes are equal"
	case repeats(raw):
		return "it repeats a short pattern"
	case progression(raw):
		return "its bytes count up or down in equal steps"
	case len(distinct) < minDistinctBytes:
		return fmt.Sprintf("it holds only %d different byte values (random keys hold about 30)", len(distinct))
	case printable(raw):
		// 32 random bytes are all printable ASCII with a probability of
		// about 1e-14: these are a password, a hex or base64 string.
		return "all its bytes are printable text (a password or an encoded string, not random bytes)"
	}
	return ""
}

// repeats reports whether raw is a pattern of at most half its length,
// repeated.
func repeats(raw []byte) bool {
	for period := 1; period <= len(raw)/2; period++ {
		same := true
		for i := period; i < len(raw) && same; i++ {
			same = raw[i] == raw[i-period]
		}
		if same {
			return true
		}
	}
	return false
}

// progression reports whether raw's bytes differ by one constant step.
func progression(raw []byte) bool {
	for i := 2; i < len(raw); i++ {
		if raw[i]-raw[i-1] != raw[1]-raw[0] {
			return false
		}
	}
	return true
}

func printable(raw []byte) bool {
	for _, b := range raw {
		if b < 0x20 || b > 0x7e {
			return false
		}
	}
	return true
}

// GenerateMasterKey returns a new random master key, base64-encoded.
func GenerateMasterKey() string {
	for {
		raw := randomBytes(KeySize)
		// Never true in practice (see weakness); drawn again rather than
		// ever hand out a key that ParseMasterKey refuses.
		if weakness(raw) == "" {
			return base64.StdEncoding.EncodeToString(raw)
		}
	}
}

// checkAD is the associated data of a check value, so that no wrapped key
// or sealed value opens as one, and a check value as neither.
const checkAD = "accounts.master-key-check.v1"

// checkPlain is what a check value seals; opening it proves the key.
var checkPlain = []byte("accounts master key check")

// NewCheck returns a check value of m: a small ciphertext that opens with
// m only. Kept with the wrapped keys, it tells at start whether a master
// key is the one they are wrapped under, before any of them is needed; it
// reveals nothing about the key.
func (m *MasterKey) NewCheck() []byte {
	nonce := randomBytes(m.aead.NonceSize())
	return m.aead.Seal(nonce, nonce, checkPlain, []byte(checkAD))
}

// OpensCheck reports whether check is a check value of m.
func (m *MasterKey) OpensCheck(check []byte) bool {
	n := m.aead.NonceSize()
	if len(check) < n {
		return false
	}
	plain, err := m.aead.Open(nil, check[:n], check[n:], []byte(checkAD))
	return err == nil && string(plain) == string(checkPlain)
}

// OpensKey reports whether w is wrapped under m.
func (m *MasterKey) OpensKey(w WrappedKey) bool {
	_, err := m.unwrap(w)
	return err == nil
}

// WrappedKey is one customer key as stored: encrypted under the master key.
type WrappedKey struct {
	CustomerID string
	Purpose    string
	Version    int
	Wrapped    []byte
}

// NewCustomerKeys generates a customer's first data key and its index key,
// wrapped under m.
func (m *MasterKey) NewCustomerKeys(customerID string) []WrappedKey {
	return []WrappedKey{
		m.wrap(customerID, PurposeData, 1, randomBytes(KeySize)),
		m.wrap(customerID, PurposeIndex, 1, randomBytes(KeySize)),
	}
}

func (m *MasterKey) wrap(customerID, purpose string, version int, key []byte) WrappedKey {
	nonce := randomBytes(m.aead.NonceSize())
	ad := wrapAD(customerID, purpose, version)
	return WrappedKey{
		CustomerID: customerID,
		Purpose:    purpose,
		Version:    version,
		Wrapped:    m.aead.Seal(nonce, nonce, key, ad),
	}
}

func (m *MasterKey) unwrap(w WrappedKey) ([]byte, error) {
	n := m.aead.NonceSize()
	if len(w.Wrapped) < n {
		return nil, ErrOpen
	}
	key, err := m.aead.Open(nil, w.Wrapped[:n], w.Wrapped[n:], wrapAD(w.CustomerID, w.Purpose, w.Version))
	if err != nil || len(key) != KeySize {
		return nil, ErrOpen
	}
	return key, nil
}

func wrapAD(customerID, purpose string, version int) []byte {
	return fmt.Appendf(nil, "accounts.wrap.v1\x00%s\x00%s\x00%d", customerID, purpose, version)
}

// CustomerKeys are one customer's unwrapped keys.
//
// Index keys are versioned with the data keys: a value sealed under data
// key version v has its blind indexes and search tokens computed under the
// newest index key of a version up to v (indexFor), so a row's seal version
// names its index key and re-sealing a row (keys rotate-data) re-indexes
// it. Lookups compute their hashes under every index key held, so rows
// indexed under any of them are found while a rotation is under way.
type CustomerKeys struct {
	customerID string
	current    int
	data       map[int]cipher.AEAD
	index      map[int][]byte
	// indexVersions are the index keys' versions, ascending.
	indexVersions []int
}

// Unwrap opens a customer's wrapped keys. The newest data key version seals
// new values; every version opens.
func (m *MasterKey) Unwrap(customerID string, wrapped []WrappedKey) (*CustomerKeys, error) {
	k := &CustomerKeys{customerID: customerID, data: map[int]cipher.AEAD{}, index: map[int][]byte{}}
	for _, w := range wrapped {
		if w.CustomerID != customerID {
			return nil, ErrOpen
		}
		raw, err := m.unwrap(w)
		if err != nil {
			return nil, err
		}
		switch w.Purpose {
		case PurposeData:
			aead, err := newGCM(raw)
			if err != nil {
				return nil, err
			}
			k.data[w.Version] = aead
			k.current = max(k.current, w.Version)
		case PurposeIndex:
			k.index[w.Version] = raw
			k.indexVersions = append(k.indexVersions, w.Version)
		}
	}
	slices.Sort(k.indexVersions)
	if k.current == 0 || k.indexFor(k.current) == nil {
		return nil, errors.New("seal: customer has no data key, or no index key for it")
	}
	return k, nil
}

// Seal encrypts plaintext for one row of a resource. resource and rowID (a
// schema name and a UUID) must not contain NUL: see sealAD. It panics when
// one does, as that is a programming error.
func (k *CustomerKeys) Seal(resource, rowID string, plaintext []byte) []byte {
	if !bindable(resource, rowID) {
		panic("seal: a resource or row id containing NUL can't be bound")
	}
	out := make([]byte, headerSize, headerSize+len(plaintext)+16)
	out[0] = formatV1
	binary.BigEndian.PutUint32(out[1:5], uint32(k.current))
	copy(out[5:headerSize], randomBytes(12))
	return k.data[k.current].Seal(out, out[5:headerSize], plaintext, k.sealAD(resource, rowID, k.current))
}

// Open decrypts a value sealed for exactly this customer, resource and row.
func (k *CustomerKeys) Open(resource, rowID string, sealed []byte) ([]byte, error) {
	if !bindable(resource, rowID) || len(sealed) < headerSize || sealed[0] != formatV1 {
		return nil, ErrOpen
	}
	version := int(binary.BigEndian.Uint32(sealed[1:5]))
	aead, ok := k.data[version]
	if !ok {
		return nil, ErrUnknownVersion
	}
	plain, err := aead.Open(nil, sealed[5:headerSize], sealed[headerSize:], k.sealAD(resource, rowID, version))
	if err != nil {
		return nil, ErrOpen
	}
	return plain, nil
}

// sealAD is the associated data binding a value to its place. Its fields are
// separated by NUL, so it is unambiguous only while resource and rowID hold
// no NUL (the version is digits): then, read from the end, the version, the
// row and the resource are each one field, and the customer id is the rest.
// With a NUL allowed, resource "\x00" and row "0" would join to the same bytes
// as resource "" and row "\x000", and a value would open in another place.
func (k *CustomerKeys) sealAD(resource, rowID string, version int) []byte {
	return fmt.Appendf(nil, "accounts.seal.v1\x00%s\x00%s\x00%s\x00%d", k.customerID, resource, rowID, version)
}

// bindable reports whether resource and rowID can be bound unambiguously
// by sealAD.
func bindable(resource, rowID string) bool {
	return strings.IndexByte(resource, 0) < 0 && strings.IndexByte(rowID, 0) < 0
}

// Version returns the data key version a sealed value was sealed under.
func Version(sealed []byte) (int, bool) {
	if len(sealed) < headerSize || sealed[0] != formatV1 {
		return 0, false
	}
	return int(binary.BigEndian.Uint32(sealed[1:5])), true
}

// Current returns the data key version new values are sealed under.
func (k *CustomerKeys) Current() int { return k.current }

// NewDataKey returns a new data key version for a customer, wrapped under m.
func (m *MasterKey) NewDataKey(customerID string, version int) WrappedKey {
	return m.wrap(customerID, PurposeData, version, randomBytes(KeySize))
}

// Rewrap returns w wrapped under to instead of m.
func (m *MasterKey) Rewrap(w WrappedKey, to *MasterKey) (WrappedKey, error) {
	raw, err := m.unwrap(w)
	if err != nil {
		return WrappedKey{}, err
	}
	return to.wrap(w.CustomerID, w.Purpose, w.Version, raw), nil
}

// NewIndexKey returns a new index key version for a customer, wrapped
// under m: the index key of data key versions from version on.
func (m *MasterKey) NewIndexKey(customerID string, version int) WrappedKey {
	return m.wrap(customerID, PurposeIndex, version, randomBytes(KeySize))
}

// HasIndexKey reports whether the keys hold an index key of version.
func (k *CustomerKeys) HasIndexKey(version int) bool { return k.index[version] != nil }

// indexFor is the index key of values sealed under data key version v:
// the newest of a version up to v, or nil.
func (k *CustomerKeys) indexFor(v int) []byte {
	var key []byte
	for _, iv := range k.indexVersions {
		if iv <= v {
			key = k.index[iv]
		}
	}
	return key
}

// BlindIndex returns the keyed hash of a resource's field's canonical
// value under the index key of the current data key version, for a value
// written now. Keyed, never plain: personal identity numbers are few
// enough to reverse a plain hash by enumeration. Bound to the resource:
// a protected identity's hash of an identity number must not equal a
// tenant's of the same number, which would link the two rows for anyone
// holding a copy of the database.
func (k *CustomerKeys) BlindIndex(resource, field, canonical string) []byte {
	return blindIndex(k.indexFor(k.current), resource, field, canonical)
}

// BlindIndexes returns the keyed hashes an exact lookup looks for: the
// value's BlindIndex under every index key held, oldest first, then its
// hash in the form without the resource (unboundBlindIndex), under every
// index key held, oldest first, which rows written before the resource was
// bound carry until they are written again (keys rotate-data writes them
// all).
func (k *CustomerKeys) BlindIndexes(resource, field, canonical string) [][]byte {
	bound := k.underEveryIndexKey(func(key []byte) []byte { return blindIndex(key, resource, field, canonical) })
	return append(bound, k.underEveryIndexKey(func(key []byte) []byte { return unboundBlindIndex(key, field, canonical) })...)
}

// underEveryIndexKey returns derive of each index key held, oldest first.
func (k *CustomerKeys) underEveryIndexKey(derive func(key []byte) []byte) [][]byte {
	out := make([][]byte, len(k.indexVersions))
	for i, v := range k.indexVersions {
		out[i] = derive(k.index[v])
	}
	return out
}

// blindIndex hashes 0x01, the resource's and the field's names each after
// its length, then the value: the first byte tells it from
// unboundBlindIndex's input (a field name's first letter) and from a
// search key's (a NUL byte), and the lengths keep the names apart from
// each other and from the value.
func blindIndex(key []byte, resource, field, canonical string) []byte {
	mac := hmac.New(sha256.New, key)
	mac.Write([]byte{1})
	for _, name := range []string{resource, field} {
		mac.Write(binary.BigEndian.AppendUint32(nil, uint32(len(name))))
		mac.Write([]byte(name))
	}
	mac.Write([]byte(canonical))
	return mac.Sum(nil)
}

// unboundBlindIndex is the form of a blind index before the resource was
// bound into it: the field's name, a NUL byte and the value. Lookups still
// look for it; nothing is written in it.
func unboundBlindIndex(key []byte, field, canonical string) []byte {
	mac := hmac.New(sha256.New, key)
	mac.Write([]byte(field))
	mac.Write([]byte{0})
	mac.Write([]byte(canonical))
	return mac.Sum(nil)
}

// SearchKey returns the key of a field's search tokens (see
// internal/searchindex) for a value written now: derived from the index
// key of the current data key version for one resource and field, so that
// tokens of different fields and resources can't be told equal, and never
// equal to a blind index (whose input never starts with a NUL byte).
func (k *CustomerKeys) SearchKey(resource, field string) []byte {
	return searchKey(k.indexFor(k.current), resource, field)
}

// SearchKeys returns a field's search keys under every index key held,
// oldest first: what a lookup computes its tokens under.
func (k *CustomerKeys) SearchKeys(resource, field string) [][]byte {
	return k.underEveryIndexKey(func(key []byte) []byte { return searchKey(key, resource, field) })
}

func searchKey(key []byte, resource, field string) []byte {
	mac := hmac.New(sha256.New, key)
	mac.Write([]byte("\x00search\x00" + resource + "\x00" + field))
	return mac.Sum(nil)
}

func newGCM(key []byte) (cipher.AEAD, error) {
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(block)
}

func randomBytes(n int) []byte {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic("seal: crypto/rand failed: " + err.Error())
	}
	return b
}
