package config

import (
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestParseLocationRefuses(t *testing.T) {
	for _, v := range []string{
		"", "mysql://foo", "MYSQL://foo", "sqlite:///tmp/a.db", "file:///tmp/a.db", "http://x/y",
		"POSTGRES://u@h/db", "Postgres://u@h/db", "postgres://u@h:port/db", "file:a.db", ":memory:",
		"host=db dbname=accounts", "dbname=accounts", "user=u password=secret host=db",
		// A folder, and a path an env file kept a space around.
		"data/", "./accounts.db/", "/var/lib/accounts/", " accounts.db", "accounts.db ", "accounts.db\t", "accounts.db\n",
	} {
		if _, err := ParseLocation("--database", v); err == nil {
			t.Errorf("%q: accepted", v)
		} else if strings.Contains(err.Error(), "secret") || strings.Contains(err.Error(), "u@h") {
			t.Errorf("%q: the message quotes the value: %q", v, err)
		}
	}
	for _, v := range []string{"postgres://u@h/db", "postgresql://u:pw@h:6543/db?sslmode=require", "./data/accounts.db", "accounts.db", "/var/lib/a.db", "a=b.db"} {
		if _, err := ParseLocation("--database", v); err != nil {
			t.Errorf("%q: %v", v, err)
		}
	}
}

func TestLocationSame(t *testing.T) {
	same := [][2]string{
		{"postgresql://u@localhost/x", "postgres://u@127.0.0.1/x"},
		{"postgres://u@localhost:5432/x", "postgres://v:pw@[::1]/x?sslmode=disable"},
		{"postgres://u@127.0.0.1/x", "postgres://u@127.8.9.10:5432/x"},
		{"postgres:///x?host=/var/run/postgresql", "postgres://u@localhost/x"},
		{"postgres://u@DB.Example/x", "postgres://u@db.example:5432/x"},
		{"postgres://u@db.example/x", "postgres://u@db.example/ignored?dbname=x"},
		{"postgres://u@h/x", "postgres://u@h:1/x?port=5432"},
		{"postgres://alice@h", "postgres://bob@h/alice"},
		{"postgres://u@[::ffff:10.0.0.5]/x", "postgres://u@10.0.0.5/x"},
	}
	apart := [][2]string{
		{"postgres://u@localhost/x", "postgres://u@localhost/y"},
		{"postgres://u@localhost/x", "postgres://u@localhost:5433/x"},
		{"postgres://u@10.0.0.5/x", "postgres://u@10.0.0.6/x"},
		{"postgres://u@localhost/x", "/tmp/x"},
	}
	check := func(pair [2]string, want bool) {
		a, errA := ParseLocation("a", pair[0])
		b, errB := ParseLocation("b", pair[1])
		if errA != nil || errB != nil {
			t.Fatalf("%v: %v %v", pair, errA, errB)
		}
		if a.Same(b) != want || b.Same(a) != want {
			t.Errorf("%s and %s: same %v, want %v", pair[0], pair[1], !want, want)
		}
	}
	for _, p := range same {
		check(p, true)
	}
	for _, p := range apart {
		check(p, false)
	}

	// Files: by path, and the same file under two paths.
	dir := t.TempDir()
	file := filepath.Join(dir, "a.db")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(dir, "link.db")
	if err := os.Symlink(file, link); err != nil {
		t.Fatal(err)
	}
	hard := filepath.Join(dir, "hard.db")
	if err := os.Link(file, hard); err != nil {
		t.Fatal(err)
	}
	t.Chdir(dir)
	for _, other := range []string{"a.db", "./a.db", filepath.Join(dir, "sub", "..", "a.db"), link, hard} {
		check([2]string{file, other}, true)
	}
	check([2]string{file, filepath.Join(dir, "b.db")}, false)
}

// Descriptions of a location never carry its user, password or parameters.
func TestLocationString(t *testing.T) {
	l, err := ParseLocation("x", "postgresql://alice:s3cret@DB.example:6543/accounts?sslmode=require&password=other")
	if err != nil {
		t.Fatal(err)
	}
	if got := l.String(); got != "postgres://db.example:6543/accounts" {
		t.Errorf("String() = %q", got)
	}
}

func TestValidateChecksLocations(t *testing.T) {
	dir := t.TempDir()
	aFile := filepath.Join(dir, "file")
	if err := os.WriteFile(aFile, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	for name, db := range map[string]string{
		"a folder":          dir,
		"under a file":      filepath.Join(aFile, "accounts.db"),
		"deep under a file": filepath.Join(aFile, "a", "b", "accounts.db"),
		"mysql":             "mysql://foo",
	} {
		c := Config{Database: db}
		if err := c.Validate(); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	for name, db := range map[string]string{
		"new file":        filepath.Join(dir, "new.db"),
		"new folders":     filepath.Join(dir, "a", "b", "new.db"),
		"existing file":   aFile,
		"postgres":        "postgres://u@h/db",
		"relative, fresh": "data/accounts.db",
	} {
		c := Config{Database: db}
		if err := c.Validate(); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
	if os.Getuid() != 0 {
		locked := filepath.Join(dir, "locked")
		if err := os.Mkdir(locked, 0o500); err != nil {
			t.Fatal(err)
		}
		c := Config{Database: filepath.Join(locked, "accounts.db")}
		if err := c.Validate(); err == nil {
			t.Error("a database in a folder this user can't write: accepted")
		}
	}
}

func TestValidateKeys(t *testing.T) {
	dir := t.TempDir()
	db := filepath.Join(dir, "accounts.db")
	key := filepath.Join(dir, "master.key")
	if err := os.WriteFile(key, []byte("x\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	open := filepath.Join(dir, "open.key")
	if err := os.WriteFile(open, []byte("x\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name string
		c    Config
		want error // nil: any error
		ok   bool
	}{
		{"embedded default", Config{Database: db}, nil, true},
		{"key file", Config{Database: db, KeyFile: key}, nil, true},
		{"missing key file", Config{Database: db, KeyFile: filepath.Join(dir, "none")}, nil, false},
		{"open key file", Config{Database: db, KeyFile: open}, ErrNotPrivate, false},
		{"key file is the key store", Config{Database: db, KeyFile: key, KeyStore: key}, nil, false},
		{"postgres without key", Config{Database: "postgres://u@h/x", KeyStore: filepath.Join(dir, "k")}, nil, false},
		{"postgres without key store", Config{Database: "postgres://u@h/x", MasterKey: "k"}, nil, false},
		{"postgres with both", Config{Database: "postgres://u@h/x", MasterKey: "k", KeyStore: "postgres://u@h/keys"}, nil, true},
		{"key store is the data", Config{Database: "postgres://u@localhost/x", MasterKey: "k", KeyStore: "postgresql://u@127.0.0.1:5432/x"}, nil, false},
		{"key store is the data file", Config{Database: db, KeyStore: filepath.Join(dir, ".", "accounts.db")}, nil, false},
		{"key store a folder", Config{Database: db, KeyStore: dir}, nil, false},
		{"key store mysql", Config{Database: db, KeyStore: "mysql://k"}, nil, false},
	}
	for _, tc := range cases {
		err := tc.c.ValidateKeys()
		if (err == nil) != tc.ok || (tc.want != nil && !errors.Is(err, tc.want)) {
			t.Errorf("%s: err %v, want ok %v (%v)", tc.name, err, tc.ok, tc.want)
		}
	}
	// The key store's file, or its WAL, open to others.
	ks := filepath.Join(dir, "accounts.db.keys")
	for _, f := range []string{ks, ks + "-wal"} {
		if err := os.WriteFile(f, nil, 0o640); err != nil {
			t.Fatal(err)
		}
		c := Config{Database: db}
		err := c.ValidateKeys()
		var np *NotPrivateError
		if !errors.As(err, &np) || np.Path != f {
			t.Errorf("%s mode 0640: err %v, want a NotPrivateError naming it", filepath.Base(f), err)
		}
		os.Chmod(f, 0o600)
	}
}

func TestShellQuote(t *testing.T) {
	for in, want := range map[string]string{
		"/var/lib/accounts.db.key": "/var/lib/accounts.db.key",
		"/tmp/my keys/a.key":       "'/tmp/my keys/a.key'",
		"/tmp/it's":                `'/tmp/it'\''s'`,
	} {
		if got := shellQuote(in); got != want {
			t.Errorf("shellQuote(%q) = %q, want %q", in, got, want)
		}
	}
}

// A TLS key may be shared with its group for reading (0640), never with
// others, and never writable by its group; a key file or key store is its
// owner's alone.
func TestPrivateModes(t *testing.T) {
	path := filepath.Join(t.TempDir(), "key.pem")
	if err := os.WriteFile(path, []byte("k"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		mode           os.FileMode
		private, tlsOK bool
	}{
		{0o600, true, true}, {0o400, true, true}, {0o640, false, true}, {0o644, false, false},
		{0o660, false, false}, {0o604, false, false}, {0o610, false, false},
	} {
		if err := os.Chmod(path, c.mode); err != nil {
			t.Fatal(err)
		}
		if err := CheckPrivate("the key file", path); (err == nil) != c.private || err != nil && !errors.Is(err, ErrNotPrivate) {
			t.Errorf("CheckPrivate, mode %04o: %v, want accepted %v", c.mode, err, c.private)
		}
		if err := CheckTLSKey("--tls-key", path); (err == nil) != c.tlsOK || err != nil && !errors.Is(err, ErrNotPrivate) {
			t.Errorf("CheckTLSKey, mode %04o: %v, want accepted %v", c.mode, err, c.tlsOK)
		}
	}
	if err := CheckTLSKey("--tls-key", filepath.Join(t.TempDir(), "missing.pem")); err != nil {
		t.Errorf("a missing key: %v (left to the loading of the pair)", err)
	}
}

// A variable set to the empty string is refused, naming it; one that is
// unset is not.
func TestEmptyVariableRefused(t *testing.T) {
	if _, err := Value(MapEnv(map[string]string{EnvTLSCert: ""}), EnvTLSCert); err == nil || !strings.Contains(err.Error(), EnvTLSCert) {
		t.Errorf("set and empty: %v, want an error naming %s", err, EnvTLSCert)
	}
	if v, err := Value(MapEnv(map[string]string{EnvTLSCert: "c.pem"}), EnvTLSCert); err != nil || v != "c.pem" {
		t.Errorf("set: %q, %v", v, err)
	}
	if v, err := Value(MapEnv(nil), EnvTLSCert); err != nil || v != "" {
		t.Errorf("unset: %q, %v", v, err)
	}
	var c Config
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	c.BindDatabase(fs, MapEnv(map[string]string{EnvDatabase: ""}))
	if err := c.Validate(); err == nil {
		t.Errorf("Validate accepted an empty %s", EnvDatabase)
	}
}
