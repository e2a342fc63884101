package apitest

// Field validation of the contract (sections 3, 4 and 5) through real HTTP:
// identity numbers, string limits, formats, blank/null/control characters,
// unknown keys and read-only keys. Cross-field rules, required fields,
// uniqueness and references are in rules_test.go.

import (
	"encoding/json"
	"fmt"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// personalIfDistinctive registers a personal value for the suite's log check when it
// is distinctive (long enough that it can't appear in a log by chance), and
// returns it.
func personalIfDistinctive(v string) string {
	if len([]rune(v)) >= 8 {
		personal(v)
	}
	return v
}

var fieldBodySeq atomic.Int64

// validCreateBodies returns, per resource path, a function building a fresh valid
// create body. A Protectedidentity body gets a new tenant each time (one
// identity per tenant); an Organization body a new name (unique names).
// Tenant and Subtenant bodies set all three names, so that overriding one of
// them never breaks the at-least-one rule.
func validCreateBodies(c *client) map[string]func() map[string]any {
	return map[string]func() map[string]any{
		piPath: func() map[string]any {
			n := fieldBodySeq.Add(1)
			tn := c.create(tenantPath, map[string]any{"last_name": personal(fmt.Sprintf("Fältsson-%d", n))})
			return map[string]any{"tenant": ref(tn)}
		},
		tenantPath: func() map[string]any {
			return map[string]any{
				"first_name": personal("Fältina"), "last_name": personal("Fältström"), "corporate_name": personal("Fältbolaget AB"),
			}
		},
		subPath: func() map[string]any {
			return map[string]any{
				"first_name": personal("Underfältina"), "last_name": personal("Underfältström"), "corporate_name": personal("Underfältbolaget AB"),
			}
		},
		orgPath: func() map[string]any {
			return map[string]any{"name": fmt.Sprintf("Fältorg %d", fieldBodySeq.Add(1))}
		},
		addressPath: func() map[string]any {
			return map[string]any{
				"street": personal("Fältvägen"), "postal_code": personal("987 65"), "city": personal("Fältköping"), "country": "Sverige",
			}
		},
	}
}

// withField returns a copy of body with k set to v.
func withField(body map[string]any, k string, v any) map[string]any {
	out := make(map[string]any, len(body)+1)
	for key, val := range body {
		out[key] = val
	}
	out[k] = v
	return out
}

// createFieldCase is one value sent for one field in a create: either accepted
// (201, the field returned as want, or as the value itself when want is nil)
// or rejected (400 with exactly that field as error key).
type createFieldCase struct {
	path  string
	field string
	value any
	ok    bool
	want  any
}

func runCreateFieldCases(t *testing.T, c *client, cases []createFieldCase) {
	t.Helper()
	bases := validCreateBodies(c)
	for i, tc := range cases {
		t.Run(fmt.Sprintf("%03d_%s_%s", i, pathLabel(tc.path), tc.field), func(t *testing.T) {
			c := c.forTest(t)
			base := bases[tc.path]()
			r := c.do("POST", tc.path, withField(base, tc.field, tc.value))
			if !tc.ok {
				errorKeys(t, r, tc.field)
				return
			}
			if r.status != http.StatusCreated {
				t.Fatalf("case %d: status %d, want 201 (error keys %v)", i, r.status, keys(r.obj))
			}
			want := tc.want
			if want == nil {
				want = tc.value
			}
			if got := r.obj[tc.field]; got != want {
				t.Errorf("case %d: field %s not returned as expected", i, tc.field)
			}
			// The stored value reads back the same.
			g := c.do("GET", tc.path+r.obj["id"].(string)+"/", nil)
			if g.status != http.StatusOK || g.obj[tc.field] != want {
				t.Errorf("case %d: GET status %d, or field %s not read back as stored", i, g.status, tc.field)
			}
		})
	}
}

// TestFieldsSSNTestVectors sends every number of personnummer.json as ssn on
// Protectedidentity, Tenant and Subtenant: valid ones are returned in their
// canonical form, invalid ones are a 400 on ssn that does not echo them.
func TestFieldsSSNTestVectors(t *testing.T) {
	t.Parallel()
	p := loadPersonnummer(t)
	e := newEnv(t)
	c := e.newCustomer("SSN vectors AB")
	for _, v := range p.Valid {
		personal(v.Input, v.Canonical)
	}
	for _, v := range p.Invalid {
		personalIfDistinctive(v)
	}
	bases := validCreateBodies(c)
	for _, path := range []string{piPath, tenantPath, subPath} {
		for i, v := range p.Valid {
			t.Run(fmt.Sprintf("%s_valid_%02d", pathLabel(path), i), func(t *testing.T) {
				c := c.forTest(t)
				r := c.do("POST", path, withField(bases[path](), "ssn", v.Input))
				if r.status != http.StatusCreated {
					t.Fatalf("valid vector %d: status %d, want 201 (error keys %v)", i, r.status, keys(r.obj))
				}
				if r.obj["ssn"] != v.Canonical {
					t.Errorf("valid vector %d: ssn not returned in canonical form", i)
				}
				g := c.do("GET", path+r.obj["id"].(string)+"/", nil)
				if g.status != http.StatusOK || g.obj["ssn"] != v.Canonical {
					t.Errorf("valid vector %d: GET status %d or ssn not read back in canonical form", i, g.status)
				}
			})
		}
		for i, v := range p.Invalid {
			t.Run(fmt.Sprintf("%s_invalid_%02d", pathLabel(path), i), func(t *testing.T) {
				c := c.forTest(t)
				r := c.do("POST", path, withField(bases[path](), "ssn", v))
				errorKeys(t, r, "ssn")
				if v != "" {
					raw := string(r.raw)
					quoted := strconv.QuoteToASCII(v)
					if strings.Contains(raw, v) || strings.Contains(raw, quoted[1:len(quoted)-1]) {
						t.Errorf("invalid vector %d: the error body echoes the submitted value", i)
					}
				}
			})
		}
	}
	// An invalid number is rejected on update too, and the stored one stays.
	t.Run("patch_invalid", func(t *testing.T) {
		c := c.forTest(t)
		obj := c.create(tenantPath, withField(bases[tenantPath](), "ssn", p.Valid[0].Input))
		for i, v := range p.Invalid {
			r := c.do("PATCH", tenantPath+obj["id"].(string)+"/", map[string]any{"ssn": v})
			if r.status != http.StatusBadRequest || r.obj["ssn"] == nil {
				t.Errorf("invalid vector %d on PATCH: status %d, error keys %v", i, r.status, keys(r.obj))
			}
		}
		g := c.do("GET", tenantPath+obj["id"].(string)+"/", nil)
		if g.obj["ssn"] != p.Valid[0].Canonical {
			t.Errorf("a rejected PATCH changed the stored ssn")
		}
	})
}

// TestFieldsStringLimits sends every limited string field at its limit
// (accepted) and one character over it (400 on that field). Lengths count
// Unicode characters.
func TestFieldsStringLimits(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	c := e.newCustomer("Limits AB")
	rep := func(s string, n int) string { return personalIfDistinctive(strings.Repeat(s, n)) }
	var cases []createFieldCase
	limit := func(path, field string, max int, unit string) {
		cases = append(cases,
			createFieldCase{path: path, field: field, value: rep(unit, max), ok: true},
			createFieldCase{path: path, field: field, value: rep(unit, max+1)},
		)
	}
	for _, p := range []string{piPath, tenantPath, subPath} {
		limit(p, "first_name", 255, "a")
		limit(p, "last_name", 255, "b")
		limit(p, "custom_id", 128, "c")
		// email: at most 254 characters, "@example.se" is 11 of them.
		cases = append(cases,
			createFieldCase{path: p, field: "email", value: rep("a", 243) + "@example.se", ok: true},
			createFieldCase{path: p, field: "email", value: rep("a", 244) + "@example.se"},
		)
	}
	limit(piPath, "first_name", 255, "å") // 255 characters, 510 bytes
	limit(tenantPath, "corporate_name", 255, "d")
	limit(subPath, "corporate_name", 255, "Ö")
	limit(orgPath, "name", 255, "e")
	limit(orgPath, "name", 255, "ä")
	limit(orgPath, "custom_id", 128, "f")
	limit(addressPath, "street", 255, "g")
	limit(addressPath, "street", 255, "ö")
	limit(addressPath, "street_number", 255, "1")
	limit(addressPath, "city", 255, "h")
	limit(addressPath, "country", 255, "i")
	limit(addressPath, "care_of", 255, "j")
	limit(addressPath, "attention", 255, "k")
	limit(addressPath, "custom_id", 128, "l")
	// postal_code: str(16) but its pattern allows 3..10 characters.
	cases = append(cases,
		createFieldCase{path: addressPath, field: "postal_code", value: "123", ok: true},
		createFieldCase{path: addressPath, field: "postal_code", value: personalIfDistinctive("123 45 789"), ok: true},
		createFieldCase{path: addressPath, field: "postal_code", value: "12"},
		createFieldCase{path: addressPath, field: "postal_code", value: personalIfDistinctive("123 45 7890")},
		createFieldCase{path: addressPath, field: "postal_code", value: personalIfDistinctive("1234567890123456")},
	)
	// phone_number: ^\+?1?\d{7,15}$, so at most 17 characters although str(36).
	phones := []struct {
		v  string
		ok bool
	}{
		{"4670123", true},             // 7 digits
		{"+4670123", true},            // + and 7 digits
		{"14670123", true},            // 1 and 7 digits
		{"+14670123", true},           // + 1 and 7 digits
		{"467012345678901", true},     // 15 digits
		{"+467012345678901", true},    // + and 15 digits
		{"1467012345678901", true},    // 1 and 15 digits
		{"+1467012345678901", true},   // + 1 and 15 digits: 17 characters
		{"467012", false},             // 6 digits
		{"+467012", false},            // + and 6 digits
		{"+1467012", true},            // + and 7 digits, the optional 1 left out
		{"4670123456789012", false},   // 16 digits not starting with 1
		{"+4670123456789012", false},  // + and 16 digits
		{"+14670123456789012", false}, // + 1 and 16 digits: 18 characters
		{"046-70123", false},
		{"0467 01234", false},
		{"46701234a", false},
		{"++4670123", false},
		{"4670123+", false},
		{"+", false},
	}
	for _, ph := range phones {
		for _, p := range []string{piPath, tenantPath, subPath} {
			cases = append(cases, createFieldCase{path: p, field: "phone_number", value: personalIfDistinctive(ph.v), ok: ph.ok})
		}
	}
	runCreateFieldCases(t, c, cases)
}

// TestFieldsFormats covers e-mail, date, boolean, number and pattern fields.
func TestFieldsFormats(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	c := e.newCustomer("Formats AB")
	var cases []createFieldCase
	add := func(paths []string, field string, ok bool, values ...any) {
		for _, p := range paths {
			for _, v := range values {
				if s, isStr := v.(string); isStr {
					personalIfDistinctive(s)
				}
				cases = append(cases, createFieldCase{path: p, field: field, value: v, ok: ok})
			}
		}
	}
	people := []string{piPath, tenantPath, subPath}
	add(people, "email", true, "anna.svensson@example.se", "a@b.se", "anna+tag@sub.example.se",
		"o'brien@example.se", "x_y-z@my-host.example.se", "anna@xn--exmple-cua.se", "ANNA@EXAMPLE.SE")
	add(people, "email", false,
		"anna.svensson.example.se",      // missing @
		"anna@svensson@example.se",      // two @
		"anna.svensson@examplese",       // no dot in the domain
		"@example.se",                   // empty local part
		"anna.svensson@",                // empty domain
		"anna.svensson@example.se.",     // domain ends with a dot
		"anna@svensson\u00a0.se",        // a no-break space
		"anna\u2003svensson@example.se", // an em space
		"anna..svensson@example.se",     // an empty atom
		".anna@example.se",              // a dot first
		"anna.@example.se",              // a dot last
		"a(b)@example.se",               // a comment
		`"anna"@example.se`,             // a quoted local part
		"<anna@example.se>",             // angle brackets
		"anna@-example.se",              // a label beginning with a hyphen
		"anna@example-.se",              // a label ending with a hyphen
		"anna@ex_ample.se",              // an underscore in the domain
		"anna@[192.0.2.1]",              // an address literal
		"anna@example.s",                // a one-letter last label
		"anna@exämple.se",               // not in IDNA form
		"åsa@example.se",                // not ASCII
	)
	add(people, "birth_date", true, "2000-02-29", "1999-12-31", "1900-01-01")
	add(people, "birth_date", false,
		"2001-02-29", "1900-02-29", "2000-02-30", "2000-04-31", "2000-13-01", "2000-00-10",
		"2000-1-01", "2000-01-1", "20000101", "2000/01/01", "01-01-2000", "2000-01-01T00:00:00Z", " 2000-01-01",
		"0000-01-01",
	)
	add(people, "birth_date", false, 20000101)

	add([]string{tenantPath}, "ssn_is_coordination_number", true, true, false)
	add([]string{tenantPath}, "ssn_is_coordination_number", false, "true", "false", 1, 0, nil, map[string]any{}, []any{})
	add([]string{subPath}, "is_active", true, true, false)
	add([]string{subPath}, "is_active", false, "true", "false", 1, 0, nil)

	addr := []string{addressPath}
	for _, f := range []struct {
		field    string
		lim, bad float64
	}{{"latitude", 90, 90.0001}, {"longitude", 180, 180.0001}} {
		for _, v := range []float64{-f.lim, f.lim, 0, 59.3293, -f.lim / 2} {
			cases = append(cases, createFieldCase{path: addressPath, field: f.field, value: v, ok: true})
		}
		add(addr, f.field, false, -f.bad, f.bad, 1000.0, "1", "59.3", true, map[string]any{}, []any{1})
		// So small that only zero is left of them: refused, not rounded.
		add(addr, f.field, false, json.RawMessage("1e-400"), json.RawMessage("-2.5E-330"))
		cases = append(cases, createFieldCase{path: addressPath, field: f.field, value: json.RawMessage("0.0e-400"), want: 0.0, ok: true},
			createFieldCase{path: addressPath, field: f.field, value: json.RawMessage("1e-300"), want: 1e-300, ok: true})
	}
	add(addr, "street", true, "Storgatan 12 B", "Sankt Göransgatan", "O'Briens väg (övre)", "Väg 1-3: Ærø’s.")
	add(addr, "street", false, "Gatan<1>", "Gatan;1", "Gatan_1", "Gatan/1", "Gatan#1", "Gatan, 1", "Łódzka", "Gatan€")
	add(addr, "street_number", true, "12", "12B", "12-14", "12-14b", "1Å", "2ab")
	add(addr, "street_number", false, "B12", "12 B", "-12", "12-", "12--14", "12.5", "12/3", "１２")
	for _, f := range []string{"care_of", "attention"} {
		add(addr, f, true, "c/o Anna & Co. #3, (x)-'y'", "Åsa Öberg", "Box 123")
		add(addr, f, false, "Anna<x>", "Anna;B", "anna@example.se", "Anna!", "Anna\"B", "Anna_B", "Anna+B")
	}
	add(addr, "postal_code", true, "123 45", "12345", "AB-123", "SE 123")
	add(addr, "postal_code", false, "123_45", "123.45", "12345!", "12345å")
	runCreateFieldCases(t, c, cases)
}

// TestFieldsBooleanDefaults checks the defaults of the two boolean fields and
// that neither accepts null or a string on update.
func TestFieldsBooleanDefaults(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	c := e.newCustomer("Booleans AB")
	for _, tc := range []struct {
		path, field string
		def         bool
	}{{tenantPath, "ssn_is_coordination_number", false}, {subPath, "is_active", true}} {
		t.Run(pathLabel(tc.path), func(t *testing.T) {
			c := c.forTest(t)
			obj := c.create(tc.path, map[string]any{"first_name": personal("Boolina")})
			if v, ok := obj[tc.field].(bool); !ok || v != tc.def {
				t.Fatalf("%s: default not %v", tc.field, tc.def)
			}
			p := tc.path + obj["id"].(string) + "/"
			for i, bad := range []any{nil, "true", "false", 1} {
				errorKeys(t, c.do("PATCH", p, map[string]any{tc.field: bad}), tc.field)
				if g := c.do("GET", p, nil); g.obj[tc.field] != tc.def {
					t.Errorf("rejected PATCH %d changed %s", i, tc.field)
				}
			}
			r := c.do("PATCH", p, map[string]any{tc.field: !tc.def})
			if r.status != http.StatusOK || r.obj[tc.field] != !tc.def {
				t.Errorf("PATCH %s to %v: status %d", tc.field, !tc.def, r.status)
			}
			// A PATCH that leaves the field out does not reset it to the default.
			r = c.do("PATCH", p, map[string]any{"custom_id": "bool-1"})
			if r.status != http.StatusOK || r.obj[tc.field] != !tc.def {
				t.Errorf("PATCH without %s: status %d or field reset", tc.field, r.status)
			}
		})
	}
}

// TestFieldsStrings covers "" (blank), null on update, control characters,
// tab and non-string values of string fields.
func TestFieldsStrings(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	c := e.newCustomer("Strings AB")
	stringFields := map[string][]string{
		piPath:      {"first_name", "last_name", "email", "phone_number", "ssn", "birth_date", "custom_id"},
		tenantPath:  {"first_name", "last_name", "corporate_name", "email", "phone_number", "ssn", "birth_date", "custom_id"},
		subPath:     {"first_name", "last_name", "corporate_name", "email", "phone_number", "ssn", "birth_date", "custom_id"},
		orgPath:     {"name", "custom_id"},
		addressPath: {"street", "street_number", "postal_code", "city", "country", "care_of", "attention", "custom_id"},
	}
	// Plain-text fields, where any printable text is allowed.
	textFields := map[string][]string{
		piPath:      {"first_name", "last_name", "custom_id"},
		tenantPath:  {"first_name", "corporate_name", "custom_id"},
		subPath:     {"last_name", "custom_id"},
		orgPath:     {"name", "custom_id"},
		addressPath: {"city", "country", "custom_id"},
	}
	var cases []createFieldCase
	for _, path := range []string{piPath, tenantPath, subPath, orgPath, addressPath} {
		for _, f := range stringFields[path] {
			for _, v := range []any{"", 42, 4.5, true, map[string]any{"a": "b"}, []any{"x"}} {
				cases = append(cases, createFieldCase{path: path, field: f, value: v})
			}
		}
		for _, f := range textFields[path] {
			for _, v := range []string{"Ctrl\u0001Char", "Line\nBreak", "Carriage\rReturn", "Nul\u0000Char", "Esc\u001bChar", "Del\u007fChar", "Nel\u0085Char"} {
				cases = append(cases, createFieldCase{path: path, field: f, value: personalIfDistinctive(v)})
			}
			n := fieldBodySeq.Add(1)
			cases = append(cases,
				createFieldCase{path: path, field: f, value: personalIfDistinctive(fmt.Sprintf("Tab\tSeparated %d", n)), ok: true},
				createFieldCase{path: path, field: f, value: personalIfDistinctive(fmt.Sprintf("Ünïcödé “ok” 名前 %d", n)), ok: true},
			)
		}
	}
	runCreateFieldCases(t, c, cases)
}

// TestFieldsNullClearsOnPatch: null clears an optional field on PATCH; the
// other fields are untouched; "" is rejected on PATCH too.
func TestFieldsNullClearsOnPatch(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	c := e.newCustomer("Nulls AB")
	f := c.fixtures()
	pn := loadPersonnummer(t)
	cases := []struct {
		path  string
		field string
	}{
		{piPath, "first_name"},
		{piPath, "email"},
		{piPath, "phone_number"},
		{piPath, "ssn"},
		{piPath, "birth_date"},
		{piPath, "custom_id"},
		{piPath, "organization"},
		{piPath, "current_registered_address"},
		{tenantPath, "last_name"},
		{tenantPath, "organization"},
		{subPath, "corporate_name"},
		{subPath, "future_address"},
		{orgPath, "custom_id"},
		{orgPath, "organization"},
		{addressPath, "care_of"},
		{addressPath, "street_number"},
		{addressPath, "latitude"},
		{addressPath, "organization"},
	}
	full := func(path string) map[string]any {
		n := fieldBodySeq.Add(1)
		switch path {
		case piPath:
			tn := c.create(tenantPath, map[string]any{"first_name": personal(fmt.Sprintf("Nullson-%d", n))})
			return map[string]any{
				"tenant": ref(tn), "first_name": personal("Nullina"), "last_name": personal("Nullström"),
				"email": personal("nullina@example.se"), "phone_number": personal("+46701234567"), "ssn": pn.Valid[0].Input,
				"birth_date": personal("1990-06-02"), "custom_id": "null-1", "organization": ref(f.org),
				"current_registered_address": ref(f.address),
			}
		case tenantPath, subPath:
			return map[string]any{
				"first_name": personal("Nullina"), "last_name": personal("Nullström"), "corporate_name": personal("Null AB"),
				"organization": ref(f.org), "future_address": ref(f.address), "custom_id": "null-2",
			}
		case orgPath:
			return map[string]any{"name": fmt.Sprintf("Nullorg %d", n), "custom_id": "null-3", "organization": ref(f.org)}
		default:
			return map[string]any{
				"street": personal("Nollgatan"), "street_number": "12B", "postal_code": personal("111 22"), "city": personal("Nollby"),
				"country": "Sverige", "care_of": personal("c/o Nollsson"), "latitude": 59.5, "organization": ref(f.org), "custom_id": "null-4",
			}
		}
	}
	for i, tc := range cases {
		t.Run(fmt.Sprintf("%02d_%s_%s", i, pathLabel(tc.path), tc.field), func(t *testing.T) {
			c := c.forTest(t)
			obj := c.create(tc.path, full(tc.path))
			if obj[tc.field] == nil {
				t.Fatalf("setup: %s not set", tc.field)
			}
			p := tc.path + obj["id"].(string) + "/"
			if _, isStr := obj[tc.field].(string); isStr {
				errorKeys(t, c.do("PATCH", p, map[string]any{tc.field: ""}), tc.field)
			}
			r := c.do("PATCH", p, map[string]any{tc.field: nil})
			if r.status != http.StatusOK {
				t.Fatalf("PATCH %s to null: status %d (error keys %v)", tc.field, r.status, keys(r.obj))
			}
			g := c.do("GET", p, nil)
			for _, got := range []map[string]any{r.obj, g.obj} {
				if v, present := got[tc.field]; !present || v != nil {
					t.Errorf("%s not null after PATCH", tc.field)
				}
				for k, v := range obj {
					if k != tc.field && fmt.Sprint(got[k]) != fmt.Sprint(v) {
						t.Errorf("PATCH of %s changed %s", tc.field, k)
					}
				}
			}
		})
	}
}

// TestFieldsUnknownKeys: a key that is not a field is a 400 on that key, and
// nothing is created or changed.
func TestFieldsUnknownKeys(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	c := e.newCustomer("Unknown AB")
	f := c.fixtures()
	bases := validCreateBodies(c)
	unknown := []string{"nickname", "tenant_id", "ssn_bidx", "customer_id", "customer", "First_name", "id ", ""}
	for _, path := range []string{piPath, tenantPath, subPath, orgPath, addressPath} {
		for i, k := range unknown {
			t.Run(fmt.Sprintf("%s_%d", pathLabel(path), i), func(t *testing.T) {
				c := c.forTest(t)
				body := bases[path]()
				errorKeys(t, c.do("POST", path, withField(body, k, "x")), k)
				switch path {
				case piPath:
					// Nothing was created: the tenant is still free.
					c.create(piPath, body)
				case orgPath:
					// Nothing was created: the name is still free.
					c.create(orgPath, body)
				}
			})
		}
		t.Run(pathLabel(path)+"_patch", func(t *testing.T) {
			c := c.forTest(t)
			obj := c.create(path, bases[path]())
			p := path + obj["id"].(string) + "/"
			errorKeys(t, c.do("PATCH", p, map[string]any{"nickname": "x", "custom_id": "changed"}), "nickname")
			if g := c.do("GET", p, nil); g.status != http.StatusOK || g.obj["custom_id"] != nil {
				t.Errorf("a rejected PATCH changed the object (status %d)", g.status)
			}
		})
	}
	// An unknown key next to an invalid field: both are reported.
	r := c.do("POST", piPath, map[string]any{"tenant": ref(f.tenant), "nickname": "x", "email": "no-at-sign"})
	errorKeys(t, r, "nickname", "email")
	c.create(piPath, map[string]any{"tenant": ref(f.tenant)})
}

var createdAtFormat = regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$`)

// TestFieldsReadOnlyKeysIgnored: id and created_at in a create or update body
// are ignored.
func TestFieldsReadOnlyKeysIgnored(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	c := e.newCustomer("Read-only AB")
	bases := validCreateBodies(c)
	const sentID = "5d2b8e8a-1c3f-4a7e-9b6d-0f1e2d3c4b5a"
	const sentCreated = "2001-01-01T00:00:00.000000Z"
	for _, path := range []string{piPath, tenantPath, subPath, orgPath, addressPath} {
		for i, ids := range []any{sentID, "not-a-uuid", 42, nil} {
			t.Run(fmt.Sprintf("%s_%d", pathLabel(path), i), func(t *testing.T) {
				c := c.forTest(t)
				before := time.Now().UTC().Add(-time.Minute)
				body := withField(withField(bases[path](), "id", ids), "created_at", sentCreated)
				r := c.do("POST", path, body)
				if r.status != http.StatusCreated {
					t.Fatalf("create with read-only keys: status %d (error keys %v)", r.status, keys(r.obj))
				}
				id, _ := r.obj["id"].(string)
				if id == "" || id == sentID {
					t.Errorf("the sent id was used")
				}
				created, _ := r.obj["created_at"].(string)
				if !createdAtFormat.MatchString(created) {
					t.Fatalf("created_at %q is not RFC 3339 UTC with 6 fractional digits", created)
				}
				ts, err := time.Parse(time.RFC3339Nano, created)
				if err != nil || ts.Before(before) || ts.After(time.Now().UTC().Add(time.Minute)) {
					t.Errorf("created_at %q is not the server's time", created)
				}
				if g := c.do("GET", path+sentID+"/", nil); g.status != http.StatusNotFound {
					t.Errorf("GET of the sent id: status %d, want 404", g.status)
				}
				p := path + id + "/"
				u := c.do("PATCH", p, map[string]any{"id": sentID, "created_at": sentCreated, "custom_id": "ro-1"})
				if u.status != http.StatusOK {
					t.Fatalf("PATCH with read-only keys: status %d (error keys %v)", u.status, keys(u.obj))
				}
				if u.obj["id"] != id || u.obj["created_at"] != created || u.obj["custom_id"] != "ro-1" {
					t.Errorf("PATCH: id or created_at changed, or custom_id not updated")
				}
				g := c.do("GET", p, nil)
				if g.status != http.StatusOK || g.obj["id"] != id || g.obj["created_at"] != created {
					t.Errorf("GET after PATCH: status %d, or id/created_at changed", g.status)
				}
			})
		}
	}
}
