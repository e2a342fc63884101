package schema

import "slices"

// Resource declares one resource of the API.
type Resource struct {
	// Name is the resource's name in the contract, e.g. "Protectedidentity".
	Name string
	// Path is the collection path, ending with "/".
	Path string
	// Table is the SQL table.
	Table string
	// Fields are the writable fields in response order (id and created_at,
	// which every resource has, come first and are not listed).
	Fields []*Field
	// Slim lists the fields of the slim form, in order.
	Slim []string
	// Rules are the cross-field rules, checked on the object as it will be
	// after the write.
	Rules []Rule
	// NoSearchTokens keeps a resource with searchable personal fields out
	// of the search index (SearchIndexed), where even the equality of its
	// values must not be seen in the database (docs/encrypted-search.md).
	NoSearchTokens bool

	byName map[string]*Field
	// personal are the personal fields, listed once: every read and write
	// of an object asks for them.
	personal []*Field
}

// Field returns the named writable field, or nil.
func (r *Resource) Field(name string) *Field { return r.byName[name] }

// The read-only fields every resource has. They are not in Fields, which
// lists what a client may write.
var (
	IDField        = &Field{Name: "id", Type: ID}
	CreatedAtField = &Field{Name: "created_at", Type: DateTime}
)

// Filterable returns the field a list may filter or order on by that name:
// a declared field, id or created_at; nil for anything else.
func (r *Resource) Filterable(name string) *Field {
	switch name {
	case IDField.Name:
		return IDField
	case CreatedAtField.Name:
		return CreatedAtField
	}
	return r.byName[name]
}

// SearchFields returns the fields _search looks in, in declaration order.
func (r *Resource) SearchFields() []*Field {
	var out []*Field
	for _, f := range r.Fields {
		if f.Searchable {
			out = append(out, f)
		}
	}
	return out
}

// SearchIndexed reports whether res's rows carry search tokens (see
// internal/searchindex): those of resources with a searchable personal
// field, whose lists on that field could otherwise only be answered by
// decrypting every row. Every searchable field of such a resource is
// indexed, personal or not, so that _search, which looks in all of them,
// can be narrowed by the index alone. A resource may opt out
// (NoSearchTokens).
func (r *Resource) SearchIndexed() bool {
	if r.NoSearchTokens {
		return false
	}
	for _, f := range r.Fields {
		if f.Searchable && f.Personal {
			return true
		}
	}
	return false
}

// PersonalFields returns the personal fields in declaration order. The
// slice is the resource's own: callers must not change it.
func (r *Resource) PersonalFields() []*Field { return r.personal }

// Catalog is the set of resources the service serves.
type Catalog struct {
	Resources []*Resource
	byName    map[string]*Resource
}

// Resource returns the named resource, or nil.
func (c *Catalog) Resource(name string) *Resource { return c.byName[name] }

// Referrer is a field of some resource that references another resource.
type Referrer struct {
	Resource *Resource
	Field    *Field
}

// ReferencesTo lists every field, in any resource, that references target.
func (c *Catalog) ReferencesTo(target *Resource) []Referrer {
	var out []Referrer
	for _, r := range c.Resources {
		for _, f := range r.Fields {
			if f.Type == Ref && f.Target == target.Name {
				out = append(out, Referrer{Resource: r, Field: f})
			}
		}
	}
	return out
}

func newCatalog(resources ...*Resource) *Catalog {
	c := &Catalog{Resources: resources, byName: map[string]*Resource{}}
	for _, r := range resources {
		r.byName = map[string]*Field{}
		for _, f := range r.Fields {
			r.byName[f.Name] = f
			if f.Personal {
				r.personal = append(r.personal, f)
			}
		}
		r.personal = slices.Clip(r.personal) // an append by a caller copies
		c.byName[r.Name] = r
	}
	for _, r := range resources {
		for _, f := range r.Fields {
			if f.Type == Ref && c.byName[f.Target] == nil {
				panic("schema: " + r.Name + "." + f.Name + " references unknown resource " + f.Target)
			}
		}
		for _, s := range r.Slim {
			if s != "id" && s != "created_at" && r.byName[s] == nil {
				panic("schema: slim field " + s + " of " + r.Name + " is not a field")
			}
		}
	}
	return c
}
