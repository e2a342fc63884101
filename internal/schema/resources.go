package schema

import (
	"regexp"
	"unicode"
)

// Resource names, as the contract spells them.
const (
	ProtectedIdentity = "Protectedidentity"
	Tenant            = "Tenant"
	Subtenant         = "Subtenant"
	Organization      = "Organization"
	Address           = "Address"
)

// New returns the catalog of the Accounts API: the five resources of the
// contract's section 4. Each call builds fresh declarations, so callers never
// share mutable state.
func New() *Catalog {
	return newCatalog(
		protectedIdentity(),
		personResource(Tenant, "/accounts/users/customer/tenant/", "tenants",
			&Field{Name: "ssn_is_coordination_number", Type: Bool, Default: false}),
		personResource(Subtenant, "/accounts/users/customer/subtenant/", "subtenants",
			&Field{Name: "is_active", Type: Bool, Default: true}),
		organization(),
		address(),
	)
}

func str(name string, max int) *Field { return &Field{Name: name, Type: String, MaxLen: max} }

func personal(f *Field) *Field { f.Personal = true; return f }

func searchable(f *Field) *Field { f.Searchable = true; return f }

func ref(name, target string) *Field { return &Field{Name: name, Type: Ref, Target: target} }

func customID() *Field { return searchable(str("custom_id", 128)) }

func email() *Field {
	return &Field{Name: "email", Type: Email, MaxLen: 254, Personal: true, Searchable: true, BlindIndexed: true}
}

func phone() *Field {
	return &Field{Name: "phone_number", Type: Phone, MaxLen: 36, Personal: true, Searchable: true, BlindIndexed: true}
}

func ssn() *Field { return &Field{Name: "ssn", Type: SSN, Personal: true, BlindIndexed: true} }

func birthDate() *Field { return &Field{Name: "birth_date", Type: Date, Personal: true} }

func protectedIdentity() *Resource {
	tenant := ref("tenant", Tenant)
	tenant.Unique, tenant.OnDelete = true, Cascade
	subTenant := ref("sub_tenant", Subtenant)
	subTenant.Unique, subTenant.OnDelete = true, Cascade
	return &Resource{
		Name:  ProtectedIdentity,
		Path:  "/accounts/users/customer/protectedidentity/",
		Table: "protected_identities",
		Fields: []*Field{
			tenant,
			subTenant,
			ref("organization", Organization),
			personal(searchable(str("first_name", 255))),
			personal(searchable(str("last_name", 255))),
			email(),
			phone(),
			ssn(),
			birthDate(),
			customID(),
			ref("current_registered_address", Address),
			ref("previous_address", Address),
			ref("future_address", Address),
		},
		Slim:  []string{"id", "created_at", "tenant", "sub_tenant", "organization", "custom_id"},
		Rules: []Rule{ExactlyOne{A: "tenant", B: "sub_tenant"}},
	}
}

// personResource declares Tenant and Subtenant, which share every field but
// one boolean.
func personResource(name, path, table string, flag *Field) *Resource {
	return &Resource{
		Name:  name,
		Path:  path,
		Table: table,
		Fields: []*Field{
			personal(searchable(str("first_name", 255))),
			personal(searchable(str("last_name", 255))),
			personal(searchable(str("corporate_name", 255))),
			ssn(),
			birthDate(),
			email(),
			phone(),
			customID(),
			ref("organization", Organization),
			ref("current_registered_address", Address),
			ref("future_address", Address),
			flag,
		},
		Slim:  []string{"id", "created_at", "organization", "custom_id"},
		Rules: []Rule{AtLeastOne{"first_name", "last_name", "corporate_name"}},
	}
}

func organization() *Resource {
	name := searchable(str("name", 255))
	name.Required, name.Unique = true, true
	parent := ref("organization", Organization)
	parent.Acyclic = true
	return &Resource{
		Name:   Organization,
		Path:   "/sales/organization/",
		Table:  "organizations",
		Fields: []*Field{name, parent, customID()},
		Slim:   []string{"id", "name"},
	}
}

var (
	streetNumberPattern = regexp.MustCompile(`^\d+(\d*-\d+)*[A-Za-zÅÄÖåäö]*$`)
	postalCodePattern   = regexp.MustCompile(`^[A-Za-z0-9 \-]{3,10}$`)
)

// onlyRunes returns a Check that accepts strings whose every character
// satisfies ok.
func onlyRunes(ok func(rune) bool) func(string) string {
	return func(s string) string {
		for _, r := range s {
			if !ok(r) {
				return MsgPattern
			}
		}
		return ""
	}
}

// streetPattern is streetRune's set as a pattern (a test holds them
// together), for the OpenAPI document.
const streetPattern = `^[A-Za-z\u00AA\u00B5\u00BA\u00C0-\u00D6\u00D8-\u00F6\u00F8-\u00FF0-9 ().:\u2019'-]*$`

// careOfAllowed is careOfRune's set in words: letters of every script have
// no pattern that ECMA-262 without its u flag reads.
const careOfAllowed = "Letters of any script (a combining mark is not one: a letter with an accent is written precomposed, NFC), digits 0-9, space and ()/&'#.,- only."

func matches(re *regexp.Regexp) func(string) string {
	return func(s string) string {
		if !re.MatchString(s) {
			return MsgPattern
		}
		return ""
	}
}

func isASCIIDigit(r rune) bool { return r >= '0' && r <= '9' }

// streetRune: letters of the Latin-1 range, digits, space and ().-:’'
func streetRune(r rune) bool {
	return (r <= 0xff && unicode.IsLetter(r)) || isASCIIDigit(r) || r == ' ' ||
		r == '(' || r == ')' || r == '.' || r == '-' || r == ':' || r == '’' || r == '\''
}

// careOfRune: letters, digits and ()/&'#., -
func careOfRune(r rune) bool {
	switch r {
	case '(', ')', '/', '&', '\'', '#', '.', ',', ' ', '-':
		return true
	}
	return unicode.IsLetter(r) || isASCIIDigit(r)
}

func address() *Resource {
	street := personal(searchable(str("street", 255)))
	street.Required, street.Check, street.Pattern = true, onlyRunes(streetRune), streetPattern
	streetNumber := personal(str("street_number", 255))
	streetNumber.Check, streetNumber.Pattern = matches(streetNumberPattern), streetNumberPattern.String()
	postal := personal(searchable(str("postal_code", 16)))
	postal.Required, postal.Check, postal.Pattern = true, matches(postalCodePattern), postalCodePattern.String()
	city := personal(searchable(str("city", 255)))
	city.Required = true
	country := str("country", 255)
	country.Required = true
	careOf := personal(str("care_of", 255))
	careOf.Check, careOf.Allowed = onlyRunes(careOfRune), careOfAllowed
	attention := personal(str("attention", 255))
	attention.Check, attention.Allowed = onlyRunes(careOfRune), careOfAllowed
	return &Resource{
		Name:  Address,
		Path:  "/common/address/",
		Table: "addresses",
		Fields: []*Field{
			street, streetNumber, postal, city, country, careOf, attention,
			{Name: "latitude", Type: Number, Min: -90, Max: 90, Personal: true},
			{Name: "longitude", Type: Number, Min: -180, Max: 180, Personal: true},
			customID(),
			ref("organization", Organization),
		},
		Slim: []string{"id", "created_at", "country", "organization", "custom_id"},
		// An address's search tokens would group the rows of one street,
		// postal code or city: labelled from one known address or the
		// landlord's public buildings, they would tell where the person of
		// a protected identity lives. Lists on addresses decrypt instead.
		NoSearchTokens: true,
	}
}
