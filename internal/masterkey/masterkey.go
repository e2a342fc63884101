// Package masterkey is the custody of the master key: where it comes from
// (the environment, or a key file that a rotation may rewrite under a
// running server), whether it is the key the key store's customer keys are
// wrapped under, and whether it still is while a server runs.
//
// Every failure fails closed: a wrong, weak, missing or exposed key is a
// refusal to start that names the likely cause and the fix, never a
// warning and a run that answers 500 to every request.
package masterkey

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"accounts/internal/config"
	"accounts/internal/seal"
)

// Refusals: a command that meets one of these exits without having changed
// anything. Match them with errors.Is; the messages say more.
var (
	// ErrWrongKey: the master key in hand is not the one the key store's
	// keys are wrapped under.
	ErrWrongKey = errors.New("masterkey: wrong master key")
	// ErrMixedKeys: the key store's keys are wrapped under more than one
	// master key (customers created under a wrong key by an older version).
	ErrMixedKeys = errors.New("masterkey: customer keys wrapped under different master keys")
	// ErrKeyFileMissing: the key file is gone while the key store holds
	// keys wrapped under the key it held.
	ErrKeyFileMissing = errors.New("masterkey: key file missing")
	// ErrKeysMissing: the database holds customers but the key store holds
	// no key: it is not their key store, or it was lost.
	ErrKeysMissing = errors.New("masterkey: no customer keys")
)

// Source holds the master keys in hand, the current one first, and reads
// them again when their key file changes (seal.MasterSource). Keys from the
// environment never change.
type Source struct {
	// origin names where the current key came from, for messages.
	origin string
	file   string
	// fromEnv is ACCOUNTS_PREVIOUS_MASTER_KEY, kept across reloads.
	fromEnv []*seal.MasterKey

	mu   sync.Mutex
	keys []*seal.MasterKey
	// digest is the SHA-256 of the key file as last read: a change is a
	// change of content, however the file was replaced.
	digest [sha256.Size]byte
}

// Options say where the master keys are.
type Options struct {
	// Key is ACCOUNTS_MASTER_KEY's value; it wins over File.
	Key string
	// File is the key file's path, when Key is empty.
	File string
	// Previous is ACCOUNTS_PREVIOUS_MASTER_KEY's value, if any.
	Previous string
	// Retiring accepts a weak current key: the key rotate-master rotates
	// away from (see seal.ParseRetiringMasterKey). Nothing else may.
	Retiring bool
}

// Load reads the master keys. The key file must exist and be private; every
// key must be strong (but see Options.Retiring).
func Load(o Options) (*Source, error) {
	s := &Source{}
	parse := seal.ParseMasterKey
	if o.Retiring {
		parse = seal.ParseRetiringMasterKey
	}
	switch {
	case o.Key != "":
		s.origin = config.EnvMasterKey
		k, err := parse(o.Key)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", config.EnvMasterKey, err)
		}
		s.keys = []*seal.MasterKey{k}
	case o.File != "":
		s.origin = "the key file " + o.File
		s.file = o.File
		digest, keys, err := readFile(o.File, o.Retiring)
		if err != nil {
			return nil, err
		}
		s.keys, s.digest = keys, digest
	default:
		return nil, errors.New("masterkey: no master key given")
	}
	if o.Previous != "" {
		k, err := seal.ParseMasterKey(o.Previous)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", config.EnvPreviousMasterKey, err)
		}
		s.fromEnv = []*seal.MasterKey{k}
		s.keys = append(s.keys, k)
	}
	return s, nil
}

// Origin names where the current key came from: the variable or the file.
func (s *Source) Origin() string { return s.origin }

// File is the key file the keys came from, "" when from the environment.
func (s *Source) File() string { return s.file }

// MasterKeys returns the keys in hand, the current one first.
func (s *Source) MasterKeys() []*seal.MasterKey {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.keys
}

// Reload reads the key file again and reports whether its keys changed
// (another file renamed over it, or it was rewritten).
func (s *Source) Reload() bool {
	changed, _ := s.Refresh()
	return changed
}

// Refresh is Reload that also says why the key file could not be read.
// The keys in hand stay when it can't: they opened the key store at start,
// and a half-edited file must not take a running server down.
func (s *Source) Refresh() (bool, error) {
	if s.file == "" {
		return false, nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	digest, keys, err := readFile(s.file, false)
	if err != nil {
		return false, err
	}
	if digest == s.digest {
		return false, nil
	}
	s.keys, s.digest = append(keys, s.fromEnv...), digest
	return true, nil
}

// A key file holds the current master key in base64 on its first line.
// While keys rotate-master runs it holds a second: the key the key store
// was wrapped under before, so that a server reading the file at any
// moment of the rotation opens the key store.
const maxKeyFileLines = 2

// maxKeyFileSize bounds what is read of a key file named by mistake.
const maxKeyFileSize = 4096

// readFile reads a key file: private, one or two keys. It returns the
// digest of its content with the keys.
func readFile(path string, retiring bool) (digest [sha256.Size]byte, keys []*seal.MasterKey, err error) {
	if err := config.CheckPrivate("the key file", path); err != nil {
		return digest, nil, err
	}
	f, err := os.Open(path)
	if err != nil {
		return digest, nil, fmt.Errorf("reading the key file: %w", err)
	}
	defer f.Close()
	raw, err := io.ReadAll(io.LimitReader(f, maxKeyFileSize))
	if err != nil {
		return digest, nil, fmt.Errorf("reading the key file: %w", err)
	}
	lines := strings.Fields(string(raw))
	if len(lines) == 0 || len(lines) > maxKeyFileLines || len(raw) == maxKeyFileSize {
		return digest, nil, fmt.Errorf("the key file %s must hold a base64 master key on its first line (and, during a rotation, the previous key on its second); generate one with: %s", path, seal.GenerateHint)
	}
	for i, line := range lines {
		parse := seal.ParseMasterKey
		if retiring {
			parse = seal.ParseRetiringMasterKey
		}
		k, err := parse(line)
		if err != nil {
			return digest, nil, fmt.Errorf("the key file %s, line %d: %w", path, i+1, err)
		}
		keys = append(keys, k)
	}
	return sha256.Sum256(raw), keys, nil
}

// FileLines returns the base64 keys of a key file as they are written,
// checked as readFile checks them (weak ones allowed: rotate-master writes
// back the key it rotates away from).
func FileLines(path string) ([]string, error) {
	if _, _, err := readFile(path, true); err != nil {
		return nil, err
	}
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return strings.Fields(string(raw)), nil
}

// Generate writes a new random key to a new key file at path, mode 0600;
// it fails with an error matching os.ErrExist when the file exists. The
// file appears whole (written aside, then linked into place): a process
// starting at the same moment reads the key or no file, never half a key.
func Generate(path string) error {
	tmp, err := writeTemp(path, seal.GenerateMasterKey())
	if err != nil {
		return err
	}
	defer os.Remove(tmp)
	if err := os.Link(tmp, path); err != nil {
		return err
	}
	return syncDir(filepath.Dir(path))
}

// writeTemp writes keys (base64, one a line) to a new file, mode 0600, in
// path's folder, synced, and returns its name: path's name after a dot,
// with tempMark and a random suffix.
func writeTemp(path string, keys ...string) (string, error) {
	tmp, err := os.CreateTemp(filepath.Dir(path), tempPattern(path))
	if err != nil {
		return "", err
	}
	fail := func(err error) (string, error) {
		tmp.Close()
		os.Remove(tmp.Name())
		return "", err
	}
	if err := tmp.Chmod(0o600); err != nil {
		return fail(err)
	}
	var b strings.Builder
	for _, k := range keys {
		b.WriteString(strings.TrimSpace(k) + "\n")
	}
	if _, err := tmp.WriteString(b.String()); err != nil {
		return fail(err)
	}
	if err := tmp.Sync(); err != nil {
		return fail(err)
	}
	if err := tmp.Close(); err != nil {
		os.Remove(tmp.Name())
		return "", err
	}
	return tmp.Name(), nil
}

// tempMark is what names a key file's copy written aside.
const tempMark = ".tmp-"

func tempPattern(path string) string { return "." + filepath.Base(path) + tempMark + "*" }

// staleAfter is how old a copy written aside must be to be left over from
// a write that was cut short (a write takes milliseconds).
const staleAfter = time.Minute

// WriteFile replaces the key file at path with keys (base64, one a line):
// written aside, mode 0600, synced, then renamed over the old one, so that
// a reader sees the old file or the new one, whole, and a crash leaves one
// of them. It then removes the copies of path that earlier writes cut
// short left aside: each holds master keys, under a name that a backup's
// exclusion of the key file would not match.
func WriteFile(path string, keys ...string) error {
	tmp, err := writeTemp(path, keys...)
	if err != nil {
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return err
	}
	if err := removeStaleCopies(path, time.Now().Add(-staleAfter)); err != nil {
		return err
	}
	return syncDir(filepath.Dir(path))
}

// removeStaleCopies removes path's copies written aside before cutoff.
func removeStaleCopies(path string, cutoff time.Time) error {
	stale, err := filepath.Glob(filepath.Join(filepath.Dir(path), tempPattern(path)))
	if err != nil {
		return err
	}
	for _, name := range stale {
		info, err := os.Lstat(name)
		if err != nil || !info.Mode().IsRegular() || !info.ModTime().Before(cutoff) {
			continue // gone, not ours, or another write's in progress
		}
		if err := os.Remove(name); err != nil && !errors.Is(err, os.ErrNotExist) {
			return err
		}
	}
	return nil
}

// syncDir makes a file created or renamed in dir durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	if err := d.Sync(); err != nil && !errors.Is(err, os.ErrInvalid) {
		return err
	}
	return nil
}

// SameKey reports whether a and b are one key: a opens b's check value.
// (Outside seal, keys are not kept as bytes to compare.)
func SameKey(a, b *seal.MasterKey) bool { return a.OpensCheck(b.NewCheck()) }
