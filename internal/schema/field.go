// Package schema declares the API's resources as data: their fields, types,
// limits, which fields are personal, searchable or blind-indexed, and the
// rules between fields. Every other package (validation, sealing, SQL,
// routing) reads these declarations; nothing else lists a resource's fields.
package schema

// Type is the kind of value a field holds.
type Type int

// The field types of the contract.
const (
	String   Type = iota // str(n)
	Email                // str(254), an e-mail address
	Phone                // str(36) matching ^\+?1?\d{7,15}$
	SSN                  // Swedish personal identity number, stored in 12-digit form
	Date                 // YYYY-MM-DD
	Bool                 // true/false, never null
	Number               // a JSON number within [Min, Max]
	Ref                  // {"id": "<uuid>"} of another resource, or null
	ID                   // the read-only primary key every resource has
	DateTime             // the read-only created_at every resource has
)

// OnDelete says what happens to a referencing object when its target is deleted.
type OnDelete int

// The deletion behaviours of references (contract section 4.6).
const (
	SetNull OnDelete = iota // the reference becomes null
	Cascade                 // the referencing object is deleted too
)

// Field declares one field of a resource.
type Field struct {
	Name string
	Type Type
	// MaxLen is the longest string allowed, in Unicode characters.
	MaxLen int
	// Required fields must be present and non-null on create and can't be
	// cleared on update.
	Required bool
	// Default is the value of a Bool field that a create leaves out.
	Default any
	// Personal fields describe a person or a place: sealed at rest, audited.
	Personal bool
	// Searchable fields take part in _search.
	Searchable bool
	// BlindIndexed personal fields get a keyed-hash column for exact lookups.
	BlindIndexed bool
	// Unique fields are unique per customer (a database constraint).
	Unique bool
	// Check validates a string after the type's own rules; it returns a
	// message naming the rule, or "".
	Check func(string) string
	// Pattern is the rule Check enforces, as a regular expression that
	// both ECMA-262 and Go read alike, for the OpenAPI document: clients
	// and validating proxies check it before a request is sent.
	Pattern string
	// Allowed says in words which characters Check allows, where no
	// pattern that every client reads alike can (letters of every script).
	Allowed string
	// Min and Max bound a Number.
	Min, Max float64
	// Target names the referenced resource of a Ref.
	Target string
	// OnDelete applies to a Ref when its target is deleted.
	OnDelete OnDelete
	// Acyclic marks a self-reference that must not form a cycle (an
	// organization can't be its own ancestor).
	Acyclic bool
}

// Column is the SQL column holding a non-personal field's value.
func (f *Field) Column() string {
	if f.Type == Ref {
		return f.Name + "_id"
	}
	return f.Name
}

// IndexColumn is the SQL column holding a blind-indexed field's keyed hash.
func (f *Field) IndexColumn() string { return f.Name + "_bidx" }
