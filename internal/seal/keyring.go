package seal

import (
	"context"
	"sync"
)

// KeySource reads a customer's wrapped keys from wherever they are kept.
type KeySource interface {
	CustomerKeys(ctx context.Context, customerID string) ([]WrappedKey, error)
}

// Keyring unwraps customer keys on first use and keeps them in memory, so a
// request costs no key unwrapping after the customer's first.
type Keyring struct {
	master *MasterKey
	source KeySource

	mu    sync.Mutex
	cache map[string]*CustomerKeys
}

// NewKeyring returns a Keyring that unwraps keys from source with master.
func NewKeyring(master *MasterKey, source KeySource) *Keyring {
	return &Keyring{master: master, source: source, cache: map[string]*CustomerKeys{}}
}

// Customer returns the customer's unwrapped keys.
func (k *Keyring) Customer(ctx context.Context, customerID string) (*CustomerKeys, error) {
	k.mu.Lock()
	ck := k.cache[customerID]
	k.mu.Unlock()
	if ck != nil {
		return ck, nil
	}
	wrapped, err := k.source.CustomerKeys(ctx, customerID)
	if err != nil {
		return nil, err
	}
	ck, err = k.master.Unwrap(customerID, wrapped)
	if err != nil {
		return nil, err
	}
	k.mu.Lock()
	k.cache[customerID] = ck
	k.mu.Unlock()
	return ck, nil
}
