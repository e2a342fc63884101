package seal

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"
)

// KeySource reads a customer's wrapped keys from wherever they are kept.
type KeySource interface {
	CustomerKeys(ctx context.Context, customerID string) ([]WrappedKey, error)
}

// MasterSource supplies the master keys a Keyring unwraps with. Keys kept
// in a file can change under a running server (a master key rotation
// rewrites the file): Reload reads them again.
type MasterSource interface {
	// MasterKeys returns the keys to try, the current one first.
	MasterKeys() []*MasterKey
	// Reload reads the keys again where they are kept and reports whether
	// they changed.
	Reload() bool
}

// ErrKeysDoNotOpen is returned when a customer's wrapped keys open with no
// master key in hand. A server meets it when its master key is not the one
// the key store is wrapped under: so its message names that cause.
var ErrKeysDoNotOpen = fmt.Errorf("%w: the customer's keys do not open with the master key in hand "+
	"(a wrong key, or the master key was rotated and this process holds the old one; see accounts keys verify)", ErrOpen)

// ErrNoKeys is returned when the key store holds no key for a customer:
// the customer was crypto-shredded, or the key store is another one than
// the data's.
var ErrNoKeys = errors.New("seal: the key store holds no keys for this customer (crypto-shredded, or not the data's key store)")

// staticMasters is a MasterSource that never changes.
type staticMasters []*MasterKey

func (s staticMasters) MasterKeys() []*MasterKey { return s }
func (s staticMasters) Reload() bool             { return false }

// KeyCacheTTL is how long unwrapped keys are kept in memory before they are
// read again: so that keys destroyed (a customer crypto-shredded) or added
// (a new data key version) elsewhere take effect here within a minute.
const KeyCacheTTL = time.Minute

// Keyring unwraps customer keys on first use and keeps them in memory for
// KeyCacheTTL, so a request costs no key unwrapping after the customer's
// first. It can hold two master keys while the master key is rotated: keys
// wrapped under either unwrap.
type Keyring struct {
	masters MasterSource
	source  KeySource

	mu    sync.Mutex
	cache map[string]cachedKeys
}

type cachedKeys struct {
	keys   *CustomerKeys
	loaded time.Time
}

// NewKeyring returns a Keyring that unwraps keys from source with master,
// or else with previous (during a master key rotation; may be nil).
func NewKeyring(master, previous *MasterKey, source KeySource) *Keyring {
	masters := staticMasters{master}
	if previous != nil {
		masters = append(masters, previous)
	}
	return NewKeyringFrom(masters, source)
}

// NewKeyringFrom returns a Keyring that unwraps keys from source with the
// master keys masters holds at the time. When none opens a customer's keys
// it reloads masters once and tries again: a rotation may have just
// rewritten the key file, and the store with it.
func NewKeyringFrom(masters MasterSource, source KeySource) *Keyring {
	return &Keyring{masters: masters, source: source, cache: map[string]cachedKeys{}}
}

// Refresh reads the customer's keys again, for a value sealed under a data
// key version made since they were loaded.
func (k *Keyring) Refresh(ctx context.Context, customerID string) (*CustomerKeys, error) {
	k.mu.Lock()
	delete(k.cache, customerID)
	k.mu.Unlock()
	return k.Customer(ctx, customerID)
}

// Customer returns the customer's unwrapped keys.
func (k *Keyring) Customer(ctx context.Context, customerID string) (*CustomerKeys, error) {
	now := time.Now()
	k.mu.Lock()
	c, ok := k.cache[customerID]
	k.mu.Unlock()
	if ok && now.Sub(c.loaded) < KeyCacheTTL {
		return c.keys, nil
	}
	wrapped, err := k.source.CustomerKeys(ctx, customerID)
	if err != nil {
		return nil, err
	}
	keys, err := k.unwrap(customerID, wrapped)
	if errors.Is(err, ErrKeysDoNotOpen) && k.masters.Reload() {
		keys, err = k.unwrap(customerID, wrapped)
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	if err != nil {
		delete(k.cache, customerID)
		return nil, err
	}
	k.cache[customerID] = cachedKeys{keys: keys, loaded: now}
	return keys, nil
}

func (k *Keyring) unwrap(customerID string, wrapped []WrappedKey) (*CustomerKeys, error) {
	if len(wrapped) == 0 {
		return nil, ErrNoKeys
	}
	for _, m := range k.masters.MasterKeys() {
		if keys, err := m.Unwrap(customerID, wrapped); err == nil {
			return keys, nil
		} else if !errors.Is(err, ErrOpen) {
			return nil, err
		}
	}
	return nil, ErrKeysDoNotOpen
}
