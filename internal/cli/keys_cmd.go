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
	"time"

	"accounts/internal/config"
	"accounts/internal/keystore"
	"accounts/internal/masterkey"
	"accounts/internal/records"
	"accounts/internal/schema"
	"accounts/internal/seal"
	"accounts/internal/store"
)

// keysRotateMaster rewraps every customer key, and the key store's check
// value, under a new master key, in one transaction of the key store.
//
// With a key file (the embedded setup's generated one, or --key-file) it
// is the whole rotation, with servers up: it first writes the file with
// the new key and, second, the key the store is wrapped under; rewraps;
// then leaves the new key alone in the file. Servers read the file again
// when it changes (and when a key does not open), so whichever moment
// they read it, a key in it opens the store. Interrupted, the file still
// holds both, and running it again finishes.
//
// With keys in the environment, servers can't be told: they must run with
// the new key as ACCOUNTS_MASTER_KEY and the old as
// ACCOUNTS_PREVIOUS_MASTER_KEY before it runs (see the README); a server
// left with the old key alone turns unready.
func keysRotateMaster(fs *flag.FlagSet, io IO) runFunc {
	a := newAdminFlags(fs, io)
	a.bindKeys(fs, withMasterKey)
	newFile := fs.String("new-key-file", "", "`FILE` holding the new base64 master key (or env "+config.EnvNewMasterKey+")")
	return func(ctx context.Context, _ []string) error { return rotateMaster(ctx, a, *newFile) }
}

func rotateMaster(ctx context.Context, a *adminFlags, newFile string) error {
	io := a.io
	if err := a.validate(); err != nil {
		return err
	}
	newFromEnv, err := config.Value(io.Env, config.EnvNewMasterKey)
	if err != nil {
		return usagef("%v; nothing was changed", err)
	}
	r, err := prepareRotation(ctx, a.cfg, newFromEnv, newFile)
	if err != nil {
		return err
	}
	defer r.ks.Close()
	if err := r.announce(); err != nil {
		return err
	}
	if err := r.ks.Rotate(ctx, r.rewrap); err != nil {
		return r.undo(err)
	}
	if r.file != "" {
		if err := masterkey.WriteFile(r.file, r.newEncoded); err != nil {
			return fmt.Errorf("the keys are rewrapped, but leaving the new key alone in %s failed (it holds the new key, "+
				"then the old one: both work; run rotate-master again): %w", r.file, err)
		}
	}
	if a.json {
		var keyFile *string
		if r.file != "" {
			keyFile = &r.file
		}
		return printJSON(io, map[string]any{"rewrapped": r.rewrapped, "already": r.already, "key_file": keyFile})
	}
	were := "were"
	if r.already == 1 {
		were = "was"
	}
	done := fmt.Sprintf("rewrapped %s (%d already %s)", plural(int64(r.rewrapped), "key", "keys"), r.already, were)
	if r.file != "" {
		fmt.Fprintf(io.Stdout, "%s; %s now holds the new master key%s\n", done, r.file, deleteNote(newFile))
		return nil
	}
	fmt.Fprintf(io.Stdout, "%s; restart the servers one by one with %s set to the new key and %s unset\n",
		done, config.EnvMasterKey, config.EnvPreviousMasterKey)
	return nil
}

// masterRotation is one run of keys rotate-master.
type masterRotation struct {
	ks         *keystore.Store
	where      string
	src        *masterkey.Source // the keys in hand
	newMaster  *seal.MasterKey
	newEncoded string
	// current is the key the key store is under (its check value's), nil
	// for a key store without check value.
	current *seal.MasterKey
	// file is the key file in use ("" with keys in the environment), and
	// before its lines as they were.
	file   string
	before []string
	// rewrapped and already count the keys rewrapped now, and found
	// under the new key already (an earlier, interrupted run).
	rewrapped, already int
}

// prepareRotation reads the new key (strong, and private when in a file)
// and the keys in hand (the current one may be weak: rotating is how a weak
// key is retired), and opens the key store, which one of them must open.
func prepareRotation(ctx context.Context, cfg config.Config, newFromEnv, newFile string) (*masterRotation, error) {
	r := &masterRotation{newEncoded: newFromEnv}
	if newFile != "" && newFromEnv != "" {
		return nil, usagef("the new master key is given twice, in --new-key-file and %s: give one; nothing was changed", config.EnvNewMasterKey)
	}
	if newFile != "" {
		if err := config.CheckPrivate("--new-key-file", newFile); err != nil {
			return nil, refuse(err)
		}
		raw, err := os.ReadFile(newFile)
		if err != nil {
			return nil, usagef("--new-key-file: %v", err)
		}
		r.newEncoded = string(raw)
	}
	if r.newEncoded == "" {
		return nil, usagef("the new master key is required: --new-key-file or %s", config.EnvNewMasterKey)
	}
	var err error
	if r.newMaster, err = seal.ParseMasterKey(r.newEncoded); err != nil {
		return nil, refuse(fmt.Errorf("the new master key: %w", err))
	}
	if err := cfg.ValidateKeys(); err != nil {
		return nil, refuse(err)
	}
	opts := masterkey.Options{Key: cfg.MasterKey, File: keyFileInUse(cfg), Previous: cfg.PreviousMasterKey, Retiring: true}
	if opts.Key == "" {
		if _, err := os.Stat(opts.File); errors.Is(err, os.ErrNotExist) {
			return nil, refuse(fmt.Errorf("%w: the key file %s is missing: rotate-master needs the current key; put the key file back, "+
				"or give the key in %s", masterkey.ErrKeyFileMissing, opts.File, config.EnvMasterKey))
		}
	}
	if r.src, err = masterkey.Load(opts); err != nil {
		return nil, refuse(err)
	}
	if r.file = r.src.File(); r.file != "" {
		if r.before, err = masterkey.FileLines(r.file); err != nil {
			return nil, refuse(err)
		}
	}
	// The new key must be new: rotating to the key in use changes nothing,
	// and the closing line, which says to delete the new key's file, would
	// name a copy of the only key (or the key file itself).
	if newFile != "" && r.file != "" && sameFile(newFile, r.file) {
		return nil, usagef("--new-key-file %s is the key file in use: put the new key in a file of its own; nothing was changed", newFile)
	}
	if inHand := r.src.MasterKeys(); len(inHand) == 1 && masterkey.SameKey(inHand[0], r.newMaster) {
		return nil, usagef("the new master key is the one in use (from %s): make a new one; nothing was changed", r.src.Origin())
	}
	location, _ := cfg.KeyStoreLocation()
	ksLoc, _ := config.ParseLocation("--key-store", location)
	r.where = ksLoc.String()
	if peek, ok, err := keystore.Lookup(ctx, location); err != nil {
		return nil, keyStoreFailed(r.where, err)
	} else if !ok {
		return nil, usagef("there is no key store at %s: nothing to rotate", r.where)
	} else {
		peek.Close()
	}
	if r.ks, err = keystore.Open(ctx, location); err != nil {
		return nil, err
	}
	check, err := r.ks.Check(ctx)
	if err != nil {
		r.ks.Close()
		return nil, err
	}
	if check != nil {
		r.current = openingCheck(append(slices.Clone(r.src.MasterKeys()), r.newMaster), check)
		if r.current == nil {
			r.ks.Close()
			return nil, refuse(fmt.Errorf("%w: neither the new key nor the master key from %s opens the key store %s: "+
				"give the key it is wrapped under; nothing was changed", masterkey.ErrWrongKey, r.src.Origin(), r.where))
		}
	}
	return r, nil
}

// openingCheck returns the first of keys that opens check, or nil.
func openingCheck(keys []*seal.MasterKey, check []byte) *seal.MasterKey {
	for _, k := range keys {
		if k.OpensCheck(check) {
			return k
		}
	}
	return nil
}

// announce writes the key file, if one is in use, with the new key first
// and the key the store is under second, before anything is rewrapped: a
// server that reads it at any moment from now on opens the key store.
func (r *masterRotation) announce() error {
	if r.file == "" || (r.current != nil && masterkey.SameKey(r.current, r.newMaster)) {
		return nil
	}
	old := r.before[0]
	for _, line := range r.before {
		if k, err := seal.ParseRetiringMasterKey(line); err == nil && r.current != nil && masterkey.SameKey(k, r.current) {
			old = line
		}
	}
	if err := masterkey.WriteFile(r.file, r.newEncoded, old); err != nil {
		return fmt.Errorf("writing the new key to %s (nothing was rewrapped): %w", r.file, err)
	}
	return nil
}

// rewrap is the rotation, run by keystore.Rotate inside its transaction:
// every key under a key in hand is rewrapped under the new one, and the
// check value made anew. A key that opens with none of them stops it, with
// nothing changed.
func (r *masterRotation) rewrap(_ []byte, all []seal.WrappedKey) ([]byte, []seal.WrappedKey, error) {
	var out []seal.WrappedKey
	var lost []string
	r.already = 0
	for _, w := range all {
		if r.newMaster.OpensKey(w) {
			r.already++
			continue
		}
		from := masterkey.OpenedBy(r.src.MasterKeys(), w)
		if from == nil {
			lost = append(lost, w.CustomerID)
			continue
		}
		nw, err := from.Rewrap(w, r.newMaster)
		if err != nil {
			return nil, nil, err
		}
		out = append(out, nw)
	}
	if len(lost) > 0 {
		return nil, nil, refuse(fmt.Errorf("%w: %d customer keys (customer %s among them) open with neither the new key nor "+
			"the master key from %s; nothing was changed: accounts keys verify lists them; give their master key as %s, "+
			"or crypto-shred those customers (accounts customer delete)",
			masterkey.ErrMixedKeys, len(lost), lost[0], r.src.Origin(), config.EnvPreviousMasterKey))
	}
	r.rewrapped = len(out)
	return r.newMaster.NewCheck(), out, nil
}

// undo puts the key file back as it was after a rotation that failed: the
// key store is as it was too.
func (r *masterRotation) undo(err error) error {
	if r.file == "" {
		return err
	}
	if werr := masterkey.WriteFile(r.file, r.before...); werr != nil {
		return errors.Join(err, fmt.Errorf("restoring %s (it holds the new key, then the old one: both work): %w", r.file, werr))
	}
	return err
}

// sameFile reports whether a and b name one file (a link included), or,
// when either can't be read, the same path.
func sameFile(a, b string) bool {
	ia, errA := os.Stat(a)
	ib, errB := os.Stat(b)
	if errA == nil && errB == nil {
		return os.SameFile(ia, ib)
	}
	absA, errA := filepath.Abs(a)
	absB, errB := filepath.Abs(b)
	return errA == nil && errB == nil && absA == absB
}

// deleteNote ends rotate-master's line: the new key's own file is a copy
// of the key to remove.
func deleteNote(newFile string) string {
	if newFile == "" {
		return ""
	}
	return "; delete " + newFile
}

// keyFileInUse is the file the current master key is read from, if any.
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

// rotateBatch is how many rows one transaction of rotate-data re-seals.
const rotateBatch = 200

// keysRotateData gives each customer (or one) a new data key version and
// index key version, and re-seals and re-indexes every value under them.
// It is resumable: a customer whose values are not all under its newest
// version is finished first, without another new version.
//
// The new index key is given --settle before the data key that puts it to
// use: rows are indexed under the index key of their seal version, and a
// lookup finds them only under an index key it holds, so every server must
// hold the new index key (each reads a customer's keys again within
// seal.KeyCacheTTL) before any row is indexed under it.
//
// With --json it prints JSON Lines: one object per customer as its
// rotation finishes, {"customer_id", "version", "values"} (the values
// re-sealed under that data key version); otherwise progress lines, or a
// bar on a terminal.
func keysRotateData(fs *flag.FlagSet, io IO) runFunc {
	a := newAdminFlags(fs, io)
	a.bindKeys(fs, withMasterKey)
	only := fs.String("customer", "", "rotate this customer only (customer `ID`)")
	settle := defaultSettle
	v, settleErr := config.Value(io.Env, config.EnvKeySettle)
	if settleErr == nil && v != "" {
		if settle, settleErr = config.ParseDuration(v); settleErr != nil {
			settleErr = fmt.Errorf("%s: %v", config.EnvKeySettle, settleErr)
		}
	}
	fs.Var(durationFlag{&settle}, "settle", fmt.Sprintf("time between adding the new index keys and the data keys that put them to use, for every server to load them (env %s; 0 only with no server running)", config.EnvKeySettle))
	return func(ctx context.Context, _ []string) error {
		if settleErr != nil {
			return usagef("%v", settleErr)
		}
		source := config.EnvKeySettle
		if flagGiven(fs, "settle") {
			source = "--settle"
		}
		if settle != 0 && (settle < seal.KeyCacheTTL || settle > maxSettle) {
			// Shorter than a server keeps a customer's keys, a server
			// may meet values sealed under keys it has not loaded; far
			// longer is a typo of units, a wait of days.
			return usagef("%s must be 0 (only with no server running) or from %v to %v", source, seal.KeyCacheTTL, maxSettle)
		}
		id, err := optionalID(fs, "customer", *only)
		if err != nil {
			return err
		}
		return rotateData(ctx, a, id, settle)
	}
}

// durationFlag is a duration flag written one way, as serve's limits are
// (config.ParseDuration): flag.Duration would take +1m, 1m1m or 01m.
type durationFlag struct{ d *time.Duration }

func (f durationFlag) String() string {
	if f.d == nil {
		return "0s"
	}
	return f.d.String()
}

func (f durationFlag) Set(s string) error {
	d, err := config.ParseDuration(s)
	if err != nil {
		return err
	}
	*f.d = d
	return nil
}

// defaultSettle is rotate-data's wait for every server to load new index
// keys: the time a server keeps a customer's keys, and a margin.
const defaultSettle = seal.KeyCacheTTL + 10*time.Second

// maxSettle bounds --settle: the servers need about a minute.
const maxSettle = time.Hour

func rotateData(ctx context.Context, a *adminFlags, only string, settle time.Duration) error {
	if err := a.validate(); err != nil {
		return err
	}
	var customers []string
	if only != "" {
		customers = []string{only}
	}
	// The keys first: nothing is migrated or re-sealed under a key that
	// does not open the key store.
	keys, err := openKeys(ctx, a.cfg, newLogger(a.io))
	if err != nil {
		return err
	}
	defer keys.Close()
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
	if customers == nil {
		all, err := keys.store.All(ctx)
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
	if err := startRotations(ctx, db, catalog, keys, customers, settle, a.io.Stderr); err != nil {
		return err
	}
	for _, c := range customers {
		if err := rotateCustomer(ctx, db, catalog, keys, c, progress); err != nil {
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

// startRotations gives the customers whose last rotation finished (every
// value under their newest data key) a new index key version, waits
// settle, then gives them the data key version of the same number, and
// waits settle again before anything is re-sealed: until a server reads
// the customer's keys again it seals what it writes under the data key it
// holds, and a row written so after the re-sealing passed would be left
// under the old key by a rotation that said it was done. A customer with
// values left under an older version keeps its keys: its rotation is
// finished first, after the same second wait (the run that gave its data
// key may have stopped a moment later).
func startRotations(ctx context.Context, db store.Store, catalog *schema.Catalog, keys *keys, customers []string, settle time.Duration, log io.Writer) error {
	ring := seal.NewKeyringFrom(keys.masters, keys.store)
	next := map[string]int{}
	unfinished := 0
	for _, c := range customers {
		ck, err := ring.Customer(ctx, c)
		if err != nil {
			return fmt.Errorf("customer %s: %w", c, err)
		}
		stale, err := staleRows(ctx, db, catalog, c, ck.Current())
		if err != nil {
			return fmt.Errorf("customer %s: %w", c, err)
		}
		if len(stale) > 0 {
			unfinished++
			continue
		}
		v := ck.Current() + 1
		if !ck.HasIndexKey(v) { // else made by a run that stopped before its data key
			if err := keys.put(ctx, []seal.WrappedKey{keys.master.NewIndexKey(c, v)}); err != nil {
				return fmt.Errorf("customer %s: %w", c, err)
			}
		}
		next[c] = v
	}
	if len(next) > 0 {
		if err := settleFor(ctx, settle, log, fmt.Sprintf("new index keys for %s; waiting %s for every server to load them",
			plural(int64(len(next)), "customer", "customers"), settle)); err != nil {
			return err
		}
		for _, c := range customers {
			if v, ok := next[c]; ok {
				if err := keys.put(ctx, []seal.WrappedKey{keys.master.NewDataKey(c, v)}); err != nil {
					return fmt.Errorf("customer %s: %w", c, err)
				}
			}
		}
	}
	if len(next)+unfinished == 0 {
		return nil
	}
	return settleFor(ctx, settle, log, fmt.Sprintf("the newest data keys of %s given; waiting %s for every server to seal under them before values are re-sealed",
		plural(int64(len(next)+unfinished), "customer", "customers"), settle))
}

// settleFor waits settle (none when it is 0: no server runs), having said
// why on log.
func settleFor(ctx context.Context, settle time.Duration, log io.Writer, why string) error {
	if settle == 0 {
		return nil
	}
	fmt.Fprintf(log, "rotate-data: %s\n", why)
	select {
	case <-time.After(settle):
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// rotateCustomer re-seals, and so re-indexes, the customer's values under
// its newest data key version.
func rotateCustomer(ctx context.Context, db store.Store, catalog *schema.Catalog, keys *keys, customerID string, progress *progress) error {
	ring := seal.NewKeyringFrom(keys.masters, keys.store)
	ck, err := ring.Customer(ctx, customerID)
	if err != nil {
		return err
	}
	stale, err := staleRows(ctx, db, catalog, customerID, ck.Current())
	if err != nil {
		return err
	}
	progress.start(customerID, ck.Current(), len(stale))
	for start := 0; start < len(stale); start += rotateBatch {
		batch := stale[start:min(start+rotateBatch, len(stale))]
		err := db.Update(ctx, func(tx store.Tx) error {
			for _, r := range batch {
				row, err := tx.Get(ctx, customerID, r.res, r.id, store.ForUpdate)
				if errors.Is(err, store.ErrNotFound) {
					continue // deleted meanwhile
				}
				if err != nil {
					return err
				}
				if v, _ := seal.Version(row.Sealed); v == ck.Current() {
					continue // re-sealed meanwhile by a write
				}
				row, err = records.Reseal(ck, r.res, row)
				if err != nil {
					return err
				}
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
	return &progress{w: w, terminal: isTerminal(w)}
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
