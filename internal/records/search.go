package records

import (
	"context"
	"errors"

	"accounts/internal/query"
	"accounts/internal/schema"
	"accounts/internal/seal"
	"accounts/internal/searchindex"
	"accounts/internal/store"
)

// searchBits are the sizes the search tokens are truncated to
// (docs/encrypted-search.md): an exact token tells two equal values
// apart from almost all others, as a blind index does; prefix and gram
// tokens are shorter, so that many prefixes and substrings share each
// one and the database's copy tells less of them.
var searchBits = searchindex.Bits{Exact: 32, Prefix: 24, Gram: 16, LongGram: 16}

// defaultSearchCandidates is the most candidate rows a list reads through
// the search tokens without limits (limit.Config.SearchCandidates). Up to
// it, the candidates are decrypted, confirmed and ordered in memory (at
// most this many objects held); a query with more candidates is not
// selective, and is read in the database's order instead, where a page
// ends as soon as it is full.
const defaultSearchCandidates = 1000

// lookupKeys are the customer's token keys a lookup on search field f of
// res uses, one per index key held: rows are indexed under the index key
// of their seal version (see seal.CustomerKeys). Made for the fields a
// list looks up, not for every list.
func lookupKeys(keys *seal.CustomerKeys, res *schema.Resource, f *schema.Field) []*searchindex.Key {
	var out []*searchindex.Key
	for _, k := range keys.SearchKeys(res.Name, f.Name) {
		out = append(out, searchindex.NewKey(k, searchBits))
	}
	return out
}

// searchTokens are the tokens of an object's searchable values, for a
// search-indexed resource (else nil).
func searchTokens(keys *seal.CustomerKeys, res *schema.Resource, values schema.Values) []int64 {
	if !res.SearchIndexed() {
		return nil
	}
	tokens := []int64{}
	for i, f := range res.SearchFields() {
		v, ok := values[f.Name].(string)
		if !ok {
			continue
		}
		k := searchindex.NewKey(keys.SearchKey(res.Name, f.Name), searchBits)
		for _, t := range k.Value(v) {
			tokens = append(tokens, t.Encode(i))
		}
	}
	return tokens
}

// tokenOps maps the filters the tokens can narrow to their kind of
// lookup. Every one of them is confirmed after decryption.
var tokenOps = map[query.Op]searchindex.Op{
	query.Exact: searchindex.Equal, query.IExact: searchindex.Equal, query.In: searchindex.Equal,
	query.StartsWith: searchindex.StartsWith, query.IStartsWith: searchindex.StartsWith,
	query.Contains: searchindex.Contains, query.IContains: searchindex.Contains,
	query.EndsWith: searchindex.Contains, query.IEndsWith: searchindex.Contains,
}

// filterTokens returns the token query a filter of a search-indexed
// resource narrows by: a group per value (in has several) and index key.
// A negated filter, a field without tokens, or a value too short to narrow
// by (a contains of fewer than searchindex.GramRunes characters) narrows
// nothing.
func filterTokens(keys *seal.CustomerKeys, res *schema.Resource, f query.Filter) (store.TokenQuery, bool) {
	op, ok := tokenOps[f.Op]
	if !ok || f.Negate {
		return nil, false
	}
	i := searchFieldNumber(res, f.Field)
	if i < 0 {
		return nil, false
	}
	fieldKeys := lookupKeys(keys, res, f.Field)
	var q store.TokenQuery
	for _, v := range f.Values {
		s, ok := v.(string)
		if !ok {
			return nil, false
		}
		for _, k := range fieldKeys {
			toks, ok := k.Query(op, s)
			if !ok {
				return nil, false
			}
			q = append(q, encode(toks, i))
		}
	}
	return q, len(q) > 0
}

// searchTermTokens returns the token query of _search: a group per search
// field and index key, each of the term's grams, since _search is
// icontains over every search field.
func searchTermTokens(keys *seal.CustomerKeys, res *schema.Resource, term string) (store.TokenQuery, bool) {
	var q store.TokenQuery
	for i, f := range res.SearchFields() {
		for _, k := range lookupKeys(keys, res, f) {
			toks, ok := k.Query(searchindex.Contains, term)
			if !ok {
				return nil, false
			}
			q = append(q, encode(toks, i))
		}
	}
	return q, len(q) > 0
}

func encode(toks []searchindex.Token, field int) []int64 {
	out := make([]int64, len(toks))
	for j, t := range toks {
		out[j] = t.Encode(field)
	}
	return out
}

// searchFieldNumber is f's place among res's search fields, or -1.
func searchFieldNumber(res *schema.Resource, f *schema.Field) int {
	for i, s := range res.SearchFields() {
		if s == f {
			return i
		}
	}
	return -1
}

// indexed reports whether every row of the customer's res has search
// tokens, so that a lookup through them misses none. It asks every time
// (a partial index makes it one probe): a process of an earlier version,
// still running beside this one, writes rows without tokens.
func indexed(ctx context.Context, tx store.Tx, customerID string, res *schema.Resource) (bool, error) {
	n, err := tx.Unindexed(ctx, customerID, res)
	return n == 0, err
}

// listCandidates answers a list from the rows its search tokens select,
// when there are at most s.candidates of them: each is decrypted and
// confirmed (decode), and the matches are ordered in memory and paged. It
// reports done = false, having emitted nothing, when the customer has rows
// without tokens or the query has more candidates; the list is then read
// the other ways.
func (s *Service) listCandidates(ctx context.Context, tx store.Tx, customerID string, res *schema.Resource, q query.Query, pl listPlan,
	first, last int, decode func(store.Row) (Object, bool, error), emit func(Object) error) (count int, done bool, err error) {
	ok, err := indexed(ctx, tx, customerID, res)
	if err != nil || !ok {
		return 0, false, err
	}
	var rows []store.Row
	spec := store.ListSpec{Where: pl.where, Match: pl.match, Limit: s.candidates + 1}
	err = tx.List(ctx, customerID, res, spec, func(row store.Row) error {
		rows = append(rows, row)
		return nil
	})
	if err != nil || len(rows) > s.candidates {
		return 0, false, err
	}
	sorter := newMemorySort(s.limits, q, first, last, s.sortRows(pl))
	defer sorter.release()
	for i, row := range rows {
		obj, ok, err := decode(row)
		rows[i] = store.Row{}
		if err != nil {
			return 0, true, err
		}
		if ok {
			if err := sorter.add(obj); err != nil {
				return 0, true, err
			}
		}
	}
	return sorter.matches, true, sorter.emit(emit)
}

// firstRowsBudget is how many rows pageFromFirstRows reads at most.
const firstRowsBudget = 256

// shortTerms reports whether every group of the token queries is one or
// two prefix or (short) gram tokens: a startswith or contains of a few
// characters, which many rows match. Counting such candidates costs more
// than finding a page of them in order (PostgreSQL reads a GIN posting
// list whole). An exact or long-gram token is selective: its candidates
// are few, and reading rows in order would decrypt many for nothing.
func shortTerms(match []store.TokenQuery) bool {
	for _, q := range match {
		for _, group := range q {
			if len(group) > 2 {
				return false
			}
			for _, tok := range group {
				if kind := searchindex.KindOf(tok); kind == searchindex.Exact || kind == searchindex.LongGram {
					return false
				}
			}
		}
	}
	return true
}

// pageFromFirstRows answers a page in the database's order from the first
// firstRowsBudget rows read in it, each decrypted and checked, when they
// hold the page (or are all the rows). It reports done = false, having
// emitted nothing, when they do not.
func pageFromFirstRows(ctx context.Context, tx store.Tx, customerID string, res *schema.Resource, q query.Query, pl listPlan,
	first, last int, decode func(store.Row) (Object, bool, error), emit func(Object) error) (count int, done bool, err error) {
	var page []Object
	read, matches := 0, 0
	spec := store.ListSpec{Where: pl.where, Order: pl.order, Limit: firstRowsBudget}
	err = tx.List(ctx, customerID, res, spec, func(row store.Row) error {
		read++
		obj, ok, err := decode(row)
		if err != nil || !ok {
			return err
		}
		i := matches
		matches++
		if i >= first {
			page = append(page, obj)
		}
		if i >= last {
			return errStop
		}
		return nil
	})
	switch {
	case errors.Is(err, errStop), err == nil && read < firstRowsBudget:
		for _, o := range page {
			if err := emit(o); err != nil {
				return 0, true, err
			}
		}
		return matches, true, nil
	case err != nil:
		return 0, true, err
	}
	return 0, false, nil
}
