package cli

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"maps"
	"os"
	"slices"
	"strings"
	"time"

	"accounts/internal/audit"
	"accounts/internal/store"
)

// errChainBroken makes `audit verify` exit 1 after it has said where.
var errChainBroken = errors.New("audit chain broken")

// ErrChainBroken reports whether err is audit verify's finding of a broken
// chain (exit 1, with the position already printed).
func ErrChainBroken(err error) bool { return errors.Is(err, errChainBroken) }

// auditVerify walks every chain (or one customer's) and reports the first
// broken position of each broken chain.
func auditVerify(fs *flag.FlagSet, io IO) runFunc {
	a := newAdminFlags(fs, io)
	customer := fs.String("customer", "", "verify this customer's chain only (customer `ID`)")
	anchorFile := fs.String("anchor", "", "`FILE` of an earlier audit verify --json, kept apart from the database: "+
		"each chain in it must still reach the head it had then")
	return func(ctx context.Context, _ []string) error {
		if err := a.validate(); err != nil {
			return err
		}
		var customers []string
		id, err := optionalID(fs, "customer", *customer)
		if err != nil {
			return err
		}
		if id != "" {
			customers = []string{id}
		}
		anchors, err := readAnchors(*anchorFile)
		if err != nil {
			return err
		}
		db, err := a.open(ctx)
		if err != nil {
			return err
		}
		defer db.Close()
		if customers == nil {
			if customers, err = db.AuditCustomers(ctx); err != nil {
				return err
			}
			// A chain erased whole, head and all, is no longer listed:
			// its anchor still names it.
			for _, c := range slices.Sorted(maps.Keys(anchors)) {
				if !slices.Contains(customers, c) {
					customers = append(customers, c)
				}
			}
		} else if _, anchored := anchors[customers[0]]; !anchored {
			if err := requireAuditCustomer(ctx, db, customers[0]); err != nil {
				return err
			}
		}
		results := []chainResult{}
		broken := false
		for _, c := range customers {
			r, head, err := verifyChain(ctx, db, c, anchors[c])
			var be *audit.BrokenError
			switch {
			case errors.As(err, &be):
				broken = true
				pos := be.Position
				results = append(results, chainResult{CustomerID: c, Entries: r, BrokenAt: &pos, Reason: be.Reason})
			case err != nil:
				return err
			default:
				results = append(results, chainResult{CustomerID: c, Entries: r, Intact: true, Head: head})
			}
		}
		if a.json {
			if err := printJSON(io, results); err != nil {
				return err
			}
		} else {
			if len(results) == 0 {
				fmt.Fprintln(io.Stdout, "no audit trail yet: nothing to verify")
			}
			for _, r := range results {
				if r.Intact {
					fmt.Fprintf(io.Stdout, "customer %s: %s, intact\n", r.CustomerID, plural(r.Entries, "entry", "entries"))
				} else {
					fmt.Fprintf(io.Stdout, "customer %s: broken at position %d (%s)\n", r.CustomerID, *r.BrokenAt, r.Reason)
				}
			}
		}
		if broken {
			return errChainBroken
		}
		return nil
	}
}

// requireAuditCustomer answers a usage error for a customer that has
// neither a row nor an audit trail. A deleted customer's trail stays, and
// stays readable; a trail whose head record was removed still has entries
// (verify then finds it broken).
func requireAuditCustomer(ctx context.Context, db store.Store, customerID string) error {
	if _, err := db.Customer(ctx, customerID); err == nil || !errors.Is(err, store.ErrNotFound) {
		return err
	}
	head, err := db.AuditHead(ctx, customerID)
	if err != nil {
		return err
	}
	if head.Position > 0 {
		return nil
	}
	errFound := errors.New("found")
	err = db.AuditEntries(ctx, customerID, func(audit.Entry) error { return errFound })
	switch {
	case errors.Is(err, errFound):
		return nil
	case err != nil:
		return err
	}
	return errUnknownCustomer(customerID)
}

// chainResult is one chain's verdict, as audit verify --json prints it
// and --anchor reads it back.
type chainResult struct {
	CustomerID string `json:"customer_id"`
	Entries    int64  `json:"entries"`
	Intact     bool   `json:"intact"`
	BrokenAt   *int64 `json:"broken_at"`
	Reason     string `json:"reason,omitempty"`
	// Head is the hash of the last entry of an intact chain, in hex.
	Head string `json:"head,omitempty"`
}

// readAnchors reads the intact chains of an earlier audit verify --json
// (none without a file), by customer.
func readAnchors(file string) (map[string]*audit.Chain, error) {
	anchors := map[string]*audit.Chain{}
	if file == "" {
		return anchors, nil
	}
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, usagef("--anchor: %v", err)
	}
	// Exactly verify's output: an array (of no chain, for a deployment
	// that had none), its keys and nothing after it. A file that only
	// looks like it would check less than it seems to.
	var results []chainResult
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&results); err != nil || results == nil || dec.More() {
		return nil, usagef("--anchor %s is not the output of audit verify --json", file)
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, usagef("--anchor %s is not the output of audit verify --json", file)
	}
	for _, r := range results {
		hash, err := hex.DecodeString(r.Head)
		customerID, idErr := parseID("anchor's customer_id", r.CustomerID)
		if !r.Intact || r.Entries < 1 || err != nil || len(hash) != audit.HashSize || idErr != nil {
			return nil, usagef("--anchor %s: a chain that is not intact, or without its head (take anchors from a verify that passed)", file)
		}
		if _, twice := anchors[customerID]; twice {
			return nil, usagef("--anchor %s names a customer's chain twice", file)
		}
		anchors[customerID] = &audit.Chain{Position: r.Entries, Hash: hash}
	}
	return anchors, nil
}

// verifyChain walks one customer's chain, held to its anchor when there is
// one, and returns how many entries it read and the last one's hash (hex).
func verifyChain(ctx context.Context, db store.Store, customerID string, anchor *audit.Chain) (int64, string, error) {
	v := audit.Verifier{Anchor: anchor}
	var n int64
	var last []byte
	err := db.AuditEntries(ctx, customerID, func(e audit.Entry) error {
		n++
		last = e.Hash
		return v.Next(e)
	})
	if err != nil {
		return n, "", err
	}
	head, err := db.AuditHead(ctx, customerID)
	if err != nil {
		return n, "", err
	}
	return n, hex.EncodeToString(last), v.End(customerID, head)
}

// auditEntryJSON is an entry as audit list prints it.
type auditEntryJSON struct {
	Position   int64    `json:"position"`
	Time       string   `json:"time"`
	CustomerID string   `json:"customer_id"`
	ClientID   string   `json:"client_id"`
	RequestID  string   `json:"request_id"`
	Action     string   `json:"action"`
	Resource   string   `json:"resource"`
	ObjectIDs  []string `json:"object_ids"`
	Fields     []string `json:"fields"`
	Hash       string   `json:"hash"`
}

// auditList prints a customer's entries, as JSON Lines with --json.
func auditList(fs *flag.FlagSet, io IO) runFunc {
	a := newAdminFlags(fs, io)
	customer := fs.String("customer", "", "customer `ID` (required)")
	object := fs.String("object", "", "only entries about this object `ID`")
	sinceFlag := fs.String("since", "", "only entries at or after this `TIME`: YYYY-MM-DD (midnight UTC) or RFC 3339")
	return func(ctx context.Context, _ []string) error {
		if err := a.validate(); err != nil {
			return err
		}
		customerID, err := parseID("customer", *customer)
		if err != nil {
			return err
		}
		objectID, err := optionalID(fs, "object", *object)
		if err != nil {
			return err
		}
		var since time.Time
		if *sinceFlag != "" || flagGiven(fs, "since") {
			if since, err = parseSince(*sinceFlag); err != nil {
				return err
			}
		}
		db, err := a.open(ctx)
		if err != nil {
			return err
		}
		defer db.Close()
		if err := requireAuditCustomer(ctx, db, customerID); err != nil {
			return err
		}
		enc := json.NewEncoder(io.Stdout)
		return db.AuditEntries(ctx, customerID, func(e audit.Entry) error {
			if (objectID != "" && !slices.Contains(e.ObjectIDs, objectID)) || e.Time.Before(since) {
				return nil
			}
			if a.json {
				return enc.Encode(auditEntryJSON{
					Position: e.Position, Time: formatTime(e.Time), CustomerID: e.CustomerID, ClientID: e.ClientID,
					RequestID: e.RequestID, Action: string(e.Action), Resource: e.Resource, ObjectIDs: e.ObjectIDs,
					Fields: e.Fields, Hash: fmt.Sprintf("%x", e.Hash),
				})
			}
			_, err := fmt.Fprintf(io.Stdout, "%d  %s  %-14s %-17s %s  fields %s  client %s  request %s\n",
				e.Position, formatTime(e.Time), e.Action, e.Resource, plural(int64(len(e.ObjectIDs)), "object", "objects"),
				strings.Join(e.Fields, ","), e.ClientID, e.RequestID)
			return err
		})
	}
}

// parseSince reads --since: a date (its midnight, UTC) or an RFC 3339 time
// with its zone. A time without a zone is refused rather than guessed.
func parseSince(v string) (time.Time, error) {
	if t, err := time.Parse(time.DateOnly, v); err == nil {
		return t, nil
	}
	if t, err := time.Parse(time.RFC3339Nano, v); err == nil {
		return t, nil
	}
	return time.Time{}, usagef("--since must be a date (2026-11-27) or an RFC 3339 time (2026-11-27T12:00:00Z)")
}
