package seal

import (
	"context"
	"sync"
	"time"
)

// KeySource reads a customer's wrapped keys from wherever they are kept.
type KeySource interface {
	CustomerKeys(ctx context.Context, customerID string) ([]WrappedKey, error)
}

// keyCacheTTL is how long unwrapped keys are kept in memory before they are
// read again: so that keys destroyed (a customer crypto-shredded) or added
// (a new data key version) elsewhere take effect here within a minute.
const keyCacheTTL = time.Minute

// Keyring unwraps customer keys on first use and keeps them in memory for
// keyCacheTTL, so a request costs no key unwrapping after the customer's
// first. It can hold two master keys while the master key is rotated: keys
// wrapped under either unwrap.
type Keyring struct {
	masters []*MasterKey
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
	masters := []*MasterKey{master}
	if previous != nil {
		masters = append(masters, previous)
	}
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
	if ok && now.Sub(c.loaded) < keyCacheTTL {
		return c.keys, nil
	}
	wrapped, err := k.source.CustomerKeys(ctx, customerID)
	if err != nil {
		return nil, err
	}
	var keys *CustomerKeys
	for _, m := range k.masters {
		if keys, err = m.Unwrap(customerID, wrapped); err == nil {
			break
		}
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
