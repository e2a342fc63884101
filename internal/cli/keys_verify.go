package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"slices"

	"accounts/internal/config"
	"accounts/internal/keystore"
	"accounts/internal/masterkey"
	"accounts/internal/seal"
)

// keyFailure names a wrapped key that does not open.
type keyFailure struct {
	Purpose string `json:"purpose"`
	Version int    `json:"version"`
}

// customerKeysReport is keys verify's finding for one customer.
type customerKeysReport struct {
	CustomerID string `json:"customer_id"`
	// InDatabase is false for keys whose customer is not in the database
	// (a customer create interrupted between the two): not a failure.
	InDatabase bool `json:"in_database"`
	OK         bool `json:"ok"`
	// Keys is how many wrapped keys the customer has.
	Keys int `json:"keys"`
	// Failed are the keys that open with no master key in hand.
	Failed []keyFailure `json:"failed"`
	// Problem says what is wrong when something is: keys that do not
	// open (listed in Failed), no keys at all, or no data or index key.
	Problem string `json:"problem,omitempty"`
}

// keysVerifyReport is keys verify's whole finding.
type keysVerifyReport struct {
	// MasterKeyCheck is "ok" when a master key in hand opens the key
	// store's check value, "fails" when none does, "absent" for a key
	// store written before check values (serve writes one).
	MasterKeyCheck string               `json:"master_key_check"`
	Customers      []customerKeysReport `json:"customers"`
}

// errKeysFail makes keys verify exit 1 after its report.
var errKeysFail = errors.New("keys verify: keys that do not open (see the report above)")

// keysVerify opens every customer's keys (or one's) with the master keys in
// hand and reports, per customer, which keys do not open. It changes
// nothing, and unlike serve it runs with a key that does not fit the key
// store: it is how to find out what does not open, and for whom. Exit 1
// when any key fails, or the check value does not open.
func keysVerify(fs *flag.FlagSet, io IO) runFunc {
	a := newAdminFlags(fs, io)
	a.bindKeys(fs, withMasterKey)
	only := fs.String("customer", "", "verify this customer's keys only (customer `ID`)")
	return func(ctx context.Context, _ []string) error {
		id, err := optionalID(fs, "customer", *only)
		if err != nil {
			return err
		}
		return verifyKeys(ctx, a, id)
	}
}

func verifyKeys(ctx context.Context, a *adminFlags, onlyID string) error {
	io := a.io
	if err := a.validate(); err != nil {
		return err
	}
	opts := masterkey.Options{Key: a.cfg.MasterKey, File: keyFileInUse(a.cfg), Previous: a.cfg.PreviousMasterKey}
	if opts.Key == "" {
		if _, err := os.Stat(opts.File); errors.Is(err, os.ErrNotExist) {
			return refuse(fmt.Errorf("%w: the key file %s is missing: put it back, or give the key in %s",
				masterkey.ErrKeyFileMissing, opts.File, config.EnvMasterKey))
		}
	}
	src, err := masterkey.Load(opts)
	if err != nil {
		return refuse(err)
	}
	location, _ := a.cfg.KeyStoreLocation()
	ksLoc, _ := config.ParseLocation("--key-store", location)
	ks, ok, err := keystore.Lookup(ctx, location)
	if err != nil {
		return keyStoreFailed(ksLoc.String(), err)
	}
	if !ok {
		return usagef("there is no key store at %s", ksLoc)
	}
	defer ks.Close()
	db, err := a.open(ctx)
	if err != nil {
		return err
	}
	defer db.Close()

	report := keysVerifyReport{MasterKeyCheck: "absent", Customers: []customerKeysReport{}}
	failed := false
	if check, err := ks.Check(ctx); err != nil {
		return err
	} else if check != nil {
		report.MasterKeyCheck = "fails"
		for _, k := range src.MasterKeys() {
			if k.OpensCheck(check) {
				report.MasterKeyCheck = "ok"
			}
		}
		failed = report.MasterKeyCheck == "fails"
	}
	customers, err := db.Customers(ctx)
	if err != nil {
		return err
	}
	inDB := map[string]bool{}
	var ids []string
	for _, c := range customers {
		inDB[c.ID] = true
		ids = append(ids, c.ID)
	}
	all, err := ks.All(ctx)
	if err != nil {
		return err
	}
	byCustomer := map[string][]seal.WrappedKey{}
	for _, w := range all {
		if _, seen := byCustomer[w.CustomerID]; !seen && !inDB[w.CustomerID] {
			ids = append(ids, w.CustomerID)
		}
		byCustomer[w.CustomerID] = append(byCustomer[w.CustomerID], w)
	}
	if onlyID != "" {
		if !slices.Contains(ids, onlyID) {
			return errUnknownCustomer(onlyID)
		}
		ids = []string{onlyID}
	}
	for _, id := range ids {
		r := verifyCustomerKeys(id, byCustomer[id], src.MasterKeys())
		r.InDatabase = inDB[id]
		failed = failed || !r.OK
		report.Customers = append(report.Customers, r)
	}
	if a.json {
		if err := printJSON(io, report); err != nil {
			return err
		}
	} else {
		fmt.Fprintf(io.Stdout, "master key check value: %s\n", report.MasterKeyCheck)
		for _, r := range report.Customers {
			fmt.Fprintln(io.Stdout, r.line())
		}
	}
	if failed {
		return errKeysFail
	}
	return nil
}

// verifyCustomerKeys opens each of a customer's wrapped keys.
func verifyCustomerKeys(id string, wrapped []seal.WrappedKey, masters []*seal.MasterKey) customerKeysReport {
	r := customerKeysReport{CustomerID: id, Keys: len(wrapped), Failed: []keyFailure{}}
	data, index := false, false
	for _, w := range wrapped {
		if masterkey.OpenedBy(masters, w) == nil {
			r.Failed = append(r.Failed, keyFailure{Purpose: w.Purpose, Version: w.Version})
			continue
		}
		data = data || w.Purpose == seal.PurposeData
		index = index || w.Purpose == seal.PurposeIndex
	}
	switch {
	case len(wrapped) == 0:
		r.Problem = "no keys in the key store"
	case len(r.Failed) > 0:
		r.Problem = fmt.Sprintf("%d of %d keys do not open with the master keys in hand", len(r.Failed), len(wrapped))
	case !data:
		r.Problem = "no data key"
	case !index:
		r.Problem = "no index key"
	}
	r.OK = len(r.Failed) == 0 && r.Problem == ""
	return r
}

// line is the report of one customer as a line of text.
func (r customerKeysReport) line() string {
	where := ""
	if !r.InDatabase {
		where = " (keys only: not in the database)"
	}
	switch {
	case r.OK:
		return fmt.Sprintf("customer %s%s: ok, %d keys", r.CustomerID, where, r.Keys)
	case r.Problem != "" && len(r.Failed) == 0:
		return fmt.Sprintf("customer %s%s: FAILS: %s", r.CustomerID, where, r.Problem)
	}
	s := fmt.Sprintf("customer %s%s: FAILS: %d of %d keys do not open:", r.CustomerID, where, len(r.Failed), r.Keys)
	for _, f := range r.Failed {
		s += fmt.Sprintf(" %s v%d", f.Purpose, f.Version)
	}
	return s
}
