package cli

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"strings"
	"time"
	"unicode/utf8"

	"accounts/internal/audit"
	"accounts/internal/auth"
	"accounts/internal/config"
	"accounts/internal/keystore"
	"accounts/internal/schema"
	"accounts/internal/store"

	"github.com/google/uuid"
)

// adminFlags are the flags every admin command shares: --database and
// --json, and --key-file and --key-store for those that open keys.
type adminFlags struct {
	cfg  config.Config
	json bool
	// keyStore is set for the commands that open the key store, master
	// for those that need the master key too.
	keyStore, master bool
	// creates is set for the command that may make a new deployment's
	// database (customer create); every other one needs it to exist.
	creates bool
	io      IO
}

func newAdminFlags(fs *flag.FlagSet, io IO) *adminFlags {
	a := &adminFlags{io: io}
	a.cfg.BindDatabase(fs, io.Env)
	fs.BoolVar(&a.json, "json", false, "print JSON")
	return a
}

// keyUse is what a command does with the keys.
type keyUse int

const (
	keyStoreOnly  keyUse = iota // opens the key store, never a key in it (customer delete)
	withMasterKey               // opens customer keys with the master key
)

// bindKeys adds --key-file and --key-store.
func (a *adminFlags) bindKeys(fs *flag.FlagSet, use keyUse) {
	a.cfg.BindKeys(fs, a.io.Env)
	a.keyStore = true
	a.master = use == withMasterKey
}

// validate checks the configuration the flags and environment give, before
// anything is opened: a refusal is bad input (exit 2). For the commands
// that use the key store, its location is checked too (a usable path or
// URL, private, apart from the data), and for those that use the master
// key, that one is given where it must be and its file is private
// (ValidateKeys). Whether the key is strong and fits the key store is
// checked when the keys are opened.
func (a *adminFlags) validate() error {
	if err := a.cfg.Validate(); err != nil {
		return usagef("%v", err)
	}
	if !a.creates && a.cfg.DatabaseMissing() {
		// A mistyped --database, or an unset ACCOUNTS_DATABASE, would
		// otherwise get a new, empty database and find nothing in it: an
		// audit verify of a restored copy would pass.
		return usagef("there is no database at %s (--database, env %s): name the deployment's database file; nothing was changed", a.cfg.Database, config.EnvDatabase)
	}
	var err error
	switch {
	case a.master:
		err = a.cfg.ValidateKeys()
	case a.keyStore:
		err = a.cfg.ValidateKeyStore()
	}
	if err != nil {
		return refuse(err)
	}
	return nil
}

func (a *adminFlags) open(ctx context.Context) (store.Store, error) {
	return openStore(ctx, a.cfg, schema.New())
}

func printJSON(io IO, v any) error {
	enc := json.NewEncoder(io.Stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

func parseID(flagName, v string) (string, error) {
	if v == "" {
		return "", usagef("--%s is required", flagName)
	}
	id, err := uuid.Parse(v)
	if err != nil || len(v) != 36 {
		return "", usagef("--%s must be a UUID", flagName)
	}
	return id.String(), nil
}

// optionalID reads a flag that narrows a command to one id when given. An
// empty value given explicitly (--customer "$UNSET") is refused: taken as
// absent it would widen the command to every customer.
func optionalID(fs *flag.FlagSet, flagName, v string) (string, error) {
	if v == "" && !flagGiven(fs, flagName) {
		return "", nil
	}
	if v == "" {
		return "", usagef("--%s is empty: give a UUID, or leave the flag out", flagName)
	}
	return parseID(flagName, v)
}

// flagGiven reports whether the command line set the flag, to any value.
func flagGiven(fs *flag.FlagSet, name string) bool {
	given := false
	fs.Visit(func(f *flag.Flag) { given = given || f.Name == name })
	return given
}

func formatTime(t time.Time) string { return t.UTC().Format(store.TimeLayout) }

// requireCustomer returns the customer, or a usage error when there is none
// with that id: every command answers an unknown customer alike.
func requireCustomer(ctx context.Context, db store.Store, customerID string) (store.Customer, error) {
	c, err := db.Customer(ctx, customerID)
	if errors.Is(err, store.ErrNotFound) {
		return c, errUnknownCustomer(customerID)
	}
	return c, err
}

func errUnknownCustomer(id string) error { return usagef("no customer with id %s", id) }

func customerCreate(fs *flag.FlagSet, io IO) runFunc {
	a := newAdminFlags(fs, io)
	a.bindKeys(fs, withMasterKey)
	a.creates = true
	name := fs.String("name", "", "the customer's `NAME` (required; at most 255 characters)")
	return func(ctx context.Context, _ []string) error {
		if err := a.validate(); err != nil {
			return err
		}
		if *name == "" || utf8.RuneCountInString(*name) > 255 {
			return usagef("--name is required and at most 255 characters")
		}
		// Taken as given or refused, as the API's strings are: never
		// trimmed, nor invalid bytes stored for a JSON answer to replace.
		if !utf8.ValidString(*name) {
			return usagef("--name must be UTF-8 text")
		}
		if strings.TrimSpace(*name) != *name {
			return usagef("--name may not begin or end with white space")
		}
		if schema.HasControl(*name) {
			// Printed in lists and in customer delete's prompt, a line
			// break or an escape sequence would garble the terminal.
			return usagef("--name may not hold control characters")
		}
		// The key first: a customer is never made under a key that does
		// not open the key store (nor is the database migrated for one).
		keys, err := openKeys(ctx, a.cfg, newLogger(io))
		if err != nil {
			return err
		}
		defer keys.Close()
		db, err := a.open(ctx)
		if err != nil {
			return err
		}
		defer db.Close()
		c := store.Customer{ID: uuid.NewString(), Name: *name, CreatedAt: time.Now().UTC().Truncate(time.Microsecond)}
		if err := keys.put(ctx, keys.master.NewCustomerKeys(c.ID)); err != nil {
			return err
		}
		if err := db.CreateCustomer(ctx, c); err != nil {
			return errors.Join(err, keys.store.Destroy(ctx, c.ID))
		}
		if a.json {
			return printJSON(io, map[string]string{"id": c.ID, "name": c.Name, "created_at": formatTime(c.CreatedAt)})
		}
		fmt.Fprintf(io.Stdout, "customer %s created: %s\n", c.ID, c.Name)
		return nil
	}
}

// customerDelete crypto-shreds a customer: its clients are revoked first,
// and once no process serves them, its keys are destroyed, so that no copy
// of its data (backups included) can be opened again; then its rows are
// deleted, and the deletion is recorded in its audit trail, which
// stays. It can't be undone, so on a terminal it asks for the customer's id
// or name first, and elsewhere (a script, a pipe) it needs --yes: a
// mistyped id in a script must not shred the wrong customer unasked.
func customerDelete(fs *flag.FlagSet, io IO) runFunc {
	a := newAdminFlags(fs, io)
	a.bindKeys(fs, keyStoreOnly)
	id := fs.String("id", "", "customer `ID` (required)")
	yes := fs.Bool("yes", false, "do not ask for confirmation (required when stdin is not a terminal)")
	return func(ctx context.Context, _ []string) error {
		if err := a.validate(); err != nil {
			return err
		}
		customerID, err := parseID("id", *id)
		if err != nil {
			return err
		}
		location, err := a.cfg.KeyStoreLocation()
		if err != nil {
			return usagef("%v", err)
		}
		db, err := a.open(ctx)
		if err != nil {
			return err
		}
		defer db.Close()
		customer, err := requireCustomer(ctx, db, customerID)
		if err != nil {
			return err
		}
		// The key store first: a command that can't reach it, or that is
		// given another deployment's, changes nothing.
		ks, err := keystore.Open(ctx, location)
		if err != nil {
			return err
		}
		defer ks.Close()
		if err := keysToDestroy(ctx, db, ks, customerID); err != nil {
			return err
		}
		if !*yes {
			if err := confirmDelete(io, customer); err != nil {
				return err
			}
		}
		if err := revokeAndSettle(ctx, db, customerID); err != nil {
			return err
		}
		// Recorded before the keys go: a run cut short after that finds
		// the record, and knows the keys it no longer finds are gone.
		now := time.Now().UTC().Truncate(time.Microsecond)
		entry := audit.Entry{CustomerID: customerID, Time: now, ClientID: "cli", Action: audit.Delete,
			Resource: customerResource, ObjectIDs: []string{customerID}}
		if err := db.AppendAuditAlone(ctx, []audit.Entry{entry}); err != nil {
			return fmt.Errorf("recording the deletion: %w", err)
		}
		if err := ks.Destroy(ctx, customerID); err != nil {
			return fmt.Errorf("destroying the customer's keys: %w", err)
		}
		if err := db.DeleteCustomer(ctx, customerID); err != nil {
			return fmt.Errorf("deleting the customer's rows (its keys are already destroyed; run again to finish): %w", err)
		}
		if a.json {
			return printJSON(io, map[string]string{"id": customerID, "deleted_at": formatTime(now)})
		}
		fmt.Fprintf(io.Stdout, "customer %s deleted: keys destroyed, rows deleted\n", customerID)
		return nil
	}
}

// customerResource names a customer in the audit entry of its deletion.
const customerResource = "Customer"

// keysToDestroy refuses the deletion of a customer whose keys the key
// store does not hold, unless an earlier deletion of it (cut short before
// its rows went) destroyed them: a key store of another deployment would
// otherwise be told to destroy nothing, and the command report a
// crypto-shredding that did not happen, the real keys left to open every
// backup.
func keysToDestroy(ctx context.Context, db store.Store, ks *keystore.Store, customerID string) error {
	keys, err := ks.CustomerKeys(ctx, customerID)
	if err != nil || len(keys) > 0 {
		return err
	}
	begun := false
	err = db.AuditEntries(ctx, customerID, func(e audit.Entry) error {
		begun = begun || e.Action == audit.Delete && e.Resource == customerResource
		return nil
	})
	if err != nil || begun {
		return err
	}
	return usagef("the key store holds no keys of customer %s, and no deletion of it was begun: --key-store (%s) names another deployment's key store, or the keys were lost; nothing was changed",
		customerID, config.EnvKeyStore)
}

// revokeAndSettle revokes the customer's clients that are not revoked yet
// and waits until no serving process can still hold one authenticated
// (auth.ClientCacheTTL, and a margin): from then on no process serves the
// customer, so nothing is written under keys about to be destroyed (a
// process keeps a customer's keys for a minute), and the deletion of its
// rows does not contend with its writes (on PostgreSQL they deadlocked).
func revokeAndSettle(ctx context.Context, db store.Store, customerID string) error {
	clients, err := db.Clients(ctx, customerID)
	if err != nil {
		return err
	}
	now := time.Now().UTC().Truncate(time.Microsecond)
	revoked := 0
	for _, c := range clients {
		if c.RevokedAt != nil {
			continue
		}
		if err := db.RevokeClient(ctx, c.ID, now); err != nil {
			return fmt.Errorf("revoking the customer's clients (nothing is deleted yet): %w", err)
		}
		revoked++
	}
	if revoked == 0 {
		return nil
	}
	select {
	case <-time.After(auth.ClientCacheTTL + settleMargin):
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// settleMargin is what revokeAndSettle waits beyond auth.ClientCacheTTL:
// the clocks of the processes are one, but a request that authenticated
// just before the revocation still takes a moment to finish.
const settleMargin = 250 * time.Millisecond

// confirmDelete asks, on a terminal, for the customer's id or name to be
// typed back; anywhere else it refuses, since nobody is there to answer.
func confirmDelete(io IO, c store.Customer) error {
	if !isTerminal(io.Stdin) {
		return usagef("customer delete: stdin is not a terminal; give --yes to delete customer %s without confirmation", c.ID)
	}
	fmt.Fprintf(io.Stderr, "This destroys the keys and data of customer %q (%s) for good: no backup can be read afterwards.\n"+
		"Type the customer's name or id to confirm: ", c.Name, c.ID)
	line, err := bufio.NewReader(io.Stdin).ReadString('\n')
	answer := strings.TrimSpace(line)
	if answer == "" && err != nil {
		return usagef("customer delete: no confirmation read; nothing deleted")
	}
	if answer != c.ID && answer != strings.TrimSpace(c.Name) {
		return usagef("customer delete: the answer is not the customer's name or id; nothing deleted")
	}
	return nil
}

// isTerminal reports whether v is a terminal: a file that is one
// (fileIsTerminal), or anything else with a Stat method that reports a
// character device (the tests' terminals).
func isTerminal(v any) bool {
	if f, ok := v.(*os.File); ok {
		return fileIsTerminal(f)
	}
	s, ok := v.(interface{ Stat() (os.FileInfo, error) })
	if !ok {
		return false
	}
	info, err := s.Stat()
	return err == nil && info.Mode()&os.ModeCharDevice != 0
}

func clientCreate(fs *flag.FlagSet, io IO) runFunc {
	a := newAdminFlags(fs, io)
	customer := fs.String("customer", "", "customer `ID` (required)")
	scopeName := fs.String("scope", string(auth.ReadWrite), "`SCOPE` of the client: read or read_write")
	curlConfig := fs.String("curl-config", "", "write the seven headers, secret included, to a new `FILE` (mode 0600) as a curl config (curl -K FILE), and print no secret")
	return func(ctx context.Context, _ []string) error {
		if err := a.validate(); err != nil {
			return err
		}
		customerID, err := parseID("customer", *customer)
		if err != nil {
			return err
		}
		scope, err := auth.ParseScope(*scopeName)
		if err != nil {
			return usagef("--scope: %v", err)
		}
		// --curl-config "$UNSET" must not turn into printing the secret.
		if *curlConfig == "" && flagGiven(fs, "curl-config") {
			return usagef("--curl-config is empty: name a new file, or leave the flag out")
		}
		db, err := a.open(ctx)
		if err != nil {
			return err
		}
		defer db.Close()
		if _, err := requireCustomer(ctx, db, customerID); err != nil {
			return err
		}
		// The file is made before the client, so that a path that can't
		// take it costs nothing; it is removed again if the client isn't.
		var file *os.File
		if *curlConfig != "" {
			if file, err = createSecretFile(*curlConfig); err != nil {
				return err
			}
			defer file.Close()
		}
		c, secret := auth.Issue(customerID, scope, time.Now())
		if err := db.CreateClient(ctx, c); err != nil {
			if file != nil {
				os.Remove(file.Name())
			}
			return err
		}
		headers := auth.Headers(c, secret)
		if file != nil {
			if err := writeCurlConfig(file, headers); err != nil {
				// The secret is lost with the file: the client must not
				// stay usable by whoever reads a half-written copy.
				os.Remove(file.Name())
				return errors.Join(fmt.Errorf("--curl-config: %w", err), db.RevokeClient(ctx, c.ID, time.Now()))
			}
			headers = auth.Headers(c, "")
		}
		if a.json {
			return printJSON(io, map[string]any{
				"id": c.ID, "customer_id": c.CustomerID, "scope": c.Scope, "headers": headers,
			})
		}
		if file != nil {
			fmt.Fprintf(io.Stdout, "client %s created (scope %s); its headers, secret included, are in %s: curl -K %s ...\n",
				c.ID, c.Scope, file.Name(), file.Name())
			return nil
		}
		fmt.Fprintf(io.Stdout, "client %s created (scope %s). Send these headers; the secret is shown only now:\n", c.ID, c.Scope)
		for _, name := range headerOrder {
			fmt.Fprintf(io.Stdout, "  %s: %s\n", name, headers[name])
		}
		return nil
	}
}

// createSecretFile creates path for a secret: a new file (an existing one
// is never replaced: it may hold another client's secret, and a link
// could point anywhere) readable by its owner only.
func createSecretFile(path string) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, os.ErrExist) {
		return nil, usagef("--curl-config: %s exists; it is never overwritten: remove it or name another file", path)
	}
	if err != nil {
		return nil, usagef("--curl-config: %v", err)
	}
	return f, nil
}

// writeCurlConfig writes the headers as curl config lines, in the order of
// the contract, and syncs the file.
func writeCurlConfig(f *os.File, headers map[string]string) error {
	var b strings.Builder
	b.WriteString("# accounts API client " + headers[auth.HeaderClientEntity] + ": its seven headers, secret included. Use with curl -K.\n")
	quote := strings.NewReplacer(`\`, `\\`, `"`, `\"`)
	for _, name := range headerOrder {
		fmt.Fprintf(&b, "header = \"%s: %s\"\n", name, quote.Replace(headers[name]))
	}
	if _, err := f.WriteString(b.String()); err != nil {
		return err
	}
	if err := f.Sync(); err != nil {
		return err
	}
	return f.Close()
}

var headerOrder = []string{
	auth.HeaderCustomerID, auth.HeaderApplicationID, auth.HeaderServiceID, auth.HeaderServiceVersionID,
	auth.HeaderClientCT, auth.HeaderClientEntity, auth.HeaderClientSecret,
}

// clientJSON is a client as client list prints it: never the secret.
type clientJSON struct {
	ID         string            `json:"id"`
	CustomerID string            `json:"customer_id"`
	Scope      string            `json:"scope"`
	CreatedAt  string            `json:"created_at"`
	RevokedAt  *string           `json:"revoked_at"`
	Headers    map[string]string `json:"headers"`
}

func clientList(fs *flag.FlagSet, io IO) runFunc {
	a := newAdminFlags(fs, io)
	customer := fs.String("customer", "", "customer `ID` (required)")
	return func(ctx context.Context, _ []string) error {
		if err := a.validate(); err != nil {
			return err
		}
		customerID, err := parseID("customer", *customer)
		if err != nil {
			return err
		}
		db, err := a.open(ctx)
		if err != nil {
			return err
		}
		defer db.Close()
		if _, err := requireCustomer(ctx, db, customerID); err != nil {
			return err
		}
		clients, err := db.Clients(ctx, customerID)
		if err != nil {
			return err
		}
		out := make([]clientJSON, 0, len(clients))
		for _, c := range clients {
			cj := clientJSON{ID: c.ID, CustomerID: c.CustomerID, Scope: c.Scope, CreatedAt: formatTime(c.CreatedAt),
				Headers: auth.Headers(c, "")}
			if c.RevokedAt != nil {
				at := formatTime(*c.RevokedAt)
				cj.RevokedAt = &at
			}
			out = append(out, cj)
		}
		if a.json {
			return printJSON(io, out)
		}
		if len(out) == 0 {
			fmt.Fprintf(io.Stdout, "customer %s has no clients\n", customerID)
		}
		for _, c := range out {
			state := "active"
			if c.RevokedAt != nil {
				state = "revoked " + *c.RevokedAt
			}
			fmt.Fprintf(io.Stdout, "%s  %-10s  created %s  %s\n", c.ID, c.Scope, c.CreatedAt, state)
		}
		return nil
	}
}

func clientRevoke(fs *flag.FlagSet, io IO) runFunc {
	a := newAdminFlags(fs, io)
	id := fs.String("id", "", "client `ID` (required)")
	return func(ctx context.Context, _ []string) error {
		if err := a.validate(); err != nil {
			return err
		}
		clientID, err := parseID("id", *id)
		if err != nil {
			return err
		}
		db, err := a.open(ctx)
		if err != nil {
			return err
		}
		defer db.Close()
		if err := db.RevokeClient(ctx, clientID, time.Now()); errors.Is(err, store.ErrNotFound) {
			return usagef("no client with id %s", clientID)
		} else if err != nil {
			return err
		}
		c, err := db.Client(ctx, clientID)
		if err != nil {
			return err
		}
		if a.json {
			return printJSON(io, map[string]string{"id": c.ID, "revoked_at": formatTime(*c.RevokedAt)})
		}
		fmt.Fprintf(io.Stdout, "client %s revoked\n", c.ID)
		return nil
	}
}
