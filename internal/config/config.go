// Package config is the service's configuration: a value parsed from flags,
// each with an environment-variable fallback, and validated. Nothing here is
// global; the value is passed to whatever needs it.
package config

import (
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
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
	// EnvKeySettle sets keys rotate-data's --settle.
	EnvKeySettle = "ACCOUNTS_KEY_SETTLE"
	// EnvNewMasterKey holds the new master key of keys rotate-master, when
	// no --new-key-file is given.
	EnvNewMasterKey = "ACCOUNTS_NEW_MASTER_KEY"
	// EnvPreviousMasterKey holds the master key being rotated away from,
	// while keys may still be wrapped under it (see keys rotate-master).
	EnvPreviousMasterKey = "ACCOUNTS_PREVIOUS_MASTER_KEY"
	EnvTLSCert           = "ACCOUNTS_TLS_CERT"
	EnvTLSKey            = "ACCOUNTS_TLS_KEY"
	// EnvAllowPlaintextHTTP takes exactly "true" or "false": a switch that
	// loosens a safety rule must not be flipped by a near miss ("1", "yes").
	EnvAllowPlaintextHTTP = "ACCOUNTS_ALLOW_PLAINTEXT_HTTP"
	EnvMetricsAddr        = "ACCOUNTS_METRICS_ADDR"
	// EnvAllowDebugger takes exactly "true" or "false", as
	// EnvAllowPlaintextHTTP does.
	EnvAllowDebugger = "ACCOUNTS_ALLOW_DEBUGGER"
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
	// limitsBound is set by BindLimits.
	limitsBound bool
	// TLSCert and TLSKey are the PEM files of serve's certificate (chain)
	// and private key. Both or neither: with both, every listener speaks
	// HTTPS only.
	TLSCert string
	TLSKey  string
	// AllowPlaintextHTTP lets serve listen without TLS on an address other
	// hosts can reach, for a deployment where a TLS-terminating proxy sits
	// in front. Without it such a start is refused: the X-PIGELLO-* headers,
	// the client secret among them, would cross the network in clear.
	AllowPlaintextHTTP bool
	// MetricsAddr, when set, is a listen address of its own for /metrics,
	// which the API listener then does not serve (so the metrics can be
	// reached by a scraper on a network the API's clients never see).
	MetricsAddr string
	// AllowDebugger keeps serve dumpable: a debugger or profiler of the
	// same user may attach to it and read its memory, which holds
	// decrypted personal values and unwrapped keys. Off, the process is
	// made not dumpable (see cli's setDumpable).
	AllowDebugger bool

	// envErrs are environment values that did not parse, met while binding
	// flags; Bind functions return nothing, so Validate reports the first.
	envErrs []error
}

// Env looks up an environment variable as os.LookupEnv does: its value,
// and whether it is set at all.
type Env func(string) (string, bool)

// MapEnv is the environment holding exactly vars.
func MapEnv(vars map[string]string) Env {
	return func(name string) (string, bool) {
		v, ok := vars[name]
		return v, ok
	}
}

// Value is the variable name's value in env, "" when it is unset. Set and
// empty is an error: a secret or a path that a deployment meant to pass
// and that came out empty (an unset variable expanded in an env file, a
// secret not mounted) must not quietly become "not given", which means a
// default: a generated key file, a database in ./data, TLS off.
func Value(env Env, name string) (string, error) {
	v, set := env(name)
	if set && v == "" {
		return "", fmt.Errorf("%s is set but empty: give it a value, or unset it", name)
	}
	return v, nil
}

// lookup is Value that keeps the error for Validate (Bind functions
// return nothing).
func (c *Config) lookup(env Env, name string) string {
	v, err := Value(env, name)
	if err != nil {
		c.envErrs = append(c.envErrs, err)
	}
	return v
}

// BindDatabase registers --database on fs.
func (c *Config) BindDatabase(fs *flag.FlagSet, env Env) {
	fs.StringVar(&c.Database, "database", or(c.lookup(env, EnvDatabase), DefaultDatabase),
		"SQLite file path or postgres:// URL (env "+EnvDatabase+")")
}

// BindKeys registers --key-file and --key-store on fs and reads the master
// key from env.
func (c *Config) BindKeys(fs *flag.FlagSet, env Env) {
	fs.StringVar(&c.KeyFile, "key-file", c.lookup(env, EnvKeyFile),
		"file holding the base64 master key (env "+EnvKeyFile+"; or the key itself in "+EnvMasterKey+")")
	fs.StringVar(&c.KeyStore, "key-store", c.lookup(env, EnvKeyStore),
		"where customer keys are kept, apart from the data: a file path or a postgres:// URL (env "+EnvKeyStore+
			"; default with SQLite: <database>.keys)")
	c.MasterKey = c.lookup(env, EnvMasterKey)
	c.PreviousMasterKey = c.lookup(env, EnvPreviousMasterKey)
}

// KeyStoreLocation returns where the key store is, or an error when none
// is set and there is no default (PostgreSQL data needs one named).
// ValidateKeyStore checks that it is apart from the data.
func (c *Config) KeyStoreLocation() (string, error) {
	switch {
	case c.KeyStore != "":
		return c.KeyStore, nil
	case c.IsPostgres():
		return "", errors.New("a key store is required with PostgreSQL: set " + EnvKeyStore +
			" or --key-store to a file path or the postgres:// URL of a database other than the data's")
	}
	return filepath.Clean(c.Database) + ".keys", nil
}

// ValidateKeys checks, without changing anything, what a command that uses
// the master key needs: a master key at all (PostgreSQL has no generated
// key file), a key file that exists and is private, and the key store
// (ValidateKeyStore). Whether the key is strong and the one the key store
// is wrapped under is checked when it is read.
func (c *Config) ValidateKeys() error {
	if c.MasterKey == "" && c.KeyFile == "" && c.IsPostgres() {
		return errors.New("a master key is required with PostgreSQL: set " + EnvMasterKey + " or --key-file (" + EnvKeyFile + ")")
	}
	if c.MasterKey != "" && c.KeyFile != "" {
		// Which one was meant is anyone's guess: a rotation that wrote
		// the file would leave the variable's key in use, or the reverse.
		return errors.New("the master key is given twice, in " + EnvMasterKey + " and --key-file (" + EnvKeyFile + "): give one")
	}
	if err := c.ValidateKeyStore(); err != nil {
		return err
	}
	if c.MasterKey != "" {
		return nil
	}
	if c.KeyFile == "" {
		// The generated key file: checked when it exists; openKeys decides
		// whether it may be generated.
		return CheckPrivate("the key file", c.GeneratedKeyFile())
	}
	info, err := os.Stat(c.KeyFile)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return fmt.Errorf("--key-file (%s) %s does not exist: give the file holding the master key", EnvKeyFile, c.KeyFile)
	case err != nil:
		return fmt.Errorf("--key-file (%s) %s can't be reached: %v", EnvKeyFile, c.KeyFile, pathError(err))
	case !info.Mode().IsRegular():
		return fmt.Errorf("--key-file (%s) %s is not a regular file", EnvKeyFile, c.KeyFile)
	case !accessible(c.KeyFile, accessRead):
		return fmt.Errorf("--key-file (%s) %s can't be read by this user: fix its owner", EnvKeyFile, c.KeyFile)
	}
	if err := CheckPrivate("the key file", c.KeyFile); err != nil {
		return err
	}
	for _, other := range []string{c.Database, c.KeyStore} {
		if other == "" {
			continue
		}
		if loc, err := ParseLocation("", other); err == nil && loc.Same(Location{Path: absPath(c.KeyFile)}) {
			return errors.New("--key-file must be a file of its own, not the database or the key store")
		}
	}
	return nil
}

// ValidateKeyStore checks the key store's location: a postgres:// URL or a
// usable file path, private when it is a file, and apart from the data —
// compared by what the two locations name (server, port and database; or
// file), not by their spelling.
func (c *Config) ValidateKeyStore() error {
	location, err := c.KeyStoreLocation()
	if err != nil {
		return err
	}
	flag := "--key-store (" + EnvKeyStore + ")"
	ks, err := ParseLocation(flag, location)
	if err != nil {
		return err
	}
	data, err := ParseLocation("--database", c.Database)
	if err != nil {
		return err
	}
	if ks.Same(data) {
		return fmt.Errorf("the key store must be apart from the data, but %s names the database %s: "+
			"give a file path or the postgres:// URL of another database", flag, data)
	}
	if ks.Postgres {
		return nil
	}
	if err := checkDatabaseFile(flag, ks.Path); err != nil {
		return err
	}
	// SQLite gives its -wal and -shm files the main file's mode, but a
	// chmod afterwards changes the main file only.
	for _, suffix := range []string{"", "-wal", "-shm"} {
		if err := CheckPrivate("the key store", ks.Path+suffix); err != nil {
			return err
		}
	}
	return nil
}

func absPath(p string) string {
	if abs, err := filepath.Abs(p); err == nil {
		return abs
	}
	return p
}

// BindServe registers --addr, the TLS flags, --allow-plaintext-http,
// --metrics-addr and --allow-debugger on fs.
func (c *Config) BindServe(fs *flag.FlagSet, env Env) {
	fs.StringVar(&c.Addr, "addr", or(c.lookup(env, EnvAddr), DefaultAddr), "listen address (env "+EnvAddr+")")
	fs.StringVar(&c.TLSCert, "tls-cert", c.lookup(env, EnvTLSCert),
		"PEM certificate (chain) file; with --tls-key, serve HTTPS (env "+EnvTLSCert+")")
	fs.StringVar(&c.TLSKey, "tls-key", c.lookup(env, EnvTLSKey),
		"PEM private key file of --tls-cert (env "+EnvTLSKey+")")
	c.bindStrictBool(fs, env, &c.AllowPlaintextHTTP, "allow-plaintext-http", EnvAllowPlaintextHTTP,
		"listen without TLS on a non-loopback address: only behind a TLS-terminating proxy")
	fs.StringVar(&c.MetricsAddr, "metrics-addr", c.lookup(env, EnvMetricsAddr),
		"serve /metrics only on this listen address, not on --addr (env "+EnvMetricsAddr+")")
	c.bindStrictBool(fs, env, &c.AllowDebugger, "allow-debugger", EnvAllowDebugger,
		"let a debugger or profiler of the same user attach and read the process's memory, decrypted values included")
}

// bindStrictBool registers a strictBool flag name with env as its
// fallback; an env value other than true or false is an error of Validate.
func (c *Config) bindStrictBool(fs *flag.FlagSet, env Env, v *bool, name, envName, usage string) {
	b := strictBool{v}
	if s := c.lookup(env, envName); s != "" {
		if b.Set(s) != nil {
			c.envErrs = append(c.envErrs, errors.New(envName+" must be true or false"))
		}
	}
	fs.Var(b, name, usage+" (env "+envName+")")
}

// TLS reports whether serve speaks HTTPS (both TLS files are given).
func (c *Config) TLS() bool { return c.TLSCert != "" && c.TLSKey != "" }

// ValidateServe checks serve's listening configuration: the TLS files come
// as a pair, every listen address is well formed, and no listener carries
// plaintext HTTP beyond loopback unless AllowPlaintextHTTP says a proxy
// terminates TLS in front. It reads no file; the certificate itself is
// loaded by serve.
func (c *Config) ValidateServe() error {
	if err := c.envError(); err != nil {
		return err
	}
	if (c.TLSCert == "") != (c.TLSKey == "") {
		return errors.New("--tls-cert and --tls-key go together: give both to serve HTTPS, or neither")
	}
	if c.AllowPlaintextHTTP && c.TLS() {
		// It would change nothing (every listener speaks HTTPS), so one
		// of the two is not what the operator thinks is in force.
		return errors.New("--allow-plaintext-http (env " + EnvAllowPlaintextHTTP + ") and --tls-cert with --tls-key contradict each other: " +
			"with TLS every listener speaks HTTPS; give one")
	}
	if _, err := IsLoopback(c.Addr); err != nil {
		return fmt.Errorf("--addr (env %s): %w", EnvAddr, err)
	}
	if c.MetricsAddr != "" {
		if _, err := IsLoopback(c.MetricsAddr); err != nil {
			return fmt.Errorf("--metrics-addr (env %s): %w", EnvMetricsAddr, err)
		}
		if c.MetricsAddr == c.Addr && !strings.HasSuffix(c.Addr, ":0") {
			return errors.New("--metrics-addr must differ from --addr")
		}
	}
	if exposed := c.PlaintextOnNetwork(); len(exposed) > 0 && !c.AllowPlaintextHTTP {
		return fmt.Errorf("refusing plaintext HTTP on non-loopback address %s: give --tls-cert and --tls-key, "+
			"or --allow-plaintext-http when a TLS-terminating proxy sits in front", exposed[0])
	}
	return nil
}

// PlaintextOnNetwork returns the listen addresses that would carry
// plaintext HTTP to other hosts: every non-loopback one, when TLS is off.
// Addresses that don't parse are left to ValidateServe.
func (c *Config) PlaintextOnNetwork() []string {
	if c.TLS() {
		return nil
	}
	var out []string
	for _, a := range []string{c.Addr, c.MetricsAddr} {
		if a == "" {
			continue
		}
		if loop, err := IsLoopback(a); err == nil && !loop {
			out = append(out, a)
		}
	}
	return out
}

// IsLoopback reports whether the listen address addr (host:port) is
// reachable from this host only: its host is "localhost" or an IP in
// 127.0.0.0/8 or ::1. An empty host, an unspecified address (0.0.0.0, ::),
// any other IP and any other name listen where other hosts may connect;
// a name other than localhost could resolve anywhere, so it counts as
// reachable. The port must be a number from 0 to 65535 in plain decimal
// digits (not 010 or +80, which the listener would read as 10 and 80). A
// malformed addr is an error.
func IsLoopback(addr string) (bool, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return false, fmt.Errorf("%q is not host:port", addr)
	}
	if _, err := strconv.ParseUint(port, 10, 16); err != nil || !decimal(port, false) {
		return false, fmt.Errorf("%q: the port must be a number from 0 to 65535", addr)
	}
	if strings.EqualFold(host, "localhost") {
		return true, nil
	}
	if ip, err := netip.ParseAddr(host); err == nil {
		return ip.IsLoopback(), nil
	}
	return false, nil
}

// strictBool is a boolean flag.Value that accepts exactly "true" or
// "false" (and no value: true), unlike flag.Bool, which also takes "1",
// "t" or "TRUE".
type strictBool struct{ v *bool }

func (b strictBool) String() string {
	if b.v == nil {
		return "false"
	}
	return strconv.FormatBool(*b.v)
}

func (b strictBool) Set(s string) error {
	switch s {
	case "true":
		*b.v = true
	case "false":
		*b.v = false
	default:
		return errors.New("must be true or false")
	}
	return nil
}

// IsBoolFlag lets the flag be given without a value.
func (b strictBool) IsBoolFlag() bool { return true }

// IsPostgres reports whether Database names a PostgreSQL server.
func (c *Config) IsPostgres() bool {
	return strings.HasPrefix(c.Database, "postgres://") || strings.HasPrefix(c.Database, "postgresql://")
}

// DatabaseMissing reports whether Database names an SQLite file that does
// not exist: a mistyped path, or a restore that left the data out. A
// command that works on a deployment refuses it rather than make a new,
// empty database. (A PostgreSQL URL of a wrong database fails to connect.)
func (c *Config) DatabaseMissing() bool {
	if c.IsPostgres() {
		return false
	}
	_, err := os.Stat(c.Database)
	return errors.Is(err, os.ErrNotExist)
}

// GeneratedKeyFile is where the embedded setup keeps a generated master key:
// beside the database file.
func (c *Config) GeneratedKeyFile() string {
	return filepath.Clean(c.Database) + ".key"
}

// Validate checks the values that flags can't, without changing
// anything: a --database that is neither a postgres:// URL nor a usable
// file path is refused here, before any file is created for it.
func (c *Config) Validate() error {
	if err := c.envError(); err != nil {
		return err
	}
	data, err := ParseLocation("--database ("+EnvDatabase+")", c.Database)
	if err != nil {
		return err
	}
	if !data.Postgres {
		// The data's file is not checked for privacy: on its own it holds
		// no readable personal value (README), and a backup agent may
		// read it.
		if err := checkDatabaseFile("--database ("+EnvDatabase+")", data.Path); err != nil {
			return err
		}
	}
	return c.validateLimits()
}

// envError is the first environment value that did not parse.
func (c *Config) envError() error {
	if len(c.envErrs) > 0 {
		return c.envErrs[0]
	}
	return nil
}

func or(v, fallback string) string {
	if v != "" {
		return v
	}
	return fallback
}
