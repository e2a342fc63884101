package storetest

import (
	"context"
	"testing"

	"accounts/internal/schema"
	"accounts/internal/store"
)

// OldTokens makes a database as a process of the previous token format
// leaves it (migration 4, format 2): one tenant of one customer, holding
// the tokens 1 and 2. It returns their ids; the opener given beside it
// opens that database.
type OldTokens func(t *testing.T) (customerID, tenantID string)

// TokenFormatUpgrade: the migration to the current token format
// (searchindex.Format; migration 5, format 3) keeps a row and drops its
// tokens of the earlier format, which no lookup of this version
// could use, so that the customer counts as unindexed (and is read without
// the tokens) until the row is written again; written again, it is found
// by its new tokens only.
func TokenFormatUpgrade(t *testing.T, old OldTokens, open Opener) {
	customerID, tenantID := old(t)
	catalog := schema.New()
	db := open(t, catalog)
	tenant := catalog.Resource(schema.Tenant)
	ctx := context.Background()
	f := &fixture{db: db, catalog: catalog, ctx: ctx, tenant: tenant}

	row, err := f.get(t, customerID, tenant, tenantID)
	if err != nil {
		t.Fatalf("the tenant written before the migration: %v", err)
	}
	unindexed(t, f, customerID, tenant, 1)
	find := func(tok int64) []string {
		return f.list(t, customerID, tenant, store.ListSpec{Match: []store.TokenQuery{{{tok}}}})
	}
	sameIDs(t, "an earlier format's token", find(1), nil)

	row.Search = []int64{5}
	if err := f.update(func(tx store.Tx) error { return tx.Update(ctx, customerID, tenant, row) }); err != nil {
		t.Fatalf("writing the tenant again: %v", err)
	}
	unindexed(t, f, customerID, tenant, 0)
	sameIDs(t, "the new token", find(5), []string{tenantID})
	sameIDs(t, "an earlier format's token, once written again", find(2), nil)
}
