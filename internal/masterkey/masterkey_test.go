package masterkey

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"accounts/internal/config"
	"accounts/internal/keystore"
	"accounts/internal/seal"
)

var weakKey = base64.StdEncoding.EncodeToString(make([]byte, 32))

func writeKeyFile(t *testing.T, mode os.FileMode, lines ...string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "master.key")
	var b bytes.Buffer
	for _, l := range lines {
		b.WriteString(l + "\n")
	}
	if err := os.WriteFile(path, b.Bytes(), mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, mode); err != nil {
		t.Fatal(err)
	}
	return path
}

func parse(t *testing.T, encoded string) *seal.MasterKey {
	t.Helper()
	k, err := seal.ParseRetiringMasterKey(encoded)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func TestLoad(t *testing.T) {
	a, b := seal.GenerateMasterKey(), seal.GenerateMasterKey()
	src, err := Load(Options{Key: a, File: writeKeyFile(t, 0o600, b), Previous: b})
	if err != nil {
		t.Fatal(err)
	}
	if keys := src.MasterKeys(); len(keys) != 2 || !SameKey(keys[0], parse(t, a)) || !SameKey(keys[1], parse(t, b)) {
		t.Error("the environment's key is not first, or the previous one not second")
	}
	if src.File() != "" || src.Origin() != config.EnvMasterKey {
		t.Errorf("keys from the environment: file %q, origin %q", src.File(), src.Origin())
	}
	two := writeKeyFile(t, 0o600, a, b)
	src, err = Load(Options{File: two})
	if err != nil {
		t.Fatal(err)
	}
	if keys := src.MasterKeys(); len(keys) != 2 || !SameKey(keys[0], parse(t, a)) || !SameKey(keys[1], parse(t, b)) {
		t.Error("a key file of two lines: not both keys, in order")
	}

	cases := map[string]struct {
		o    Options
		want error
	}{
		"weak key":             {Options{Key: weakKey}, seal.ErrWeakKey},
		"weak previous":        {Options{Key: a, Previous: weakKey}, seal.ErrWeakKey},
		"weak key file":        {Options{File: writeKeyFile(t, 0o600, weakKey)}, seal.ErrWeakKey},
		"weak second line":     {Options{File: writeKeyFile(t, 0o600, a, weakKey)}, seal.ErrWeakKey},
		"file readable by all": {Options{File: writeKeyFile(t, 0o644, a)}, config.ErrNotPrivate},
		"file for the group":   {Options{File: writeKeyFile(t, 0o640, a)}, config.ErrNotPrivate},
		"three lines":          {Options{File: writeKeyFile(t, 0o600, a, b, a)}, nil},
		"empty file":           {Options{File: writeKeyFile(t, 0o600)}, nil},
		"not base64":           {Options{File: writeKeyFile(t, 0o600, "not a key")}, nil},
		"missing file":         {Options{File: filepath.Join(t.TempDir(), "none")}, nil},
		"nothing given":        {Options{}, nil},
	}
	for name, tc := range cases {
		_, err := Load(tc.o)
		if err == nil || (tc.want != nil && !errors.Is(err, tc.want)) {
			t.Errorf("%s: err %v, want %v", name, err, tc.want)
		}
		if err != nil && (bytes.Contains([]byte(err.Error()), []byte(a)) || bytes.Contains([]byte(err.Error()), []byte(weakKey))) {
			t.Errorf("%s: the error holds key material", name)
		}
	}
	// The key rotated away from may be weak; nothing else may.
	if _, err := Load(Options{Key: weakKey, Retiring: true}); err != nil {
		t.Errorf("a weak retiring key: %v", err)
	}
	if _, err := Load(Options{File: writeKeyFile(t, 0o600, weakKey), Retiring: true}); err != nil {
		t.Errorf("a weak retiring key file: %v", err)
	}
	if _, err := Load(Options{Key: weakKey, Previous: weakKey, Retiring: true}); !errors.Is(err, seal.ErrWeakKey) {
		t.Errorf("a weak previous key with a retiring one: err %v", err)
	}
}

// A key file replaced under a running server is read again; one that
// breaks leaves the keys in hand.
func TestSourceRefresh(t *testing.T) {
	a, b, prev := seal.GenerateMasterKey(), seal.GenerateMasterKey(), seal.GenerateMasterKey()
	path := writeKeyFile(t, 0o600, a)
	src, err := Load(Options{File: path, Previous: prev})
	if err != nil {
		t.Fatal(err)
	}
	if changed, err := src.Refresh(); changed || err != nil {
		t.Errorf("an unchanged file: changed %v, err %v", changed, err)
	}
	if err := WriteFile(path, b, a); err != nil {
		t.Fatal(err)
	}
	if !src.Reload() {
		t.Fatal("a replaced key file was not read again")
	}
	keys := src.MasterKeys()
	if len(keys) != 3 || !SameKey(keys[0], parse(t, b)) || !SameKey(keys[1], parse(t, a)) || !SameKey(keys[2], parse(t, prev)) {
		t.Error("after the reload: not the file's two keys, then the previous one")
	}
	if info, err := os.Stat(path); err != nil || info.Mode().Perm() != 0o600 {
		t.Errorf("WriteFile left mode %v (err %v), want 0600", info.Mode().Perm(), err)
	}
	if err := os.WriteFile(path, []byte("garbage\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if changed, err := src.Refresh(); changed || err == nil {
		t.Errorf("a broken key file: changed %v, err %v; want the error and the old keys", changed, err)
	}
	if len(src.MasterKeys()) != 3 {
		t.Error("a broken key file took the keys in hand away")
	}
	env, err := Load(Options{Key: a})
	if err != nil {
		t.Fatal(err)
	}
	if env.Reload() {
		t.Error("keys from the environment reloaded")
	}
}

func TestGenerate(t *testing.T) {
	path := filepath.Join(t.TempDir(), "new.key")
	if err := Generate(path); err != nil {
		t.Fatal(err)
	}
	info, err := os.Stat(path)
	if err != nil || info.Mode().Perm() != 0o600 {
		t.Fatalf("generated key file: mode %v, err %v", info.Mode().Perm(), err)
	}
	before, _ := os.ReadFile(path)
	if err := Generate(path); !errors.Is(err, os.ErrExist) {
		t.Errorf("generating over an existing file: err %v, want ErrExist", err)
	}
	if after, _ := os.ReadFile(path); !bytes.Equal(before, after) {
		t.Error("a second Generate changed the key file")
	}
	if _, err := Load(Options{File: path}); err != nil {
		t.Errorf("the generated key does not load: %v", err)
	}
	if entries, _ := os.ReadDir(filepath.Dir(path)); len(entries) != 1 {
		t.Errorf("Generate left %d files, want 1", len(entries))
	}
}

// WriteFile replaces the key file whole, and removes the copies that
// writes cut short left aside (each holds master keys), but not one that
// a write in progress has just made, nor another file.
func TestWriteFileRemovesStaleCopies(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "accounts.key")
	if err := Generate(path); err != nil {
		t.Fatal(err)
	}
	stale, err := writeTemp(path, seal.GenerateMasterKey()) // a write cut short
	if err != nil {
		t.Fatal(err)
	}
	old := time.Now().Add(-time.Hour)
	if err := os.Chtimes(stale, old, old); err != nil {
		t.Fatal(err)
	}
	fresh, err := writeTemp(path, seal.GenerateMasterKey()) // a write in progress
	if err != nil {
		t.Fatal(err)
	}
	other := filepath.Join(dir, ".other.key.tmp-1")
	if err := os.WriteFile(other, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	os.Chtimes(other, old, old)
	key := seal.GenerateMasterKey()
	if err := WriteFile(path, key); err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(path); strings.TrimSpace(string(got)) != key {
		t.Error("the key file does not hold the key written")
	}
	for name, want := range map[string]bool{stale: false, fresh: true, other: true} {
		if _, err := os.Stat(name); (err == nil) != want {
			t.Errorf("%s: exists %v, want %v", filepath.Base(name), err == nil, want)
		}
	}
}

func openStore(t *testing.T) (*keystore.Store, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "keys.db")
	ks, err := keystore.Open(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ks.Close() })
	return ks, path
}

func source(t *testing.T, keys ...string) *Source {
	t.Helper()
	o := Options{Key: keys[0]}
	if len(keys) > 1 {
		o.Previous = keys[1]
	}
	src, err := Load(o)
	if err != nil {
		t.Fatal(err)
	}
	return src
}

func TestInspectAndEstablish(t *testing.T) {
	ctx := context.Background()
	cur, prev, other := seal.GenerateMasterKey(), seal.GenerateMasterKey(), seal.GenerateMasterKey()
	v, err := Inspect(ctx, nil, source(t, cur), "nowhere")
	if err != nil || !v.Empty {
		t.Fatalf("no key store: %+v, err %v; want Empty", v, err)
	}

	// A key store from before check values, its keys under prev.
	ks, _ := openStore(t)
	if err := ks.Put(ctx, nil, parse(t, prev).NewCustomerKeys("c1")); err != nil {
		t.Fatal(err)
	}
	if _, err := Inspect(ctx, ks, source(t, cur), "ks"); !errors.Is(err, ErrWrongKey) {
		t.Errorf("keys under another key: err %v, want ErrWrongKey", err)
	}
	v, err = Inspect(ctx, ks, source(t, cur, prev), "ks")
	if err != nil || v.Empty || v.Check != nil || !SameKey(v.Master, parse(t, prev)) {
		t.Fatalf("keys under the previous key: %+v, err %v; want prev, no check yet", v, err)
	}
	// A customer under another key: mixed.
	if err := ks.Put(ctx, nil, parse(t, other).NewCustomerKeys("c2")); err != nil {
		t.Fatal(err)
	}
	if _, err := Inspect(ctx, ks, source(t, cur, prev), "ks"); !errors.Is(err, ErrMixedKeys) {
		t.Errorf("keys under two master keys: err %v, want ErrMixedKeys", err)
	}
	if err := ks.Destroy(ctx, "c2"); err != nil {
		t.Fatal(err)
	}

	// Establish writes prev's check value; from then on it decides.
	v, err = Establish(ctx, ks, source(t, cur, prev), v, "ks")
	if err != nil || !parse(t, prev).OpensCheck(v.Check) {
		t.Fatalf("Establish: err %v, or the check value is not prev's", err)
	}
	if stored, _ := ks.Check(ctx); !bytes.Equal(stored, v.Check) {
		t.Error("Establish did not store the check value")
	}
	if again, err := Inspect(ctx, ks, source(t, cur, prev), "ks"); err != nil || !bytes.Equal(again.Check, v.Check) || !SameKey(again.Master, parse(t, prev)) {
		t.Errorf("after Establish: err %v, or not the stored check value and prev", err)
	}
	if _, err := Inspect(ctx, ks, source(t, other), "ks"); !errors.Is(err, ErrWrongKey) {
		t.Errorf("a wrong key against the check value: err %v", err)
	}

	// An empty key store gets the current key's check value; a process
	// that comes second with another key is refused.
	empty, _ := openStore(t)
	v, err = Establish(ctx, empty, source(t, cur, prev), Verdict{Empty: true}, "empty")
	if err != nil || !parse(t, cur).OpensCheck(v.Check) || !SameKey(v.Master, parse(t, cur)) {
		t.Fatalf("Establish on an empty key store: err %v", err)
	}
	if _, err := Establish(ctx, empty, source(t, other), Verdict{Empty: true}, "empty"); !errors.Is(err, ErrWrongKey) {
		t.Errorf("a second process with another key: err %v, want ErrWrongKey", err)
	}
}

func TestChecker(t *testing.T) {
	ctx := context.Background()
	old, fresh := seal.GenerateMasterKey(), seal.GenerateMasterKey()
	ks, _ := openStore(t)
	if _, err := ks.InitCheck(ctx, parse(t, old).NewCheck()); err != nil {
		t.Fatal(err)
	}
	file := writeKeyFile(t, 0o600, old)
	fromFile, err := Load(Options{File: file})
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewJSONHandler(io.Discard, nil))
	onlyOld := NewChecker(source(t, old), ks, "ks", log)
	rolling := NewChecker(source(t, fresh, old), ks, "ks", log)
	watching := NewChecker(fromFile, ks, "ks", log)
	for _, c := range []*Checker{onlyOld, rolling, watching} {
		c.interval = 0
		if err := c.Ready(ctx); err != nil {
			t.Fatalf("before the rotation: %v", err)
		}
	}
	// The rotation: check value under fresh; the key file then says so.
	rotate := func([]byte, []seal.WrappedKey) ([]byte, []seal.WrappedKey, error) {
		return parse(t, fresh).NewCheck(), nil, nil
	}
	if err := ks.Rotate(ctx, rotate); err != nil {
		t.Fatal(err)
	}
	if err := onlyOld.Ready(ctx); !errors.Is(err, ErrWrongKey) {
		t.Errorf("a process with the old key only: err %v, want ErrWrongKey", err)
	}
	if err := rolling.Ready(ctx); err != nil {
		t.Errorf("a process with the new key and the old: %v", err)
	}
	if err := watching.Ready(ctx); !errors.Is(err, ErrWrongKey) {
		t.Errorf("before the key file changed: err %v, want ErrWrongKey", err)
	}
	if err := WriteFile(file, fresh); err != nil {
		t.Fatal(err)
	}
	if err := watching.Ready(ctx); err != nil {
		t.Errorf("after the key file changed: %v", err)
	}

	// A result is reused for the interval.
	onlyOld.interval = time.Hour
	onlyOld.at = time.Time{}
	first := onlyOld.Ready(ctx)
	if err := ks.Rotate(ctx, func([]byte, []seal.WrappedKey) ([]byte, []seal.WrappedKey, error) {
		return parse(t, old).NewCheck(), nil, nil
	}); err != nil {
		t.Fatal(err)
	}
	if err := onlyOld.Ready(ctx); !errors.Is(err, ErrWrongKey) || first == nil {
		t.Errorf("within the interval the result was not reused: %v", err)
	}
}
