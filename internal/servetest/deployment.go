package servetest

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"path/filepath"

	"accounts/internal/cli"
	"accounts/internal/config"
	"accounts/internal/seal"
)

// Deployment is a database and its keys, as an operator sets them up:
// customers and clients are made in it with the real command line (run in
// this process), and servers started on it are real `accounts serve`
// processes.
type Deployment struct {
	t TB
	// Env is the ACCOUNTS_* environment of every command run in the
	// deployment and of every server started on it.
	Env map[string]string
}

// NewDeployment makes a deployment on database, a SQLite file or a
// postgres:// URL (storetest.PostgresURL's, say), with a new master key.
// On PostgreSQL the key store is a file of its own, apart from the data, as
// it must be.
func NewDeployment(t TB, database string) *Deployment {
	t.Helper()
	d := &Deployment{t: t, Env: map[string]string{
		config.EnvDatabase:  database,
		config.EnvMasterKey: seal.GenerateMasterKey(),
	}}
	if (&config.Config{Database: database}).IsPostgres() {
		d.Env[config.EnvKeyStore] = filepath.Join(t.TempDir(), "keys.db")
	}
	return d
}

// NewSQLiteDeployment makes a deployment on a new SQLite file in a
// directory of its own; its key store is the default one beside it.
func NewSQLiteDeployment(t TB) *Deployment {
	t.Helper()
	return NewDeployment(t, filepath.Join(t.TempDir(), "accounts.db"))
}

// Run runs an accounts command in the deployment and returns what it
// printed to stdout.
func (d *Deployment) Run(args ...string) (string, error) {
	var out bytes.Buffer
	err := cli.Run(context.Background(), args, cli.IO{Env: config.MapEnv(d.Env), Stdout: &out, Stderr: io.Discard})
	return out.String(), err
}

// runJSON runs a command that must succeed and decodes what it printed.
func (d *Deployment) runJSON(v any, args ...string) {
	d.t.Helper()
	out, err := d.Run(args...)
	if err != nil {
		d.t.Fatalf("accounts %s %s: %v", args[0], args[1], err)
	}
	if err := json.Unmarshal([]byte(out), v); err != nil {
		d.t.Fatalf("accounts %s %s printed no JSON: %v", args[0], args[1], err)
	}
}

// Customer registers a customer and returns its id.
func (d *Deployment) Customer(name string) string {
	d.t.Helper()
	var c struct{ ID string }
	d.runJSON(&c, "customer", "create", "--name", name, "--json")
	return c.ID
}

// Client issues a client of the customer with the scope (read or
// read_write) and returns its X-PIGELLO-* headers.
func (d *Deployment) Client(customerID, scope string) map[string]string {
	d.t.Helper()
	var c struct{ Headers map[string]string }
	d.runJSON(&c, "client", "create", "--customer", customerID, "--scope", scope, "--json")
	return c.Headers
}
