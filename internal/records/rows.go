package records

import (
	"encoding/json"
	"fmt"
	"strings"

	"accounts/internal/schema"
	"accounts/internal/seal"
	"accounts/internal/store"
)

// toRow turns an object into its stored form: clear columns, blind indexes,
// the personal fields sealed together under the customer's data key, and
// the search tokens of its searchable fields.
func toRow(keys *seal.CustomerKeys, obj Object) store.Row {
	cols := store.Columns(obj.Resource)
	row := store.Row{ID: obj.ID, CreatedAt: obj.CreatedAt, Plain: make(map[string]any, len(cols))}
	for _, c := range cols {
		v := obj.Values[c.Field.Name]
		if c.Index {
			if s, ok := v.(string); ok {
				v = keys.BlindIndex(obj.Resource.Name, c.Field.Name, indexForm(c.Field, s))
			} else {
				v = nil
			}
		}
		row.Plain[c.Name] = v
	}
	personal := map[string]any{}
	for _, f := range obj.Resource.PersonalFields() {
		if v := obj.Values[f.Name]; v != nil {
			personal[f.Name] = v
		}
	}
	if len(obj.Resource.PersonalFields()) > 0 {
		plain, err := json.Marshal(personal)
		if err != nil {
			panic("records: personal values of known types always marshal: " + err.Error())
		}
		row.Sealed = keys.Seal(obj.Resource.Name, obj.ID, plain)
	}
	row.Search = searchTokens(keys, obj.Resource, obj.Values)
	return row
}

// Reseal returns a stored row sealed again under the keys' current data
// key, its blind indexes and search tokens computed afresh: what keys
// rotate-data writes, which so also indexes rows written before their
// resource was search-indexed.
func Reseal(keys *seal.CustomerKeys, res *schema.Resource, row store.Row) (store.Row, error) {
	obj, err := fromRow(keys, res, row, true)
	if err != nil {
		return store.Row{}, err
	}
	return toRow(keys, obj), nil
}

// indexForm is the value a blind index is computed over: e-mail addresses
// compare case-insensitively, the rest exactly (ssn is already canonical).
func indexForm(f *schema.Field, v string) string {
	if f.Type == schema.Email {
		return strings.ToLower(v)
	}
	return v
}

// fromRow decodes a stored row; with open, it also opens the sealed personal
// fields (else they are nil). A sealed value that does not open for this
// customer, resource and row is an internal error: it never yields data.
func fromRow(keys *seal.CustomerKeys, res *schema.Resource, row store.Row, open bool) (Object, error) {
	obj := Object{Resource: res, ID: row.ID, CreatedAt: row.CreatedAt, Values: make(schema.Values, len(res.Fields))}
	for _, f := range res.Fields {
		if !f.Personal {
			obj.Values[f.Name] = row.Plain[f.Column()]
		}
	}
	personal := res.PersonalFields()
	if len(personal) == 0 || !open {
		return obj, nil
	}
	plain, err := keys.Open(res.Name, row.ID, row.Sealed)
	if err != nil {
		return Object{}, fmt.Errorf("records: opening a %s row: %w", res.Name, err)
	}
	// One decoding into values: strings, and float64 for numbers, exactly
	// the types toRow sealed.
	var sealed map[string]any
	if err := json.Unmarshal(plain, &sealed); err != nil {
		return Object{}, fmt.Errorf("records: decoding the sealed fields of a %s row", res.Name)
	}
	for _, f := range personal {
		v := sealed[f.Name]
		ok := v == nil
		switch v.(type) {
		case float64:
			ok = f.Type == schema.Number
		case string:
			ok = f.Type != schema.Number
		}
		if !ok {
			return Object{}, fmt.Errorf("records: decoding sealed field %s of a %s row", f.Name, res.Name)
		}
		obj.Values[f.Name] = v
	}
	return obj, nil
}
