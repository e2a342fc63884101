// Package config is the service's configuration: a value parsed from flags,
// each with an environment-variable fallback, and validated. Nothing here is
// global; the value is passed to whatever needs it.
package config

import (
	"errors"
	"flag"
	"path/filepath"
	"strings"
	"time"

	"accounts/internal/limit"
)

// Environment variables read as flag fallbacks.
const (
	EnvDatabase  = "ACCOUNTS_DATABASE"
	EnvAddr      = "ACCOUNTS_ADDR"
	EnvKeyFile   = "ACCOUNTS_KEY_FILE"
	EnvMasterKey = "ACCOUNTS_MASTER_KEY"
	EnvKeyStore  = "ACCOUNTS_KEY_STORE"
	// EnvPreviousMasterKey holds the master key being rotated away from,
	// while keys may still be wrapped under it (see keys rotate-master).
	EnvPreviousMasterKey = "ACCOUNTS_PREVIOUS_MASTER_KEY"
)

// Defaults of the embedded setup.
const (
	DefaultDatabase = "./data/accounts.db"
	DefaultAddr     = "127.0.0.1:8080"
)

// Config says where the data is, where the key is, and where to listen.
type Config struct {
	// Database is a file path (SQLite) or a postgres:// URL.
	Database string
	// Addr is the listen address of serve.
	Addr string
	// KeyFile holds the base64 master key, when MasterKey is empty.
	KeyFile string
	// MasterKey is the base64 master key. It is taken only from the
	// environment, never a flag: command lines are visible to every user.
	MasterKey string
	// PreviousMasterKey is the master key before a rotation, from the
	// environment only; keys wrapped under it still unwrap.
	PreviousMasterKey string
	// KeyStore is where the customers' wrapped keys are kept, apart from
	// the data: a file path (SQLite) or a postgres:// URL. With SQLite data
	// it defaults to a file beside the database.
	KeyStore string
	// Limits are serve's admission limits (see BindLimits); the zero value
	// turns every limit off.
	Limits limit.Config
	// RequestTimeout bounds a request's work before its response starts.
	RequestTimeout time.Duration
	// limitsBound is set by BindLimits; envErrs are the limit variables of
	// the environment that did not parse, reported by Validate.
	limitsBound bool
	envErrs     []error
}

// Env looks up an environment variable ("" when unset).
type Env func(string) string

// BindDatabase registers --database on fs.
func (c *Config) BindDatabase(fs *flag.FlagSet, env Env) {
	fs.StringVar(&c.Database, "database", or(env(EnvDatabase), DefaultDatabase),
		"SQLite file path or postgres:// URL (env "+EnvDatabase+")")
}

// BindKeys registers --key-file and --key-store on fs and reads the master
// key from env.
func (c *Config) BindKeys(fs *flag.FlagSet, env Env) {
	fs.StringVar(&c.KeyFile, "key-file", env(EnvKeyFile),
		"file holding the base64 master key (env "+EnvKeyFile+"; or the key itself in "+EnvMasterKey+")")
	fs.StringVar(&c.KeyStore, "key-store", env(EnvKeyStore),
		"where customer keys are kept, apart from the data: a file path or a postgres:// URL (env "+EnvKeyStore+
			"; default with SQLite: <database>.keys)")
	c.MasterKey = env(EnvMasterKey)
	c.PreviousMasterKey = env(EnvPreviousMasterKey)
}

// KeyStoreLocation returns where the key store is, or an error when none
// is set and there is no default (PostgreSQL data needs one named).
func (c *Config) KeyStoreLocation() (string, error) {
	switch {
	case c.KeyStore != "" && c.KeyStore == c.Database:
		return "", errors.New("the key store must be apart from the data: --key-store can't be the --database")
	case c.KeyStore != "":
		return c.KeyStore, nil
	case c.IsPostgres():
		return "", errors.New("a key store is required with PostgreSQL: set " + EnvKeyStore +
			" or --key-store to a file path or the postgres:// URL of a database other than the data's")
	}
	return filepath.Clean(c.Database) + ".keys", nil
}

// BindServe registers --addr on fs.
func (c *Config) BindServe(fs *flag.FlagSet, env Env) {
	fs.StringVar(&c.Addr, "addr", or(env(EnvAddr), DefaultAddr), "listen address (env "+EnvAddr+")")
}

// IsPostgres reports whether Database names a PostgreSQL server.
func (c *Config) IsPostgres() bool {
	return strings.HasPrefix(c.Database, "postgres://") || strings.HasPrefix(c.Database, "postgresql://")
}

// GeneratedKeyFile is where the embedded setup keeps a generated master key:
// beside the database file.
func (c *Config) GeneratedKeyFile() string {
	return filepath.Clean(c.Database) + ".key"
}

// Validate checks the values that flags can't.
func (c *Config) Validate() error {
	if c.Database == "" {
		return errors.New("--database must not be empty")
	}
	return c.validateLimits()
}

func or(v, fallback string) string {
	if v != "" {
		return v
	}
	return fallback
}
