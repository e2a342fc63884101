package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
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
func auditVerify(ctx context.Context, args []string, io IO) error {
	a := newAdminFlags("audit verify", io)
	customer := a.fs.String("customer", "", "verify this customer's chain only")
	if err := a.parse(args); err != nil {
		return err
	}
	var customers []string
	if *customer != "" {
		id, err := parseID("customer", *customer)
		if err != nil {
			return err
		}
		customers = []string{id}
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
	}
	type result struct {
		CustomerID string `json:"customer_id"`
		Entries    int64  `json:"entries"`
		Intact     bool   `json:"intact"`
		BrokenAt   *int64 `json:"broken_at"`
		Reason     string `json:"reason,omitempty"`
	}
	var results []result
	broken := false
	for _, c := range customers {
		r, err := verifyChain(ctx, db, c)
		var be *audit.BrokenError
		switch {
		case errors.As(err, &be):
			broken = true
			pos := be.Position
			results = append(results, result{CustomerID: c, Entries: r, BrokenAt: &pos, Reason: be.Reason})
		case err != nil:
			return err
		default:
			results = append(results, result{CustomerID: c, Entries: r, Intact: true})
		}
	}
	if a.json {
		if err := printJSON(io, results); err != nil {
			return err
		}
	} else {
		for _, r := range results {
			if r.Intact {
				fmt.Fprintf(io.Stdout, "customer %s: %d entries, intact\n", r.CustomerID, r.Entries)
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

// verifyChain walks one customer's chain and returns how many entries it read.
func verifyChain(ctx context.Context, db store.Store, customerID string) (int64, error) {
	var v audit.Verifier
	var n int64
	err := db.AuditEntries(ctx, customerID, func(e audit.Entry) error {
		n++
		return v.Next(e)
	})
	if err != nil {
		return n, err
	}
	head, err := db.AuditHead(ctx, customerID)
	if err != nil {
		return n, err
	}
	return n, v.End(customerID, head)
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
func auditList(ctx context.Context, args []string, io IO) error {
	a := newAdminFlags("audit list", io)
	customer := a.fs.String("customer", "", "customer id (required)")
	object := a.fs.String("object", "", "only entries about this object id")
	sinceFlag := a.fs.String("since", "", "only entries at or after this time (RFC 3339)")
	if err := a.parse(args); err != nil {
		return err
	}
	customerID, err := parseID("customer", *customer)
	if err != nil {
		return err
	}
	var objectID string
	if *object != "" {
		if objectID, err = parseID("object", *object); err != nil {
			return err
		}
	}
	var since time.Time
	if *sinceFlag != "" {
		if since, err = time.Parse(time.RFC3339Nano, *sinceFlag); err != nil {
			return usagef("--since must be an RFC 3339 time, e.g. 2026-11-27T12:00:00Z")
		}
	}
	db, err := a.open(ctx)
	if err != nil {
		return err
	}
	defer db.Close()
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
		_, err := fmt.Fprintf(io.Stdout, "%d  %s  %-14s %-17s %d object(s)  fields %s  client %s  request %s\n",
			e.Position, formatTime(e.Time), e.Action, e.Resource, len(e.ObjectIDs), strings.Join(e.Fields, ","), e.ClientID, e.RequestID)
		return err
	})
}
