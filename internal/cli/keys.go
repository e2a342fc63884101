package cli

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"

	"accounts/internal/config"
	"accounts/internal/keystore"
	"accounts/internal/masterkey"
	"accounts/internal/seal"
	"accounts/internal/store/postgres"
	"accounts/internal/store/sqlite"
)

// refusal is a UsageError (exit 2, one line) that keeps its cause, so that
// errors.Is tells a wrong key from a weak one.
type refusal struct {
	UsageError
	cause error
}

func (r *refusal) Unwrap() []error { return []error{&r.UsageError, r.cause} }

// refuse turns a configuration problem into a refusal.
func refuse(err error) error {
	return &refusal{UsageError: UsageError{Msg: err.Error()}, cause: err}
}

// keys are the key store and the master keys, verified against each other.
type keys struct {
	store   *keystore.Store
	masters *masterkey.Source
	// check is the key store's check value, and master the key in hand
	// that opens it: the key every customer key is wrapped under, and new
	// ones are.
	check  []byte
	master *seal.MasterKey
	// where describes the key store for messages (never a whole URL).
	where string
}

func (k *keys) Close() error { return k.store.Close() }

// put stores new wrapped keys, provided the key store is still wrapped
// under k.master (keystore.ErrCheckChanged otherwise).
func (k *keys) put(ctx context.Context, wrapped []seal.WrappedKey) error {
	return k.store.Put(ctx, k.check, wrapped)
}

// openKeys finds the master key and opens the key store, refusing — before
// anything is created, generated or migrated — a key that is weak, exposed,
// missing or not the one the key store's keys are wrapped under. With
// SQLite and no key given, it uses the key file beside the database; it
// generates that file (mode 0600, said in the log, the key never logged)
// only for a new deployment: no key store holding keys, no customer in the
// database. A key store from before check values gets its check value once
// every key in it is seen to open.
func openKeys(ctx context.Context, cfg config.Config, log *slog.Logger) (*keys, error) {
	if err := cfg.ValidateKeys(); err != nil {
		return nil, refuse(err)
	}
	location, err := cfg.KeyStoreLocation()
	if err != nil {
		return nil, refuse(err)
	}
	ksLoc, err := config.ParseLocation("--key-store", location)
	if err != nil {
		return nil, refuse(err)
	}
	where := ksLoc.String()
	peek, exists, err := keystore.Lookup(ctx, location)
	if err != nil {
		return nil, keyStoreFailed(where, err)
	}
	if exists {
		defer peek.Close()
	}
	opts := masterkey.Options{Key: cfg.MasterKey, File: cfg.KeyFile, Previous: cfg.PreviousMasterKey}
	generate := ""
	if opts.Key == "" && opts.File == "" {
		opts.File = cfg.GeneratedKeyFile()
		if _, err := os.Stat(opts.File); errors.Is(err, os.ErrNotExist) {
			generate = opts.File
		}
	}
	if generate != "" && opts.Previous != "" {
		// A previous key belongs to a rotation, which needs the
		// current key too: a new one would be generated beside it.
		return nil, refuse(fmt.Errorf("%s is set, but no master key is and there is no key file %s: give the current "+
			"key (%s or --key-file); nothing was changed", config.EnvPreviousMasterKey, generate, config.EnvMasterKey))
	}
	var src *masterkey.Source
	var verdict masterkey.Verdict
	if generate == "" {
		if src, err = masterkey.Load(opts); err != nil {
			return nil, refuse(err)
		}
		if verdict, err = masterkey.Inspect(ctx, nilIfAbsent(peek, exists), src, where); err != nil {
			return nil, refuseKeys(err)
		}
	} else {
		// A new key opens no existing key: only an empty key store and a
		// database without customers may get one.
		verdict = masterkey.Verdict{Empty: true}
		if exists {
			if check, err := peek.Check(ctx); err != nil {
				return nil, err
			} else if all, err := peek.All(ctx); err != nil {
				return nil, err
			} else if check != nil || len(all) > 0 {
				return nil, refuse(fmt.Errorf("%w: the key file %s is missing, but the key store %s holds customer keys wrapped "+
					"under the key it held: a new key would open none of them; put the key file back (from your secret store), "+
					"or give the key in %s; nothing was changed", masterkey.ErrKeyFileMissing, generate, where, config.EnvMasterKey))
			}
		}
	}
	if verdict.Empty {
		n, _, err := countCustomers(ctx, cfg, nil)
		if err != nil {
			return nil, err
		}
		if n > 0 {
			missing := ""
			if generate != "" {
				missing = fmt.Sprintf(" and there is no key file %s", generate)
			}
			return nil, refuse(fmt.Errorf("%w: the database holds %d customers, but the key store %s holds no key%s: "+
				"--key-store (%s) does not name their key store, or it was lost; point it at theirs (or restore it from its "+
				"backup, with the master key); nothing was changed", masterkey.ErrKeysMissing, n, where, missing, config.EnvKeyStore))
		}
	}
	if !verdict.Empty && exists {
		if err := sameDeployment(ctx, cfg, peek, where); err != nil {
			return nil, err
		}
	}
	if !verdict.Empty && cfg.DatabaseMissing() {
		// The converse: keys without their data. A restore that forgot
		// the database file, or a mistyped --database, would otherwise
		// start on a new, empty database and answer ready. A key store
		// with a check value and no customer's keys is a new deployment
		// whose first process has not yet made its database (a customer's
		// keys are stored only once it has): a second process started
		// beside it goes on.
		all, err := peek.All(ctx)
		if err != nil {
			return nil, keyStoreFailed(where, err)
		}
		if len(all) > 0 {
			return nil, refuse(fmt.Errorf("the key store %s holds keys, but there is no database at %s: --database (%s) "+
				"does not name their data, or it was lost; restore it from its backup beside the key store; nothing was changed",
				where, cfg.Database, config.EnvDatabase))
		}
	}
	if generate != "" {
		// Beside the database, whose folder may not exist yet.
		if err := os.MkdirAll(filepath.Dir(generate), 0o700); err != nil {
			err = fmt.Errorf("creating the master key file's folder: %w", err)
			if unusablePath(err) {
				return nil, refuse(err)
			}
			return nil, err
		}
		if err := masterkey.Generate(generate); err == nil {
			log.Warn("generated a new master key file; keep it safe and apart from database backups", "path", generate)
		} else if !errors.Is(err, os.ErrExist) {
			return nil, fmt.Errorf("generating the master key file: %w", err)
		}
		if src, err = masterkey.Load(opts); err != nil {
			return nil, refuse(err)
		}
	}
	ks, err := keystore.Open(ctx, location)
	if err != nil {
		return nil, keyStoreFailed(where, err)
	}
	if verdict, err = masterkey.Establish(ctx, ks, src, verdict, where); err != nil {
		ks.Close()
		return nil, refuseKeys(err)
	}
	return &keys{store: ks, masters: src, check: verdict.Check, master: verdict.Master, where: where}, nil
}

// nilIfAbsent is ks, or nil when there is no key store.
func nilIfAbsent(ks *keystore.Store, exists bool) *keystore.Store {
	if !exists {
		return nil
	}
	return ks
}

// refuseKeys makes a refusal of a key that does not fit the key store; any
// other error (the key store does not answer) stays a failure.
func refuseKeys(err error) error {
	if masterkey.IsRefusal(err) {
		return refuse(err)
	}
	return err
}

// countCustomers counts the data's customers without changing anything.
func countCustomers(ctx context.Context, cfg config.Config, among []string) (total, found int, err error) {
	if cfg.IsPostgres() {
		total, found, err = postgres.CountCustomers(ctx, cfg.Database, among)
		return total, found, refuseDatabase(err)
	}
	total, found, err = sqlite.CountCustomers(ctx, cfg.Database, among)
	return total, found, refuseDatabase(err)
}

// sameDeployment refuses a key store that holds keys, but none of the
// database's customers' while it has some: another deployment's (a
// mistyped --key-store, two restores crossed). Served, every request would
// fail while /readyz answered ready; a customer created would put its keys
// in the other deployment's store. One customer with keys is enough to
// pass: a customer whose deletion was cut short after its keys went has
// none, and stays until the deletion is run again.
func sameDeployment(ctx context.Context, cfg config.Config, ks *keystore.Store, where string) error {
	all, err := ks.All(ctx)
	if err != nil || len(all) == 0 {
		return err
	}
	ids := make([]string, 0, len(all))
	for _, k := range all {
		ids = append(ids, k.CustomerID)
	}
	total, found, err := countCustomers(ctx, cfg, ids)
	if err != nil || total == 0 || found > 0 {
		return err
	}
	return refuse(fmt.Errorf("%w: the database holds %d customers, and the key store %s holds keys, but none of theirs: "+
		"--key-store (%s) names another deployment's key store, or --database (%s) another deployment's database; "+
		"point them at one deployment's; nothing was changed", masterkey.ErrKeysMissing, total, where, config.EnvKeyStore, config.EnvDatabase))
}
