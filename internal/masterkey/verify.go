package masterkey

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"accounts/internal/config"
	"accounts/internal/keystore"
	"accounts/internal/seal"
)

// Verdict is what a key store says of the master keys in hand.
type Verdict struct {
	// Empty is set when the key store holds neither a check value nor a
	// key: a new deployment, or not the data's key store.
	Empty bool
	// Check is the key store's check value; nil when it has none yet.
	Check []byte
	// Master is the key in hand that the key store's keys are wrapped
	// under (nil when Empty): new customer keys are wrapped under it.
	Master *seal.MasterKey
}

// Inspect checks the keys in hand against what the key store holds,
// changing nothing; ks is from keystore.Lookup, nil when there is no key
// store yet, and where describes it for messages. With a check value, one
// of the keys must open it. A key store from before check values must have
// every key open with one of them: then Establish writes its check value.
func Inspect(ctx context.Context, ks *keystore.Store, src *Source, where string) (Verdict, error) {
	if ks == nil {
		return Verdict{Empty: true}, nil
	}
	check, err := ks.Check(ctx)
	if err != nil {
		return Verdict{}, fmt.Errorf("reading the key store %s: %w", where, err)
	}
	keys := src.MasterKeys()
	if check != nil {
		for _, k := range keys {
			if k.OpensCheck(check) {
				return Verdict{Check: check, Master: k}, nil
			}
		}
		return Verdict{}, fmt.Errorf("%w: %s does not open the key store %s: it is not the master key the customer keys are "+
			"wrapped under (a key of another deployment, a mistyped secret, or the key from before a rotation — "+
			"keys rotate-master said where the new one went); start with that key; nothing was changed",
			ErrWrongKey, src.describe(), where)
	}
	all, err := ks.All(ctx)
	if err != nil {
		return Verdict{}, fmt.Errorf("reading the key store %s: %w", where, err)
	}
	if len(all) == 0 {
		return Verdict{Empty: true}, nil
	}
	opened := 0
	for _, w := range all {
		if OpenedBy(keys, w) != nil {
			opened++
		}
	}
	for _, k := range keys {
		every := true
		for _, w := range all {
			every = every && k.OpensKey(w)
		}
		if every {
			return Verdict{Master: k}, nil
		}
	}
	if opened == 0 {
		return Verdict{}, fmt.Errorf("%w: none of the %d customer keys in the key store %s opens with %s: it is not the master "+
			"key they are wrapped under (a key of another deployment, a mistyped secret, or the key from before a rotation); "+
			"start with that key; nothing was changed", ErrWrongKey, len(all), where, src.describe())
	}
	return Verdict{}, fmt.Errorf("%w: of the %d customer keys in the key store %s, %d open with %s and %d with no key given: "+
		"they are wrapped under more than one master key (customers created under a wrong key); accounts keys verify lists them; "+
		"give their other master key as %s and run accounts keys rotate-master to rewrap them all under one; nothing was changed",
		ErrMixedKeys, len(all), where, opened, src.describe(), len(all)-opened, config.EnvPreviousMasterKey)
}

// OpenedBy returns the first of keys that w is wrapped under, or nil.
func OpenedBy(keys []*seal.MasterKey, w seal.WrappedKey) *seal.MasterKey {
	for _, k := range keys {
		if k.OpensKey(w) {
			return k
		}
	}
	return nil
}

// describe names the keys in hand for a message.
func (s *Source) describe() string {
	if len(s.fromEnv) > 0 {
		return "the master key from " + s.origin + " (nor " + config.EnvPreviousMasterKey + ")"
	}
	return "the master key from " + s.origin
}

// Establish gives the key store (opened for writing) the check value of
// the verdict's master key when it has none yet — the current key for an
// empty key store — and returns the verdict with the check value it then
// holds. Should another process have written one first, one of the keys
// in hand must open it.
func Establish(ctx context.Context, ks *keystore.Store, src *Source, v Verdict, where string) (Verdict, error) {
	if v.Check != nil {
		return v, nil
	}
	master := v.Master
	if master == nil {
		master = src.MasterKeys()[0]
	}
	stored, err := ks.InitCheck(ctx, master.NewCheck())
	if err != nil {
		return Verdict{}, fmt.Errorf("writing the master key check value to the key store %s: %w", where, err)
	}
	for _, k := range src.MasterKeys() {
		if k.OpensCheck(stored) {
			return Verdict{Check: stored, Master: k}, nil
		}
	}
	return Verdict{}, fmt.Errorf("%w: another process started the key store %s with another master key than %s; "+
		"every process must use the same key; nothing was changed", ErrWrongKey, where, src.describe())
}

// Checker answers whether the master keys in hand still open the key
// store, for /readyz: a server that holds the old key after a rotation is
// taken out of a load balancer instead of answering 500. It reads the key
// file again when it changed and checks the key store's check value — one
// small read, at most every checkInterval, whatever the probe rate.
type Checker struct {
	src   *Source
	ks    *keystore.Store
	where string
	log   *slog.Logger
	// interval is how long a result is reused (checkInterval).
	interval time.Duration

	mu      sync.Mutex
	at      time.Time
	err     error
	fileErr string
}

// Check timing: how long a result is reused, and how long the key store
// may take to answer.
const (
	checkInterval = 2 * time.Second
	checkTimeout  = 3 * time.Second
)

// NewChecker returns a Checker of src's keys against ks (where describes
// it for messages).
func NewChecker(src *Source, ks *keystore.Store, where string, log *slog.Logger) *Checker {
	return &Checker{src: src, ks: ks, where: where, log: log, interval: checkInterval}
}

// Ready returns nil while a key in hand opens the key store's check value.
func (c *Checker) Ready(ctx context.Context) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.at.IsZero() && time.Since(c.at) < c.interval {
		return c.err
	}
	c.err = c.check(ctx)
	c.at = time.Now()
	return c.err
}

func (c *Checker) check(ctx context.Context) error {
	changed, err := c.src.Refresh()
	switch {
	case err != nil && err.Error() != c.fileErr:
		// Logged once per distinct failure; the keys in hand go on.
		c.fileErr = err.Error()
		c.log.Error("the master key file can't be read again: keeping the keys read before", "file", c.src.File(), "error", err.Error())
	case err == nil && changed:
		c.fileErr = ""
		c.log.Info("the master key file changed: keys read again", "file", c.src.File())
	}
	ctx, cancel := context.WithTimeout(ctx, checkTimeout)
	defer cancel()
	check, err := c.ks.Check(ctx)
	if err != nil {
		return fmt.Errorf("the key store %s does not answer: %w", c.where, err)
	}
	if check == nil {
		return fmt.Errorf("%w: the key store %s has no master key check value: was it replaced?", ErrWrongKey, c.where)
	}
	for _, k := range c.src.MasterKeys() {
		if k.OpensCheck(check) {
			return nil
		}
	}
	hint := "restart it with the new key as " + config.EnvMasterKey + " (and the old one as " + config.EnvPreviousMasterKey + ")"
	if c.src.File() != "" {
		hint = "put the new key in " + c.src.File()
	}
	return fmt.Errorf("%w: %s no longer opens the key store %s: the master key was rotated and this process holds the old one "+
		"(%s), or the key store was replaced", ErrWrongKey, c.src.describe(), c.where, hint)
}

// IsRefusal reports whether err is one of the refusals above, or a weak or
// exposed key: a configuration to fix, not a failure to retry.
func IsRefusal(err error) bool {
	for _, target := range []error{ErrWrongKey, ErrMixedKeys, ErrKeyFileMissing, ErrKeysMissing, seal.ErrWeakKey, config.ErrNotPrivate} {
		if errors.Is(err, target) {
			return true
		}
	}
	return false
}
