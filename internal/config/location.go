package config

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strings"
	"time"
)

// Location is what a --database or --key-store value names, resolved so
// that two spellings of one place compare equal: a PostgreSQL database by
// server and name, a file by its absolute path.
type Location struct {
	// Postgres is set for a postgres:// URL; else the location is a file.
	Postgres bool
	// Path is the file's cleaned absolute path.
	Path string
	// Host, Port and Database name a PostgreSQL database. Host is lower
	// case; every loopback spelling (localhost, 127.0.0.0/8, ::1, a Unix
	// socket folder, none) is "localhost". Port is 5432 unless given.
	Host, Port, Database string
}

// urlScheme matches the scheme of a URL ("mysql://...").
var urlScheme = regexp.MustCompile(`^([A-Za-z][A-Za-z0-9+.-]*)://`)

// keywordDSN matches a PostgreSQL keyword/value connection string
// ("host=db dbname=accounts"), which would otherwise pass for a file name.
var keywordDSN = regexp.MustCompile(`(^|\s)(host|hostaddr|port|dbname|user|password|sslmode)=`)

// ParseLocation resolves the value of flag (--database or --key-store): a
// postgres:// (or postgresql://) URL, or a file path. Anything else that
// looks like a URL or a connection string is an error, never a file name.
// Messages never quote a URL: it may hold a password.
func ParseLocation(flag, value string) (Location, error) {
	switch {
	case value == "":
		return Location{}, fmt.Errorf("%s must not be empty", flag)
	case strings.TrimSpace(value) != value:
		// A space an env file kept would name another file: a new,
		// empty deployment beside the real one.
		return Location{}, fmt.Errorf("%s must not begin or end with white space", flag)
	case urlScheme.MatchString(value):
		scheme := urlScheme.FindStringSubmatch(value)[1]
		if scheme != "postgres" && scheme != "postgresql" {
			return Location{}, fmt.Errorf("%s: unknown URL scheme %q: give a postgres:// URL (PostgreSQL) or a file path (SQLite)", flag, scheme)
		}
		return parsePostgres(flag, value)
	case value == ":memory:" || strings.HasPrefix(value, "file:"):
		return Location{}, fmt.Errorf("%s: give a plain file path, not an SQLite URI or in-memory database", flag)
	case keywordDSN.MatchString(value):
		return Location{}, fmt.Errorf("%s looks like a PostgreSQL keyword/value connection string: give it as a postgres://user@host:port/dbname URL", flag)
	}
	if strings.HasSuffix(value, "/") || strings.HasSuffix(value, string(filepath.Separator)) {
		// filepath.Abs would drop the slash, and the files named after
		// the database (its key file and key store) would be made
		// before the folder it names failed to open.
		return Location{}, fmt.Errorf("%s ends in a slash, which names a folder: give the path of a file", flag)
	}
	abs, err := filepath.Abs(value)
	if err != nil {
		return Location{}, fmt.Errorf("%s: %v", flag, err)
	}
	return Location{Path: abs}, nil
}

func parsePostgres(flag, value string) (Location, error) {
	u, err := url.Parse(value)
	if err != nil {
		return Location{}, fmt.Errorf("%s: the postgres:// URL does not parse", flag)
	}
	q := u.Query()
	host, port := u.Hostname(), u.Port()
	if h := q.Get("host"); h != "" {
		host = h
	}
	if p := q.Get("port"); p != "" {
		port = p
	}
	if port == "" {
		port = "5432"
	}
	database := strings.TrimPrefix(u.Path, "/")
	if d := q.Get("dbname"); d != "" {
		database = d
	}
	if database == "" {
		// As libpq: the database named after the user.
		database = u.User.Username()
		if v := q.Get("user"); v != "" {
			database = v
		}
	}
	return Location{Postgres: true, Host: normalHost(host), Port: port, Database: database}, nil
}

// normalHost lower-cases a host and names every loopback spelling
// "localhost": an empty host or a Unix socket folder (a server on this
// machine), localhost, 127.0.0.0/8, ::1.
func normalHost(host string) string {
	host = strings.ToLower(strings.Trim(host, "[]"))
	if host == "" || host == "localhost" || strings.HasPrefix(host, "/") {
		return "localhost"
	}
	if ip, err := netip.ParseAddr(host); err == nil {
		if ip.Unmap().IsLoopback() {
			return "localhost"
		}
		return ip.Unmap().String()
	}
	return host
}

// String describes the location for a message: the file's path, or
// scheme, server and database of a URL — never its user, password or
// parameters.
func (l Location) String() string {
	if !l.Postgres {
		return l.Path
	}
	return "postgres://" + net.JoinHostPort(l.Host, l.Port) + "/" + l.Database
}

// lookupTimeout bounds resolving a server name to compare two locations.
const lookupTimeout = 2 * time.Second

// Same reports whether l and o are one database: one file (by path, or
// the same file under two paths), or one PostgreSQL server and database.
// Two server names count as one server when they resolve to a common
// address.
func (l Location) Same(o Location) bool {
	if l.Postgres != o.Postgres {
		return false
	}
	if !l.Postgres {
		if l.Path == o.Path {
			return true
		}
		a, errA := os.Stat(l.Path)
		b, errB := os.Stat(o.Path)
		return errA == nil && errB == nil && os.SameFile(a, b)
	}
	return l.Port == o.Port && l.Database == o.Database && sameHost(l.Host, o.Host)
}

// sameHost reports whether two normalized hosts are one server.
func sameHost(a, b string) bool {
	if a == b {
		return true
	}
	ctx, cancel := context.WithTimeout(context.Background(), lookupTimeout)
	defer cancel()
	addrs := func(h string) []string {
		if _, err := netip.ParseAddr(h); err == nil {
			return []string{h}
		}
		if h == "localhost" {
			return []string{"localhost"}
		}
		found, err := net.DefaultResolver.LookupHost(ctx, h)
		if err != nil {
			return nil
		}
		for i, f := range found {
			found[i] = normalHost(f)
		}
		return found
	}
	other := addrs(b)
	return slices.ContainsFunc(addrs(a), func(x string) bool { return slices.Contains(other, x) })
}

// checkDatabaseFile checks that the file at path can be a database: an
// existing regular file this process can read and write, in a folder it
// can create files in (SQLite creates the -wal and -shm files beside it,
// and deletes them), or a path whose first existing ancestor is a folder
// it can create files in.
func checkDatabaseFile(flag, path string) error {
	info, err := os.Stat(path)
	switch {
	case err == nil && info.IsDir():
		return fmt.Errorf("%s %s is a folder: give the path of a file in it, e.g. %s", flag, path, filepath.Join(path, "accounts.db"))
	case err == nil && !info.Mode().IsRegular():
		return fmt.Errorf("%s %s is not a regular file", flag, path)
	case err == nil:
		if !accessible(path, accessRead|accessWrite) {
			return fmt.Errorf("%s %s can't be read and written by this user: fix its owner or mode", flag, path)
		}
		if dir := filepath.Dir(path); !accessible(dir, accessWrite|accessSearch) {
			return fmt.Errorf("%s %s: this user can't create files in %s, where SQLite keeps the database's -wal and -shm files: fix its owner or mode", flag, path, dir)
		}
		return nil
	case !errors.Is(err, fs.ErrNotExist):
		return fmt.Errorf("%s %s can't be reached: %v", flag, path, pathError(err))
	}
	// It will be created: its folder (created too if need be) must be.
	for dir := filepath.Dir(path); ; dir = filepath.Dir(dir) {
		info, err := os.Stat(dir)
		switch {
		case err == nil && !info.IsDir():
			return fmt.Errorf("%s %s can't be created: %s is not a folder", flag, path, dir)
		case err == nil:
			if !accessible(dir, accessWrite|accessSearch) {
				return fmt.Errorf("%s %s can't be created: this user can't create files in %s", flag, path, dir)
			}
			return nil
		case !errors.Is(err, fs.ErrNotExist):
			return fmt.Errorf("%s %s can't be created: %v", flag, path, pathError(err))
		}
		if parent := filepath.Dir(dir); parent == dir {
			return fmt.Errorf("%s %s can't be created: no folder of it exists", flag, path)
		}
	}
}

// pathError is err without the *PathError's repetition of the path.
func pathError(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// ErrNotPrivate is matched (errors.Is) by a *NotPrivateError.
var ErrNotPrivate = errors.New("config: file open to group or others")

// NotPrivateError is a key file or key store file that users other than
// its owner may read or write: the master key, or every customer's wrapped
// keys, would be theirs for the copying.
type NotPrivateError struct {
	What string // "the key file", "the key store"
	Path string
	Mode fs.FileMode
}

func (e *NotPrivateError) Error() string {
	return fmt.Sprintf("%s %s is open to group or others (mode %04o): run chmod 600 %s", e.What, e.Path, e.Mode.Perm(), shellQuote(e.Path))
}

// Is makes errors.Is(err, ErrNotPrivate) true.
func (e *NotPrivateError) Is(target error) bool { return target == ErrNotPrivate }

// CheckPrivate refuses a file that group or others may access. A missing
// file passes: it will be created with mode 0600. On Windows, where modes
// don't say who may read a file, it checks nothing.
func CheckPrivate(what, path string) error { return checkOpenTo(what, path, 0o077) }

// CheckTLSKey refuses a TLS private key file that others may access or its
// group may change, as CheckPrivate does a key file, but lets its group
// read it: that is how a key is shared with the services that use it
// (Debian's ssl-cert group, mode 0640, which PostgreSQL also accepts).
func CheckTLSKey(what, path string) error { return checkOpenTo(what, path, 0o037) }

// checkOpenTo refuses path when any permission bit of open is set on it.
func checkOpenTo(what, path string, open fs.FileMode) error {
	if runtime.GOOS == "windows" {
		return nil
	}
	info, err := os.Stat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("%s %s can't be reached: %v", what, path, pathError(err))
	}
	if info.Mode().Perm()&open != 0 {
		return &NotPrivateError{What: what, Path: path, Mode: info.Mode()}
	}
	return nil
}

// shellQuote quotes path for a shell when it holds anything but plain
// characters, so the chmod in a message can be pasted as is.
func shellQuote(path string) string {
	if path != "" && strings.IndexFunc(path, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("/._-+,:@", r))
	}) < 0 {
		return path
	}
	return "'" + strings.ReplaceAll(path, "'", `'\''`) + "'"
}
