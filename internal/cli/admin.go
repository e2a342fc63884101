package cli

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
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

// adminFlags parses the flags every admin command shares, plus its own.
type adminFlags struct {
	cfg  config.Config
	json bool
	fs   *flag.FlagSet
	io   IO
}

func newAdminFlags(name string, io IO) *adminFlags {
	a := &adminFlags{fs: flag.NewFlagSet(name, flag.ContinueOnError), io: io}
	a.cfg.BindDatabase(a.fs, io.Env)
	a.fs.BoolVar(&a.json, "json", false, "print JSON")
	return a
}

func (a *adminFlags) parse(args []string) error {
	if err := parse(a.fs, args, a.io.Stdout); err != nil {
		return err
	}
	if err := a.cfg.Validate(); err != nil {
		return usagef("%v", err)
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

func formatTime(t time.Time) string { return t.UTC().Format(store.TimeLayout) }

// requireCustomer answers a usage error when the customer does not exist.
func requireCustomer(ctx context.Context, db store.Store, customerID string) error {
	if _, err := db.Customer(ctx, customerID); errors.Is(err, store.ErrNotFound) {
		return usagef("no customer with id %s", customerID)
	} else if err != nil {
		return err
	}
	return nil
}

func customerCreate(ctx context.Context, args []string, io IO) error {
	a := newAdminFlags("customer create", io)
	a.cfg.BindKeys(a.fs, io.Env)
	name := a.fs.String("name", "", "the customer's name (required)")
	if err := a.parse(args); err != nil {
		return err
	}
	*name = strings.TrimSpace(*name)
	if *name == "" || utf8.RuneCountInString(*name) > 255 {
		return usagef("--name is required and at most 255 characters")
	}
	// The key first: a customer is never made under a key that does not
	// open the key store (nor is the database migrated for one).
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

// customerDelete crypto-shreds a customer: its keys are destroyed first, so
// that no copy of its data (backups included) can be opened again; then its
// rows are deleted, and the deletion is recorded in its audit trail, which
// stays.
func customerDelete(ctx context.Context, args []string, io IO) error {
	a := newAdminFlags("customer delete", io)
	a.cfg.BindKeys(a.fs, io.Env)
	id := a.fs.String("id", "", "customer id (required)")
	if err := a.parse(args); err != nil {
		return err
	}
	customerID, err := parseID("id", *id)
	if err != nil {
		return err
	}
	if err := a.cfg.ValidateKeyStore(); err != nil {
		return usagef("%v", err)
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
	if err := requireCustomer(ctx, db, customerID); err != nil {
		return err
	}
	ks, err := keystore.Open(ctx, location)
	if err != nil {
		return err
	}
	defer ks.Close()
	if err := ks.Destroy(ctx, customerID); err != nil {
		return fmt.Errorf("destroying the customer's keys: %w", err)
	}
	now := time.Now().UTC().Truncate(time.Microsecond)
	entry := audit.Entry{CustomerID: customerID, Time: now, ClientID: "cli", Action: audit.Delete,
		Resource: "Customer", ObjectIDs: []string{customerID}}
	if err := db.Update(ctx, func(tx store.Tx) error { return tx.AppendAudit(ctx, []audit.Entry{entry}) }); err != nil {
		return fmt.Errorf("recording the deletion: %w", err)
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

func clientCreate(ctx context.Context, args []string, io IO) error {
	a := newAdminFlags("client create", io)
	customer := a.fs.String("customer", "", "customer id (required)")
	scopeName := a.fs.String("scope", string(auth.ReadWrite), "read or read_write")
	if err := a.parse(args); err != nil {
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
	db, err := a.open(ctx)
	if err != nil {
		return err
	}
	defer db.Close()
	if err := requireCustomer(ctx, db, customerID); err != nil {
		return err
	}
	c, secret := auth.Issue(customerID, scope, time.Now())
	if err := db.CreateClient(ctx, c); err != nil {
		return err
	}
	if a.json {
		return printJSON(io, map[string]any{
			"id": c.ID, "customer_id": c.CustomerID, "scope": c.Scope,
			"headers": auth.Headers(c, secret),
		})
	}
	fmt.Fprintf(io.Stdout, "client %s created (scope %s). Send these headers; the secret is shown only now:\n", c.ID, c.Scope)
	for _, name := range headerOrder {
		fmt.Fprintf(io.Stdout, "  %s: %s\n", name, auth.Headers(c, secret)[name])
	}
	return nil
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

func clientList(ctx context.Context, args []string, io IO) error {
	a := newAdminFlags("client list", io)
	customer := a.fs.String("customer", "", "customer id (required)")
	if err := a.parse(args); err != nil {
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
	if err := requireCustomer(ctx, db, customerID); err != nil {
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
	for _, c := range out {
		state := "active"
		if c.RevokedAt != nil {
			state = "revoked " + *c.RevokedAt
		}
		fmt.Fprintf(io.Stdout, "%s  %-10s  created %s  %s\n", c.ID, c.Scope, c.CreatedAt, state)
	}
	return nil
}

func clientRevoke(ctx context.Context, args []string, io IO) error {
	a := newAdminFlags("client revoke", io)
	id := a.fs.String("id", "", "client id (required)")
	if err := a.parse(args); err != nil {
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
