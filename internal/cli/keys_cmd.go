package cli

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"accounts/internal/config"
	"accounts/internal/keystore"
	"accounts/internal/schema"
	"accounts/internal/seal"
	"accounts/internal/store"
)

// envNewMasterKey holds the new master key for keys rotate-master, when no
// --new-key-file is given.
const envNewMasterKey = "ACCOUNTS_NEW_MASTER_KEY"

// keysRotateMaster rewraps every customer key under a new master key, in
// one transaction of the key store. Servers keep serving when they were
// started with the new key as ACCOUNTS_MASTER_KEY and the old one as
// ACCOUNTS_PREVIOUS_MASTER_KEY: keys wrapped under either unwrap.
func keysRotateMaster(fs *flag.FlagSet, io IO) runFunc {
	a := newAdminFlags(fs, io)
	a.bindKeys(fs)
	newFile := fs.String("new-key-file", "", "`FILE` holding the new base64 master key (or env "+envNewMasterKey+")")
	return func(ctx context.Context, _ []string) error { return rotateMaster(ctx, a, *newFile) }
}

func rotateMaster(ctx context.Context, a *adminFlags, newFile string) error {
	io := a.io
	if err := a.validate(); err != nil {
		return err
	}
	newEncoded := io.Env(envNewMasterKey)
	if newFile != "" {
		raw, err := os.ReadFile(newFile)
		if err != nil {
			return usagef("--new-key-file: %v", err)
		}
		newEncoded = string(raw)
	}
	if newEncoded == "" {
		return usagef("the new master key is required: --new-key-file or %s", envNewMasterKey)
	}
	newMaster, err := seal.ParseMasterKey(newEncoded)
	if err != nil {
		return usagef("new master key: %v", err)
	}
	ks, master, err := openKeys(ctx, a.cfg, newLogger(io))
	if err != nil {
		return err
	}
	defer ks.Close()
	all, err := ks.All(ctx)
	if err != nil {
		return err
	}
	rewrapped := make([]seal.WrappedKey, 0, len(all))
	already := 0
	for _, w := range all {
		nw, err := master.Rewrap(w, newMaster)
		if err != nil {
			// A key the new master already opens was rotated by an earlier,
			// interrupted run.
			if _, err := newMaster.Rewrap(w, newMaster); err == nil {
				already++
				continue
			}
			return fmt.Errorf("a key of customer %s opens with neither master key", w.CustomerID)
		}
		rewrapped = append(rewrapped, nw)
	}
	if err := ks.Replace(ctx, rewrapped); err != nil {
		return err
	}
	path := keyFileInUse(a.cfg)
	if path != "" {
		if err := replaceKeyFile(path, newEncoded); err != nil {
			return fmt.Errorf("the keys are rewrapped, but writing the new key to %s failed: %w", path, err)
		}
	}
	if a.json {
		var keyFile *string
		if path != "" {
			keyFile = &path
		}
		return printJSON(io, map[string]any{"rewrapped": len(rewrapped), "already": already, "key_file": keyFile})
	}
	were := "were"
	if already == 1 {
		were = "was"
	}
	done := fmt.Sprintf("rewrapped %s (%d already %s)", plural(int64(len(rewrapped)), "key", "keys"), already, were)
	if path != "" {
		fmt.Fprintf(io.Stdout, "%s; %s now holds the new master key\n", done, path)
		return nil
	}
	fmt.Fprintf(io.Stdout, "%s; set %s to the new key and unset %s\n", done, config.EnvMasterKey, config.EnvPreviousMasterKey)
	return nil
}

// keyFileInUse is the file the current master key was read from, if any.
func keyFileInUse(cfg config.Config) string {
	switch {
	case cfg.MasterKey != "":
		return ""
	case cfg.KeyFile != "":
		return cfg.KeyFile
	case !cfg.IsPostgres():
		return cfg.GeneratedKeyFile()
	}
	return ""
}

// replaceKeyFile writes key to path atomically, mode 0600.
func replaceKeyFile(path, key string) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), ".key-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return err
	}
	if _, err := tmp.WriteString(strings.TrimSpace(key) + "\n"); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}

// rotateBatch is how many rows one transaction of rotate-data re-seals.
const rotateBatch = 200

// keysRotateData gives each customer (or one) a new data key version and
// re-seals every value under it. It is resumable: a customer whose values
// are not all under its newest version is finished first, without another
// new version.
//
// With --json it prints JSON Lines: one object per customer as its
// rotation finishes, {"customer_id", "version", "values"} (the values
// re-sealed under that data key version); otherwise progress lines, or a
// bar on a terminal.
func keysRotateData(fs *flag.FlagSet, io IO) runFunc {
	a := newAdminFlags(fs, io)
	a.bindKeys(fs)
	only := fs.String("customer", "", "rotate this customer only (customer `ID`)")
	return func(ctx context.Context, _ []string) error {
		id, err := optionalID(fs, "customer", *only)
		if err != nil {
			return err
		}
		return rotateData(ctx, a, id)
	}
}

func rotateData(ctx context.Context, a *adminFlags, only string) error {
	if err := a.validate(); err != nil {
		return err
	}
	var customers []string
	if only != "" {
		customers = []string{only}
	}
	// The store finds a resource's statements by its declaration: the
	// resources listed must be the catalog's the store was opened with.
	catalog := schema.New()
	db, err := openStore(ctx, a.cfg, catalog)
	if err != nil {
		return err
	}
	defer db.Close()
	if customers != nil {
		if _, err := requireCustomer(ctx, db, customers[0]); err != nil {
			return err
		}
	}
	ks, master, err := openKeys(ctx, a.cfg, newLogger(a.io))
	if err != nil {
		return err
	}
	defer ks.Close()
	if customers == nil {
		all, err := ks.All(ctx)
		if err != nil {
			return err
		}
		for _, w := range all {
			if !slices.Contains(customers, w.CustomerID) {
				customers = append(customers, w.CustomerID)
			}
		}
	}
	progress := newProgress(a.io.Stdout)
	enc := json.NewEncoder(a.io.Stdout)
	if a.json {
		progress = newProgress(io.Discard)
	}
	for _, c := range customers {
		if err := rotateCustomer(ctx, db, catalog, ks, master, c, progress); err != nil {
			return fmt.Errorf("customer %s: %w", c, err)
		}
		if a.json {
			line := map[string]any{"customer_id": c, "version": progress.version, "values": progress.completed}
			if err := enc.Encode(line); err != nil {
				return err
			}
		}
	}
	return nil
}

// staleRow is a row sealed under an older data key version.
type staleRow struct {
	res *schema.Resource
	id  string
}

func rotateCustomer(ctx context.Context, db store.Store, catalog *schema.Catalog, ks *keystore.Store, master *seal.MasterKey, customerID string, progress *progress) error {
	ring := seal.NewKeyring(master, nil, ks)
	keys, err := ring.Customer(ctx, customerID)
	if err != nil {
		return err
	}
	stale, err := staleRows(ctx, db, catalog, customerID, keys.Current())
	if err != nil {
		return err
	}
	if len(stale) == 0 {
		// The last rotation finished: start a new one.
		if err := ks.Put(ctx, []seal.WrappedKey{master.NewDataKey(customerID, keys.Current()+1)}); err != nil {
			return err
		}
		if keys, err = ring.Refresh(ctx, customerID); err != nil {
			return err
		}
		if stale, err = staleRows(ctx, db, catalog, customerID, keys.Current()); err != nil {
			return err
		}
	}
	progress.start(customerID, keys.Current(), len(stale))
	for start := 0; start < len(stale); start += rotateBatch {
		batch := stale[start:min(start+rotateBatch, len(stale))]
		err := db.Update(ctx, func(tx store.Tx) error {
			for _, r := range batch {
				row, err := tx.Get(ctx, customerID, r.res, r.id)
				if errors.Is(err, store.ErrNotFound) {
					continue // deleted meanwhile
				}
				if err != nil {
					return err
				}
				if v, _ := seal.Version(row.Sealed); v == keys.Current() {
					continue // re-sealed meanwhile by a write
				}
				plain, err := keys.Open(r.res.Name, r.id, row.Sealed)
				if err != nil {
					return fmt.Errorf("opening a %s row: %w", r.res.Name, err)
				}
				row.Sealed = keys.Seal(r.res.Name, r.id, plain)
				if err := tx.Update(ctx, customerID, r.res, row); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			return err
		}
		progress.advance(len(batch))
	}
	progress.done()
	return nil
}

// staleRows lists the customer's rows sealed under a version below current.
func staleRows(ctx context.Context, db store.Store, catalog *schema.Catalog, customerID string, current int) ([]staleRow, error) {
	var out []staleRow
	err := db.View(ctx, func(tx store.Tx) error {
		for _, res := range catalog.Resources {
			if len(res.PersonalFields()) == 0 {
				continue
			}
			err := tx.List(ctx, customerID, res, store.ListSpec{}, func(row store.Row) error {
				if v, ok := seal.Version(row.Sealed); !ok || v < current {
					out = append(out, staleRow{res: res, id: row.ID})
				}
				return nil
			})
			if err != nil {
				return err
			}
		}
		return nil
	})
	return out, err
}

// progress reports rotate-data's progress: a bar redrawn in place on a
// terminal, plain lines otherwise (logs, pipes).
type progress struct {
	w         io.Writer
	terminal  bool
	customer  string
	version   int
	total     int
	completed int
}

func newProgress(w io.Writer) *progress {
	p := &progress{w: w}
	if f, ok := w.(*os.File); ok {
		if info, err := f.Stat(); err == nil && info.Mode()&os.ModeCharDevice != 0 {
			p.terminal = true
		}
	}
	return p
}

func (p *progress) start(customer string, version, total int) {
	p.customer, p.version, p.total, p.completed = customer, version, total, 0
	fmt.Fprintf(p.w, "rotate-data: customer %s: re-sealing %s under data key version %d\n",
		customer, plural(int64(total), "value", "values"), version)
}

func (p *progress) advance(n int) {
	p.completed += n
	if p.terminal {
		const width = 40
		filled := width
		if p.total > 0 {
			filled = width * p.completed / p.total
		}
		fmt.Fprintf(p.w, "\r[%s%s] %d/%d", strings.Repeat("#", filled), strings.Repeat(" ", width-filled), p.completed, p.total)
		return
	}
	fmt.Fprintf(p.w, "rotate-data: customer %s: %d/%d\n", p.customer, p.completed, p.total)
}

func (p *progress) done() {
	if p.terminal && p.total > 0 {
		fmt.Fprintln(p.w)
	}
	fmt.Fprintf(p.w, "rotate-data: customer %s: done\n", p.customer)
}
