package apitest

// Lists of the contract (sections 3 "List" and 6) through real HTTP: every
// filter operator on every field type with its negation, query errors,
// ordering, paging, statistics, the slim form, JSON Lines, search, the two
// list paths, and that another customer's objects never appear.
//
// Failure messages name resources, parameters, case indexes and row labels
// (T1, P2, ...), never a value: the values are personal data.

import (
	"encoding/json"
	"fmt"
	"math"
	"mime"
	"net/http"
	"net/url"
	"reflect"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"accounts/internal/config"
	"accounts/internal/query"
)

// valid returns the test vector whose input is in, failing when the file
// has no such vector (so no number is ever invented here), and registers
// both of its forms as personal values.
func (p personnummerVectors) valid(t *testing.T, in string) (input, canonical string) {
	t.Helper()
	for _, v := range p.Valid {
		if v.Input == in {
			personal(v.Input, v.Canonical)
			return v.Input, v.Canonical
		}
	}
	t.Fatalf("valid vector %d characters long not found in personnummer.json", len(in))
	return "", ""
}

// invalid returns the first invalid vector of twelve ASCII digits.
func (p personnummerVectors) invalid(t *testing.T) string {
	t.Helper()
	for _, v := range p.Invalid {
		if len(v) == 12 && strings.Trim(v, "0123456789") == "" {
			personal(v)
			return v
		}
	}
	t.Fatal("no 12-digit invalid vector in personnummer.json")
	return ""
}

// queryOf builds a query string from name/value pairs, escaping both.
func queryOf(kv ...string) string {
	var b strings.Builder
	for i := 0; i+1 < len(kv); i += 2 {
		if b.Len() > 0 {
			b.WriteByte('&')
		}
		b.WriteString(url.QueryEscape(kv[i]))
		b.WriteByte('=')
		b.WriteString(url.QueryEscape(kv[i+1]))
	}
	return b.String()
}

// joinQueries joins query strings with &, skipping empty ones.
func joinQueries(qs ...string) string {
	var out []string
	for _, q := range qs {
		if q != "" {
			out = append(out, q)
		}
	}
	return strings.Join(out, "&")
}

// paramNames lists a query string's parameter names: safe to print, unlike
// its values.
func paramNames(q string) string {
	var names []string
	for _, part := range strings.Split(q, "&") {
		if part == "" {
			continue
		}
		name, _, _ := strings.Cut(part, "=")
		if n, err := url.QueryUnescape(name); err == nil {
			name = n
		}
		names = append(names, name)
	}
	return "[" + strings.Join(names, " ") + "]"
}

// getList lists path with the raw query q ("" for none).
func (c *client) getList(path, q string) response {
	c.e.t.Helper()
	if q != "" {
		path += "?" + q
	}
	return c.do("GET", path, nil)
}

// listObjects lists path?q, which must answer 200 with a JSON array of
// objects, and returns them.
func (c *client) listObjects(path, q string) []map[string]any {
	t := c.e.t
	t.Helper()
	r := c.getList(path, q)
	return objectsOf(t, r, path, q)
}

func objectsOf(t testing.TB, r response, path, q string) []map[string]any {
	t.Helper()
	if r.status != http.StatusOK {
		t.Fatalf("list %s %s: status %d, want 200 (error keys %v)", pathLabel(path), paramNames(q), r.status, keys(r.obj))
	}
	if r.objects == nil {
		t.Fatalf("list %s %s: body is not a JSON array", pathLabel(path), paramNames(q))
	}
	out := make([]map[string]any, len(r.objects))
	for i, o := range r.objects {
		m, ok := o.(map[string]any)
		if !ok {
			t.Fatalf("list %s %s: element %d is not an object", pathLabel(path), paramNames(q), i)
		}
		out[i] = m
	}
	return out
}

func idsOf(objs []map[string]any) []string {
	out := make([]string, len(objs))
	for i, o := range objs {
		out[i], _ = o["id"].(string)
	}
	return out
}

// rowLabels names rows by label (id -> "T1"), for failure messages.
type rowLabels map[string]string

func (l rowLabels) of(ids []string) string {
	out := make([]string, len(ids))
	for i, id := range ids {
		if name, ok := l[id]; ok {
			out[i] = name
		} else {
			out[i] = "<unknown id>"
		}
	}
	return "[" + strings.Join(out, " ") + "]"
}

func sameSet(got, want []string) bool {
	if len(got) != len(want) {
		return false
	}
	a := append([]string(nil), got...)
	b := append([]string(nil), want...)
	sort.Strings(a)
	sort.Strings(b)
	return reflect.DeepEqual(a, b)
}

func sameSequence(got, want []string) bool {
	if len(got) == 0 && len(want) == 0 {
		return true
	}
	return reflect.DeepEqual(got, want)
}

// keepAllFilter is, per resource, a filter that keeps every row (a negated
// case-insensitive match on a value no row has, nulls kept) but that only
// the service can decide, after decryption.
var keepAllFilter = map[string]string{
	tenantPath:  "last_name__iexact%21=zzz-no-such-value",
	subPath:     "last_name__iexact%21=zzz-no-such-value",
	piPath:      "last_name__iexact%21=zzz-no-such-value",
	addressPath: "street__iexact%21=zzz-no-such-value",
}

// filterCase is one list query and the rows it must select, as labels.
type filterCase struct {
	path  string
	query string
	want  []string
}

func TestListFilters(t *testing.T) {
	t.Parallel()
	pn := loadPersonnummer(t)
	e := newEnv(t)
	c := e.newCustomer("List filters AB")
	other := e.newCustomer("List filters other AB")

	ids := map[string]string{} // label -> id
	labels := rowLabels{}
	objs := map[string]map[string]any{}
	add := func(label, path string, body map[string]any) map[string]any {
		o := c.create(path, body)
		ids[label] = o["id"].(string)
		labels[o["id"].(string)] = label
		objs[label] = o
		return o
	}

	ssn1, ssn1c := pn.valid(t, "191212121212")
	ssn1dash, _ := pn.valid(t, "19121212-1212")
	ssn1plus, _ := pn.valid(t, "19121212+1212")
	ssn2, ssn2c := pn.valid(t, "194408139089")
	ssn4dash, ssn4c := pn.valid(t, "19701063-2391")
	ssnUnused, _ := pn.valid(t, "199006022397")
	if ssn1c != ssn1 || ssn2c != ssn2 {
		t.Fatal("unexpected canonical forms in personnummer.json")
	}

	// Organizations: names are clear.
	add("O1", orgPath, map[string]any{"name": "Listorg Alpha", "custom_id": "ORG-1"})
	add("O2", orgPath, map[string]any{"name": "listorg beta"})
	add("O3", orgPath, map[string]any{"name": "Other Company", "organization": map[string]any{"id": ids["O1"]}})

	// Tenants: a personal string (first_name), a clear one (custom_id), a
	// date, an ssn, a boolean, e-mail, phone and a reference, with nulls.
	add("T1", tenantPath, map[string]any{
		"first_name": personal("Annika"), "last_name": personal("Listberg"), "custom_id": "CUST-alpha-1",
		"birth_date": personal("1980-05-17"), "ssn": ssn1, "email": personal("annika.lst@example.com"),
		"phone_number": personal("+46701234567"), "organization": map[string]any{"id": ids["O1"]},
		"ssn_is_coordination_number": false,
	})
	add("T2", tenantPath, map[string]any{
		"first_name": personal("Bertil"), "custom_id": "CUST-beta-2", "birth_date": personal("1990-01-01"),
		"ssn": ssn2, "email": personal("Bertil.LST@Example.org"), "phone_number": personal("0701111111"),
		"ssn_is_coordination_number": true,
	})
	add("T3", tenantPath, map[string]any{
		"first_name": personal("annelie"), "custom_id": "cust-Gamma-3", "organization": map[string]any{"id": ids["O2"]},
	})
	add("T4", tenantPath, map[string]any{
		"last_name": personal("Nullsson"), "birth_date": personal("2000-12-31"), "ssn": ssn4dash,
		"ssn_is_coordination_number": true,
	})
	if objs["T4"]["ssn"] != ssn4c {
		t.Fatal("T4: ssn not stored in canonical form")
	}

	// Subtenants: is_active.
	add("S1", subPath, map[string]any{"last_name": personal("Subbyson")})
	add("S2", subPath, map[string]any{"last_name": personal("Subboson"), "is_active": false})
	add("S3", subPath, map[string]any{"first_name": personal("Subbalina"), "is_active": true})

	// Protected identities: references.
	add("P1", piPath, map[string]any{
		"tenant": map[string]any{"id": ids["T1"]}, "organization": map[string]any{"id": ids["O1"]},
		"first_name": personal("Pialista"), "ssn": ssn1dash,
	})
	add("P2", piPath, map[string]any{"tenant": map[string]any{"id": ids["T2"]}})
	add("P3", piPath, map[string]any{"sub_tenant": map[string]any{"id": ids["S1"]}, "custom_id": "PI-3"})

	// Addresses: a personal number, zero and null included.
	addr := func(label string, lat any) {
		body := map[string]any{
			"street": personal("Listgatan"), "postal_code": personal("111 22"), "city": personal("Listby"),
			"country": "Sverige", "custom_id": "ADR-" + label,
		}
		if lat != nil {
			body["latitude"] = lat
		}
		add(label, addressPath, body)
	}
	addr("A1", 59.329312)
	addr("A2", -33.5)
	addr("A3", nil)
	addr("A4", 0)
	personal("59.329312")

	// Another customer's look-alikes: never in customer c's lists.
	oorg := other.create(orgPath, map[string]any{"name": "Listorg Alpha"})
	otn := other.create(tenantPath, map[string]any{
		"first_name": "Annika", "custom_id": "CUST-alpha-1", "birth_date": "1980-05-17", "ssn": ssn1,
		"email": "annika.lst@example.com", "phone_number": "+46701234567", "organization": ref(oorg),
		"ssn_is_coordination_number": true,
	})
	other.create(subPath, map[string]any{"last_name": "Subbyson", "is_active": false})
	other.create(piPath, map[string]any{"tenant": ref(otn), "first_name": "Pialista", "ssn": ssn1})
	other.create(addressPath, map[string]any{
		"street": "Listgatan", "postal_code": "111 22", "city": "Listby", "country": "Sverige", "latitude": 59.329312,
	})

	T, S, P, O, A := tenantPath, subPath, piPath, orgPath, addressPath
	q := queryOf
	allT := []string{"T1", "T2", "T3", "T4"}
	allS := []string{"S1", "S2", "S3"}
	allO := []string{"O1", "O2", "O3"}
	allA := []string{"A1", "A2", "A3", "A4"}
	cases := []filterCase{
		// Personal string: first_name.
		{T, q("first_name", "Annika"), []string{"T1"}},
		{T, q("first_name__exact", "Annika"), []string{"T1"}},
		{T, q("first_name", "annika"), nil},
		{T, q("first_name!", "Annika"), []string{"T2", "T3", "T4"}},
		{T, q("first_name__iexact", "ANNIKA"), []string{"T1"}},
		{T, q("first_name__iexact", "Ann"), nil},
		{T, q("first_name__iexact!", "ANNIKA"), []string{"T2", "T3", "T4"}},
		{T, q("first_name__contains", "nn"), []string{"T1", "T3"}},
		{T, q("first_name__contains", "Ann"), []string{"T1"}},
		{T, q("first_name__contains", "xyz"), nil},
		{T, q("first_name__contains!", "Ann"), []string{"T2", "T3", "T4"}},
		{T, q("first_name__icontains", "ANN"), []string{"T1", "T3"}},
		{T, q("first_name__icontains", "xyz"), nil},
		{T, q("first_name__icontains!", "ANN"), []string{"T2", "T4"}},
		{T, q("first_name__startswith", "Ann"), []string{"T1"}},
		{T, q("first_name__startswith", "ann"), []string{"T3"}},
		{T, q("first_name__startswith", "nika"), nil},
		{T, q("first_name__startswith!", "Ann"), []string{"T2", "T3", "T4"}},
		{T, q("first_name__istartswith", "aNN"), []string{"T1", "T3"}},
		{T, q("first_name__istartswith", "nika"), nil},
		{T, q("first_name__istartswith!", "aNN"), []string{"T2", "T4"}},
		{T, q("first_name__endswith", "ika"), []string{"T1"}},
		{T, q("first_name__endswith", "IKA"), nil},
		{T, q("first_name__endswith!", "ika"), []string{"T2", "T3", "T4"}},
		{T, q("first_name__iendswith", "IKA"), []string{"T1"}},
		{T, q("first_name__iendswith", "LIE"), []string{"T3"}},
		{T, q("first_name__iendswith", "Ann"), nil},
		{T, q("first_name__iendswith!", "IKA"), []string{"T2", "T3", "T4"}},
		{T, q("first_name__in", "Annika,Bertil"), []string{"T1", "T2"}},
		{T, q("first_name__in", "annika,bertil"), nil},
		{T, q("first_name__in!", "Annika,Bertil"), []string{"T3", "T4"}},
		{T, q("first_name__isnull", "true"), []string{"T4"}},
		{T, q("first_name__isnull", "false"), []string{"T1", "T2", "T3"}},
		{T, q("first_name__isnull!", "true"), []string{"T1", "T2", "T3"}},
		{T, q("first_name__isnull!", "false"), []string{"T4"}},
		{T, q("first_name__icontains", "ann", "birth_date__isnull", "false"), []string{"T1"}}, // AND

		// Clear string: custom_id.
		{T, q("custom_id", "CUST-alpha-1"), []string{"T1"}},
		{T, q("custom_id__exact", "cust-alpha-1"), nil},
		{T, q("custom_id!", "CUST-alpha-1"), []string{"T2", "T3", "T4"}},
		{T, q("custom_id__iexact", "cust-ALPHA-1"), []string{"T1"}},
		{T, q("custom_id__iexact", "cust-alpha"), nil},
		{T, q("custom_id__iexact!", "cust-ALPHA-1"), []string{"T2", "T3", "T4"}},
		{T, q("custom_id__contains", "CUST"), []string{"T1", "T2"}},
		{T, q("custom_id__contains", "gamma"), nil},
		{T, q("custom_id__contains!", "CUST"), []string{"T3", "T4"}},
		{T, q("custom_id__icontains", "gamma"), []string{"T3"}},
		{T, q("custom_id__icontains", "cust"), []string{"T1", "T2", "T3"}},
		{T, q("custom_id__icontains!", "cust"), []string{"T4"}},
		{T, q("custom_id__startswith", "cust"), []string{"T3"}},
		{T, q("custom_id__startswith", "alpha"), nil},
		{T, q("custom_id__startswith!", "cust"), []string{"T1", "T2", "T4"}},
		{T, q("custom_id__istartswith", "CUST-B"), []string{"T2"}},
		{T, q("custom_id__istartswith", "beta"), nil},
		{T, q("custom_id__istartswith!", "cust-b"), []string{"T1", "T3", "T4"}},
		{T, q("custom_id__endswith", "-1"), []string{"T1"}},
		{T, q("custom_id__endswith", "ALPHA-1"), nil},
		{T, q("custom_id__endswith!", "-1"), []string{"T2", "T3", "T4"}},
		{T, q("custom_id__iendswith", "GAMMA-3"), []string{"T3"}},
		{T, q("custom_id__iendswith", "GAMMA"), nil},
		{T, q("custom_id__iendswith!", "GAMMA-3"), []string{"T1", "T2", "T4"}},
		{T, q("custom_id__in", "CUST-alpha-1,cust-Gamma-3"), []string{"T1", "T3"}},
		{T, q("custom_id__in", "cust-alpha-1"), nil},
		{T, q("custom_id__in!", "CUST-alpha-1,cust-Gamma-3"), []string{"T2", "T4"}},
		{T, q("custom_id__isnull", "true"), []string{"T4"}},
		{T, q("custom_id__isnull", "false"), []string{"T1", "T2", "T3"}},
		{T, q("custom_id__isnull!", "true"), []string{"T1", "T2", "T3"}},
		{T, q("custom_id__isnull!", "false"), []string{"T4"}},

		// Clear string: Organization name (never null).
		{O, q("name", "Listorg Alpha"), []string{"O1"}},
		{O, q("name", "listorg alpha"), nil},
		{O, q("name!", "Listorg Alpha"), []string{"O2", "O3"}},
		{O, q("name__iexact", "LISTORG ALPHA"), []string{"O1"}},
		{O, q("name__iexact", "LISTORG"), nil},
		{O, q("name__iexact!", "LISTORG ALPHA"), []string{"O2", "O3"}},
		{O, q("name__contains", "org"), []string{"O1", "O2"}},
		{O, q("name__contains", "Org"), nil},
		{O, q("name__contains!", "org"), []string{"O3"}},
		{O, q("name__icontains", "LISTORG"), []string{"O1", "O2"}},
		{O, q("name__icontains", "nomatch"), nil},
		{O, q("name__icontains!", "LISTORG"), []string{"O3"}},
		{O, q("name__startswith", "List"), []string{"O1"}},
		{O, q("name__startswith", "Company"), nil},
		{O, q("name__startswith!", "List"), []string{"O2", "O3"}},
		{O, q("name__istartswith", "LIST"), []string{"O1", "O2"}},
		{O, q("name__istartswith", "ALPHA"), nil},
		{O, q("name__istartswith!", "LIST"), []string{"O3"}},
		{O, q("name__endswith", "Company"), []string{"O3"}},
		{O, q("name__endswith", "company"), nil},
		{O, q("name__endswith!", "Company"), []string{"O1", "O2"}},
		{O, q("name__iendswith", "BETA"), []string{"O2"}},
		{O, q("name__iendswith", "OTHER"), nil},
		{O, q("name__iendswith!", "BETA"), []string{"O1", "O3"}},
		{O, q("name__in", "Listorg Alpha,Other Company"), []string{"O1", "O3"}},
		{O, q("name__in", "listorg alpha"), nil},
		{O, q("name__in!", "Listorg Alpha,Other Company"), []string{"O2"}},
		{O, q("name__isnull", "true"), nil},
		{O, q("name__isnull", "false"), allO},
		{O, q("name__isnull!", "false"), nil},
		{O, q("organization", ids["O1"]), []string{"O3"}},
		{O, q("organization__isnull", "true"), []string{"O1", "O2"}},

		// Dates: birth_date (personal).
		{T, q("birth_date", "1990-01-01"), []string{"T2"}},
		{T, q("birth_date", "1990-01-02"), nil},
		{T, q("birth_date!", "1990-01-01"), []string{"T1", "T3", "T4"}},
		{T, q("birth_date__gt", "1990-01-01"), []string{"T4"}},
		{T, q("birth_date__gt", "2000-12-31"), nil},
		{T, q("birth_date__gt!", "1990-01-01"), []string{"T1", "T2", "T3"}},
		{T, q("birth_date__gte", "1990-01-01"), []string{"T2", "T4"}},
		{T, q("birth_date__gte", "2001-01-01"), nil},
		{T, q("birth_date__gte!", "1990-01-01"), []string{"T1", "T3"}},
		{T, q("birth_date__lt", "1990-01-01"), []string{"T1"}},
		{T, q("birth_date__lt", "1980-05-17"), nil},
		{T, q("birth_date__lt!", "1990-01-01"), []string{"T2", "T3", "T4"}},
		{T, q("birth_date__lte", "1990-01-01"), []string{"T1", "T2"}},
		{T, q("birth_date__lte", "1980-05-16"), nil},
		{T, q("birth_date__lte!", "1990-01-01"), []string{"T3", "T4"}},
		{T, q("birth_date__in", "1980-05-17,2000-12-31"), []string{"T1", "T4"}},
		{T, q("birth_date__in", "1980-05-18"), nil},
		{T, q("birth_date__in!", "1980-05-17,2000-12-31"), []string{"T2", "T3"}},
		{T, q("birth_date__isnull", "true"), []string{"T3"}},
		{T, q("birth_date__isnull", "false"), []string{"T1", "T2", "T4"}},
		{T, q("birth_date__isnull!", "true"), []string{"T1", "T2", "T4"}},

		// ssn: exact in both input forms, in, isnull.
		{T, q("ssn", ssn1), []string{"T1"}},
		{T, q("ssn", ssn1dash), []string{"T1"}},
		{T, q("ssn", ssn1plus), []string{"T1"}},
		{T, q("ssn__exact", ssn4dash), []string{"T4"}},
		{T, q("ssn", ssn4c), []string{"T4"}},
		{T, q("ssn", ssnUnused), nil},
		{T, q("ssn!", ssn1dash), []string{"T2", "T3", "T4"}},
		{T, q("ssn__in", ssn1+","+ssn4dash), []string{"T1", "T4"}},
		{T, q("ssn__in", ssnUnused), nil},
		{T, q("ssn__in!", ssn1dash+","+ssn4c), []string{"T2", "T3"}},
		{T, q("ssn__isnull", "true"), []string{"T3"}},
		{T, q("ssn__isnull", "false"), []string{"T1", "T2", "T4"}},
		{T, q("ssn__isnull!", "true"), []string{"T1", "T2", "T4"}},
		{T, q("ssn__isnull!", "false"), []string{"T3"}},
		{P, q("ssn", ssn1dash), []string{"P1"}},
		{P, q("ssn__isnull", "true"), []string{"P2", "P3"}},

		// E-mail and phone (blind-indexed strings).
		{T, q("email", "annika.lst@example.com"), []string{"T1"}},
		{T, q("email", "ANNIKA.lst@example.com"), nil},
		{T, q("email!", "annika.lst@example.com"), []string{"T2", "T3", "T4"}},
		{T, q("email__iexact", "bertil.lst@example.ORG"), []string{"T2"}},
		{T, q("email__iexact!", "bertil.lst@example.ORG"), []string{"T1", "T3", "T4"}},
		{T, q("email__in", "annika.lst@example.com,Bertil.LST@Example.org"), []string{"T1", "T2"}},
		{T, q("email__in!", "annika.lst@example.com"), []string{"T2", "T3", "T4"}},
		{T, q("email__icontains", "LST@"), []string{"T1", "T2"}},
		{T, q("email__endswith", ".org"), []string{"T2"}},
		{T, q("email__isnull", "true"), []string{"T3", "T4"}},
		{T, q("email__isnull!", "true"), []string{"T1", "T2"}},
		{T, q("phone_number", "+46701234567"), []string{"T1"}},
		{T, q("phone_number", "46701234567"), nil},
		{T, q("phone_number!", "+46701234567"), []string{"T2", "T3", "T4"}},
		{T, q("phone_number__in", "+46701234567,0701111111"), []string{"T1", "T2"}},
		{T, q("phone_number__startswith", "070"), []string{"T2"}},
		{T, q("phone_number__contains", "7012"), []string{"T1"}},
		{T, q("phone_number__isnull", "true"), []string{"T3", "T4"}},
		{T, q("phone_number__isnull", "false"), []string{"T1", "T2"}},

		// Numbers: Address latitude (personal).
		{A, q("latitude", "59.329312"), []string{"A1"}},
		{A, q("latitude", "59.3293120"), []string{"A1"}},
		{A, q("latitude", "59.33"), nil},
		{A, q("latitude", "0"), []string{"A4"}},
		{A, q("latitude!", "59.329312"), []string{"A2", "A3", "A4"}},
		{A, q("latitude__gt", "0"), []string{"A1"}},
		{A, q("latitude__gt", "60"), nil},
		{A, q("latitude__gt!", "0"), []string{"A2", "A3", "A4"}},
		{A, q("latitude__gte", "0"), []string{"A1", "A4"}},
		{A, q("latitude__gte", "59.5"), nil},
		{A, q("latitude__gte!", "0"), []string{"A2", "A3"}},
		{A, q("latitude__lt", "0"), []string{"A2"}},
		{A, q("latitude__lt", "-33.5"), nil},
		{A, q("latitude__lt!", "0"), []string{"A1", "A3", "A4"}},
		{A, q("latitude__lte", "0"), []string{"A2", "A4"}},
		{A, q("latitude__lte", "-40"), nil},
		{A, q("latitude__lte!", "0"), []string{"A1", "A3"}},
		{A, q("latitude__in", "59.329312,-33.5"), []string{"A1", "A2"}},
		{A, q("latitude__in", "1,2"), nil},
		{A, q("latitude__in!", "59.329312,-33.5"), []string{"A3", "A4"}},
		{A, q("latitude__isnull", "true"), []string{"A3"}},
		{A, q("latitude__isnull", "false"), []string{"A1", "A2", "A4"}},
		{A, q("latitude__isnull!", "true"), []string{"A1", "A2", "A4"}},
		{A, q("longitude__isnull", "true"), allA},

		// Booleans.
		{T, q("ssn_is_coordination_number", "true"), []string{"T2", "T4"}},
		{T, q("ssn_is_coordination_number", "false"), []string{"T1", "T3"}},
		{T, q("ssn_is_coordination_number!", "true"), []string{"T1", "T3"}},
		{T, q("ssn_is_coordination_number__in", "true"), []string{"T2", "T4"}},
		{T, q("ssn_is_coordination_number__in", "true,false"), allT},
		{T, q("ssn_is_coordination_number__in!", "true"), []string{"T1", "T3"}},
		{T, q("ssn_is_coordination_number__isnull", "true"), nil},
		{T, q("ssn_is_coordination_number__isnull", "false"), allT},
		{T, q("ssn_is_coordination_number__isnull!", "false"), nil},
		{S, q("is_active", "true"), []string{"S1", "S3"}},
		{S, q("is_active", "false"), []string{"S2"}},
		{S, q("is_active!", "true"), []string{"S2"}},
		{S, q("is_active__in", "false"), []string{"S2"}},
		{S, q("is_active__in", "true,false"), allS},
		{S, q("is_active__in!", "false"), []string{"S1", "S3"}},
		{S, q("is_active__isnull", "true"), nil},
		{S, q("is_active__isnull", "false"), allS},
		{S, q("is_active__isnull!", "true"), allS},

		// References.
		{P, q("tenant", ids["T1"]), []string{"P1"}},
		{P, q("tenant__exact", ids["T3"]), nil},
		{P, q("tenant!", ids["T1"]), []string{"P2", "P3"}},
		{P, q("tenant__in", ids["T1"]+","+ids["T2"]), []string{"P1", "P2"}},
		{P, q("tenant__in", ids["T3"]+","+ids["T4"]), nil},
		{P, q("tenant__in!", ids["T1"]), []string{"P2", "P3"}},
		{P, q("tenant__isnull", "true"), []string{"P3"}},
		{P, q("tenant__isnull", "false"), []string{"P1", "P2"}},
		{P, q("tenant__isnull!", "true"), []string{"P1", "P2"}},
		{P, q("sub_tenant", ids["S1"]), []string{"P3"}},
		{P, q("sub_tenant__isnull", "true"), []string{"P1", "P2"}},
		{P, q("organization__isnull", "true"), []string{"P2", "P3"}},
		{P, q("organization__isnull", "false"), []string{"P1"}},
		{P, q("organization__isnull!", "true"), []string{"P1"}},
		{P, q("organization", ids["O1"]), []string{"P1"}},
		{P, q("organization!", ids["O1"]), []string{"P2", "P3"}},
		{P, q("tenant", otn["id"].(string)), nil},
		{T, q("organization", ids["O1"]), []string{"T1"}},
		{T, q("organization!", ids["O1"]), []string{"T2", "T3", "T4"}},
		{T, q("organization__in", ids["O1"]+","+ids["O2"]), []string{"T1", "T3"}},
		{T, q("organization__in!", ids["O1"]+","+ids["O2"]), []string{"T2", "T4"}},
		{T, q("organization__isnull", "true"), []string{"T2", "T4"}},
		{T, q("organization__isnull", "false"), []string{"T1", "T3"}},
		{T, q("organization", oorg["id"].(string)), nil},

		// id.
		{T, q("id", ids["T1"]), []string{"T1"}},
		{T, q("id", ids["O1"]), nil},
		{T, q("id!", ids["T1"]), []string{"T2", "T3", "T4"}},
		{T, q("id__in", ids["T1"]+","+ids["T3"]), []string{"T1", "T3"}},
		{T, q("id__in", ids["S1"]), nil},
		{T, q("id__in!", ids["T1"]+","+ids["T3"]), []string{"T2", "T4"}},
		{T, q("id__isnull", "false"), allT},
		{T, q("id__isnull", "true"), nil},
		{A, q("id__in", ids["A2"]+","+ids["A4"]), []string{"A2", "A4"}},

		// No filter: every row of the customer and nothing else.
		{T, "", allT},
		{S, "", allS},
		{P, "", []string{"P1", "P2", "P3"}},
		{O, "", allO},
		{A, "", allA},
	}

	// Date-times: created_at around the values the API returned.
	at := map[string]time.Time{}
	for _, l := range allT {
		ts, err := time.Parse(time.RFC3339Nano, objs[l]["created_at"].(string))
		if err != nil {
			t.Fatalf("%s: created_at does not parse as RFC 3339", l)
		}
		at[l] = ts
	}
	pick := func(keep func(time.Time) bool) []string {
		var out []string
		for _, l := range allT {
			if keep(at[l]) {
				out = append(out, l)
			}
		}
		return out
	}
	pivot := at["T2"]
	pivotText := objs["T2"]["created_at"].(string)
	ops := []struct {
		op   string
		keep func(time.Time) bool
	}{
		{"exact", func(x time.Time) bool { return x.Equal(pivot) }},
		{"gt", func(x time.Time) bool { return x.After(pivot) }},
		{"gte", func(x time.Time) bool { return !x.Before(pivot) }},
		{"lt", func(x time.Time) bool { return x.Before(pivot) }},
		{"lte", func(x time.Time) bool { return !x.After(pivot) }},
	}
	for _, o := range ops {
		keep := o.keep
		cases = append(cases,
			filterCase{T, q("created_at__"+o.op, pivotText), pick(keep)},
			filterCase{T, q("created_at__"+o.op+"!", pivotText), pick(func(x time.Time) bool { return !keep(x) })},
		)
	}
	if len(pick(ops[1].keep)) == 0 || len(pick(ops[3].keep)) == 0 {
		t.Fatal("created_at values do not straddle T2's: the gt/lt cases would prove little")
	}
	first, last := at["T1"], at["T4"]
	cases = append(cases,
		filterCase{T, q("created_at", pivotText), pick(func(x time.Time) bool { return x.Equal(pivot) })},
		// The same instant written with another offset.
		filterCase{T, q("created_at", pivot.In(time.FixedZone("", 2*3600)).Format(time.RFC3339Nano)), pick(func(x time.Time) bool { return x.Equal(pivot) })},
		filterCase{T, q("created_at", pivot.In(time.FixedZone("", -(23*3600+59*60))).Format(time.RFC3339Nano)), pick(func(x time.Time) bool { return x.Equal(pivot) })},
		filterCase{T, q("created_at__lt", first.Format(time.RFC3339Nano)), pick(func(x time.Time) bool { return x.Before(first) })},
		filterCase{T, q("created_at__gt", last.Format(time.RFC3339Nano)), nil},
		filterCase{T, q("created_at__in", objs["T1"]["created_at"].(string)+","+objs["T3"]["created_at"].(string)),
			pick(func(x time.Time) bool { return x.Equal(at["T1"]) || x.Equal(at["T3"]) })},
		filterCase{T, q("created_at__in!", objs["T1"]["created_at"].(string)+","+objs["T3"]["created_at"].(string)),
			pick(func(x time.Time) bool { return !x.Equal(at["T1"]) && !x.Equal(at["T3"]) })},
		filterCase{T, q("created_at__isnull", "true"), nil},
		filterCase{T, q("created_at__isnull", "false"), allT},
		// A time between two microseconds (Go's time.Now() has
		// nanoseconds) compares as written with the stored ones.
		filterCase{T, q("created_at__in", pivot.Add(time.Nanosecond).Format(time.RFC3339Nano)+","+objs["T1"]["created_at"].(string)),
			pick(func(x time.Time) bool { return x.Equal(at["T1"]) })},
	)
	for _, d := range []time.Duration{time.Nanosecond, -time.Nanosecond} {
		between := pivot.Add(d)
		text := between.Format(time.RFC3339Nano)
		for op, keep := range map[string]func(time.Time) bool{
			"":     func(x time.Time) bool { return x.Equal(between) },
			"__gt": func(x time.Time) bool { return x.After(between) }, "__gte": func(x time.Time) bool { return !x.Before(between) },
			"__lt": func(x time.Time) bool { return x.Before(between) }, "__lte": func(x time.Time) bool { return !x.After(between) },
		} {
			cases = append(cases,
				filterCase{T, q("created_at"+op, text), pick(keep)},
				filterCase{T, q("created_at"+op+"!", text), pick(func(x time.Time) bool { return !keep(x) })})
		}
	}

	for i, tc := range cases {
		t.Run(fmt.Sprintf("%03d_%s_%s", i, pathLabel(tc.path), strings.Trim(paramNames(tc.query), "[]")), func(t *testing.T) {
			c := c.forTest(t)
			got := idsOf(c.listObjects(tc.path, tc.query))
			want := make([]string, len(tc.want))
			for j, l := range tc.want {
				want[j] = ids[l]
			}
			if !sameSet(got, want) {
				t.Errorf("case %d %s %s: got rows %s, want %s", i, pathLabel(tc.path), paramNames(tc.query), labels.of(got), labels.of(want))
			}
			// The same with a filter that keeps every row but can only be
			// decided after decryption: the result must not change.
			if all, ok := keepAllFilter[tc.path]; ok {
				got := idsOf(c.listObjects(tc.path, joinQueries(tc.query, all)))
				if !sameSet(got, want) {
					t.Errorf("case %d %s %s, decided in the service: got rows %s, want %s", i, pathLabel(tc.path), paramNames(tc.query), labels.of(got), labels.of(want))
				}
			}
		})
	}

	// Digits past the ninth, which time.Parse drops unseen, count too: a
	// non-zero one puts the time just after T2's, as a nanosecond does;
	// zeros say nothing more.
	micro := pivot.UTC().Format("2006-01-02T15:04:05.000000Z")
	nanoAfter := pivot.Add(time.Nanosecond).Format(time.RFC3339Nano)
	for _, op := range []string{"", "__gt", "__gte", "__lt", "__lte", "!", "__gt!", "__lte!"} {
		for _, past := range []string{"0001", "0000000001", "0000000000009"} {
			got := idsOf(c.listObjects(T, q("created_at"+op, strings.TrimSuffix(micro, "Z")+past+"Z")))
			if want := idsOf(c.listObjects(T, q("created_at"+op, nanoAfter))); !sameSet(got, want) {
				t.Errorf("created_at%s with T2's value and %d more digits: rows %s, a nanosecond after it %s", op, len(past), labels.of(got), labels.of(want))
			}
		}
		for _, zeros := range []string{"000", "0000000000000"} {
			nano := strings.TrimSuffix(micro, "Z") + zeros + "Z"
			got := idsOf(c.listObjects(T, q("created_at"+op, nano)))
			if want := idsOf(c.listObjects(T, q("created_at"+op, micro))); !sameSet(got, want) {
				t.Errorf("created_at%s with T2's value and %d zeros more: rows %s, in microseconds %s", op, len(zeros), labels.of(got), labels.of(want))
			}
		}
	}
}

// TestListQueryErrors: every malformed list query is a 400 on the
// offending parameter's name; nothing is silently ignored.
func TestListQueryErrors(t *testing.T) {
	t.Parallel()
	pn := loadPersonnummer(t)
	bad := pn.invalid(t)
	e := newEnv(t)
	c := e.newCustomer("List errors AB")
	c.create(tenantPath, map[string]any{"first_name": personal("Felina")})
	T, P, A, O := tenantPath, piPath, addressPath, orgPath
	cases := []struct {
		path  string
		query string
		key   string
	}{
		{T, "nonexistent=1", "nonexistent"},
		{T, "nonexistent__icontains=1", "nonexistent__icontains"},
		{T, "is_active=true", "is_active"}, // a Subtenant field, not a Tenant one
		{T, "first_name__regex=a", "first_name__regex"},
		{T, "first_name__gt=a", "first_name__gt"},
		{T, "first_name__icontains__exact=a", "first_name__icontains__exact"},
		{T, "first_name__=a", "first_name__"},
		{T, "first_name__isnull=maybe", "first_name__isnull"},
		{T, "birth_date=notadate", "birth_date"},
		{T, "birth_date=1990-02-30", "birth_date"},
		{T, "birth_date__gt=19900101", "birth_date__gt"},
		{T, "birth_date__in=1990-01-01,bad", "birth_date__in"},
		{T, "birth_date__icontains=1990", "birth_date__icontains"},
		{T, "created_at__gt=yesterday", "created_at__gt"},
		{T, "birth_date__lt=0000-12-31", "birth_date__lt"},
		{T, "created_at__gt=0000-06-01T00:00:00Z", "created_at__gt"},
		{T, "created_at__lt=" + url.QueryEscape("9999-12-31T23:00:00-14:00"), "created_at__lt"},
		// RFC 3339's offsets end at 23:59, where Go's parser goes on.
		{T, "created_at__gt=" + url.QueryEscape("2026-12-03T00:00:00+24:00"), "created_at__gt"},
		{T, "created_at__gt=" + url.QueryEscape("2026-12-03T00:00:00-24:00"), "created_at__gt"},
		{T, "created_at__gt=" + url.QueryEscape("2026-12-03T00:00:00+23:60"), "created_at__gt"},
		{T, "created_at__gt=" + url.QueryEscape("2026-12-03T00:00:00+01:00Z"), "created_at__gt"},
		// Go's parser takes a "," before the fraction and a one-digit
		// hour; RFC 3339 has neither.
		{T, "created_at__lt=" + url.QueryEscape("2026-12-03T18:41:20,7128571Z"), "created_at__lt"},
		{T, "created_at__gte=" + url.QueryEscape("2026-12-03T18:41:20,712857Z"), "created_at__gte"},
		{T, "created_at__lt=" + url.QueryEscape("2026-12-03T8:00:00Z"), "created_at__lt"},
		{T, "created_at__lt=" + url.QueryEscape("2026-12-03T08:00:00.Z"), "created_at__lt"},
		{T, "created_at__lt=" + url.QueryEscape("2026-12-03T08:00:00+0100"), "created_at__lt"},
		{T, "created_at__lt=" + url.QueryEscape("2026-12-03t08:00:00z"), "created_at__lt"},
		{T, "created_at__lt=" + url.QueryEscape("2026-12-03 08:00:00Z"), "created_at__lt"},
		{T, "created_at__startswith=2026", "created_at__startswith"},
		{A, "latitude__gt=abc", "latitude__gt"},
		{A, "latitude__gt=1e-400", "latitude__gt"},
		{A, "latitude=1,5", "latitude"},
		{A, "latitude__contains=5", "latitude__contains"},
		{P, "tenant=notauuid", "tenant"},
		{P, "tenant__in=" + "00000000-0000-0000-0000-000000000000,nope", "tenant__in"},
		{P, "tenant__icontains=abc", "tenant__icontains"},
		{P, "tenant__isnull=yes", "tenant__isnull"},
		{T, "ssn=" + url.QueryEscape(bad), "ssn"},
		{T, "ssn__in=" + url.QueryEscape(bad), "ssn__in"},
		{T, "ssn__icontains=1912", "ssn__icontains"},
		{T, "ssn__startswith=1912", "ssn__startswith"},
		{T, "ssn__gt=191212121212", "ssn__gt"},
		{T, "ssn_is_coordination_number=yes", "ssn_is_coordination_number"},
		{T, "ssn_is_coordination_number__gt=true", "ssn_is_coordination_number__gt"},
		{T, "id=notauuid", "id"},
		{T, "id__contains=abc", "id__contains"},
		{T, "_foo=1", "_foo"},
		{T, "_=1", "_"},
		{T, "global_realestates=1", "global_realestates"},
		{T, "global_segments=1", "global_segments"},
		{O, "global_realestates=" + "00000000-0000-0000-0000-000000000000", "global_realestates"},
		{T, "_page=1", "_page"},
		{T, "_page_size=5", "_page_size"},
		{T, "_page=0&_page_size=5", "_page"},
		{T, "_page=-1&_page_size=5", "_page"},
		{T, "_page=x&_page_size=5", "_page"},
		{T, "_page=1&_page_size=1001", "_page_size"},
		{T, "_page=1&_page_size=0", "_page_size"},
		{T, "_slim=yes", "_slim"},
		{T, "_statistics=1", "_statistics"},
		{T, "_jsonl=yes", "_jsonl"},
		{T, "_order_by=nosuch", "_order_by"},
		{T, "first_name=a&first_name=b", "first_name"},
		{T, "_order_by=last_name&_order_by=first_name", "_order_by"},
		{T, "_order_by=last_name,-last_name", "_order_by"},
		{T, "created_at=" + url.QueryEscape("2026-11-30 16:44:27Z"), "created_at"},
		{T, "_page=1&_page=2&_page_size=5", "_page"},
		{T, "_search=", "_search"},
	}
	for i, tc := range cases {
		t.Run(fmt.Sprintf("%02d_%s", i, strings.Trim(paramNames(tc.query), "[]")), func(t *testing.T) {
			c := c.forTest(t)
			r := c.getList(tc.path, tc.query)
			errorKeys(t, r, tc.key)
			if strings.Contains(string(r.raw), bad) {
				t.Errorf("case %d: the error body echoes an identity number", i)
			}
		})
	}
	// _jsonl with _statistics: a 400 on one of the two.
	for _, qs := range []string{"_jsonl=true&_statistics=true", "_statistics=true&_jsonl=true"} {
		r := c.getList(T, qs)
		if r.status != http.StatusBadRequest {
			t.Errorf("%s: status %d, want 400", paramNames(qs), r.status)
			continue
		}
		ks := keys(r.obj)
		if len(ks) == 0 {
			t.Errorf("%s: no error key", paramNames(qs))
		}
		for _, k := range ks {
			if k != "_jsonl" && k != "_statistics" {
				t.Errorf("%s: unexpected error key %q", paramNames(qs), k)
			}
		}
	}
	// Errors on several parameters: one key each.
	errorKeys(t, c.getList(T, "nonexistent=1&birth_date=x&_foo=1"), "nonexistent", "birth_date", "_foo")
	// The same parameters valid: 200.
	for _, qs := range []string{"_page=1&_page_size=1000", "_jsonl=true&_statistics=false", "_slim=false", "ssn_is_coordination_number=false"} {
		if r := c.getList(T, qs); r.status != http.StatusOK {
			t.Errorf("%s: status %d, want 200 (error keys %v)", paramNames(qs), r.status, keys(r.obj))
		}
	}
}

// A list's __in filters hold at most query.MaxInValues values in all, on
// both engines: past it a 400 on the parameter that passes it, where
// SQLite, one bound parameter per value, failed with a 500 from 32,766.
func TestListInValuesBounded(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	c := e.newCustomer("List in AB")
	c.create(orgPath, map[string]any{"name": "In Bound AB", "custom_id": "in-7"})
	values := func(n int) string {
		v := make([]string, n)
		for i := range v {
			v[i] = strconv.Itoa(i)
		}
		return strings.Join(v, ",")
	}
	objs := c.listObjects(orgPath, "custom_id__in="+values(query.MaxInValues-1)+"&name__in=In+Bound+AB")
	if len(objs) != 0 {
		t.Errorf("custom_id__in of %d values beside name__in: %d objects, want 0", query.MaxInValues-1, len(objs))
	}
	if objs := c.listObjects(orgPath, "custom_id__in=in-7,"+values(query.MaxInValues-1)); len(objs) != 1 {
		t.Errorf("custom_id__in of %d values: %d objects, want 1", query.MaxInValues, len(objs))
	}
	errorKeys(t, c.getList(orgPath, "custom_id__in="+values(query.MaxInValues+1)), "custom_id__in")
	// 32,766 empty values: SQLite's bound on one statement's parameters.
	errorKeys(t, c.getList(orgPath, "custom_id__in="+strings.Repeat(",", 32765)), "custom_id__in")
	// The bound is on all of them together, and negated ones count.
	half := values(query.MaxInValues/2 + 1)
	errorKeys(t, c.getList(orgPath, "custom_id__in!="+half+"&name__in="+half), "name__in")
}

// idsSortedBy returns rows' ids sorted by less.
func idsSortedBy(objs []map[string]any, less func(a, b map[string]any) int) []string {
	s := append([]map[string]any(nil), objs...)
	sort.SliceStable(s, func(i, j int) bool {
		if c := less(s[i], s[j]); c != 0 {
			return c < 0
		}
		return s[i]["id"].(string) < s[j]["id"].(string)
	})
	return idsOf(s)
}

func compareStrings(a, b map[string]any, k string) int {
	return strings.Compare(a[k].(string), b[k].(string))
}

func compareNumbers(a, b map[string]any, k string) int {
	x, y := a[k].(float64), b[k].(float64)
	switch {
	case x < y:
		return -1
	case x > y:
		return 1
	}
	return 0
}

func TestListOrdering(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	c := e.newCustomer("List order AB")
	lastNames := []string{"Ekorder", "Bergorder", "Ekorder", "Dahlorder", "Ahlorder", "Ekorder", "Bergorder", "Ekorder"}
	customIDs := []string{"C2", "C1", "C2", "C3", "C1", "C2", "C0", "C1"}
	birth := []string{"1971-03-01", "1965-12-24", "1999-09-09", "1980-01-01", "1971-02-28", "2001-06-30", "1955-05-05", "1971-03-02"}
	labels := rowLabels{}
	var rows []map[string]any
	for i := range lastNames {
		o := c.create(tenantPath, map[string]any{
			"first_name": personal(fmt.Sprintf("Ordina%02d", i)), "last_name": personal(lastNames[i]),
			"custom_id": customIDs[i], "birth_date": personal(birth[i]),
		})
		labels[o["id"].(string)] = fmt.Sprintf("T%d", i)
		rows = append(rows, o)
	}
	byCreated := func(a, b map[string]any) int { return compareStrings(a, b, "created_at") }
	cases := []struct {
		query string
		want  []string
	}{
		{"", idsSortedBy(rows, byCreated)},
		{"_order_by=created_at", idsSortedBy(rows, byCreated)},
		{"_order_by=-created_at", idsSortedBy(rows, func(a, b map[string]any) int { return -byCreated(a, b) })},
		{"_order_by=last_name", idsSortedBy(rows, func(a, b map[string]any) int { return compareStrings(a, b, "last_name") })},
		{"_order_by=-last_name", idsSortedBy(rows, func(a, b map[string]any) int { return -compareStrings(a, b, "last_name") })},
		{"_order_by=birth_date", idsSortedBy(rows, func(a, b map[string]any) int { return compareStrings(a, b, "birth_date") })},
		{"_order_by=-birth_date", idsSortedBy(rows, func(a, b map[string]any) int { return -compareStrings(a, b, "birth_date") })},
		{"_order_by=custom_id", idsSortedBy(rows, func(a, b map[string]any) int { return compareStrings(a, b, "custom_id") })},
		{"_order_by=custom_id,-created_at", idsSortedBy(rows, func(a, b map[string]any) int {
			if c := compareStrings(a, b, "custom_id"); c != 0 {
				return c
			}
			return -byCreated(a, b)
		})},
		{"_order_by=-custom_id,created_at", idsSortedBy(rows, func(a, b map[string]any) int {
			if c := compareStrings(a, b, "custom_id"); c != 0 {
				return -c
			}
			return byCreated(a, b)
		})},
		{"_order_by=last_name,-custom_id", idsSortedBy(rows, func(a, b map[string]any) int {
			if c := compareStrings(a, b, "last_name"); c != 0 {
				return c
			}
			return -compareStrings(a, b, "custom_id")
		})},
		{"_order_by=-id", idsSortedBy(rows, func(a, b map[string]any) int { return -compareStrings(a, b, "id") })},
		{"_order_by=id", idsSortedBy(rows, func(a, b map[string]any) int { return 0 })},
		// With a filter on a personal field, ordered on a clear one.
		{"_order_by=custom_id&last_name=Ekorder", idsSortedBy(objectsWhere(rows, "last_name", "Ekorder"),
			func(a, b map[string]any) int { return compareStrings(a, b, "custom_id") })},
	}
	for i, tc := range cases {
		got := idsOf(c.listObjects(tenantPath, tc.query))
		if !sameSequence(got, tc.want) {
			t.Errorf("case %d %s: got order %s, want %s", i, paramNames(tc.query), labels.of(got), labels.of(tc.want))
		}
	}

	// Ties on last_name are ordered by id ascending, both ways.
	var ek []string
	for _, o := range rows {
		if o["last_name"] == "Ekorder" {
			ek = append(ek, o["id"].(string))
		}
	}
	if len(ek) < 3 {
		t.Fatal("the tie group is too small to prove anything")
	}
	for _, qs := range []string{"_order_by=last_name", "_order_by=-last_name", "_order_by=last_name&_slim=true"} {
		var tie []string
		for _, id := range idsOf(c.listObjects(tenantPath, qs)) {
			for _, x := range ek {
				if x == id {
					tie = append(tie, id)
				}
			}
		}
		if len(tie) != len(ek) || !sort.StringsAreSorted(tie) {
			t.Errorf("%s: rows with equal last_name are not in ascending id order: %s", paramNames(qs), labels.of(tie))
		}
	}

	// Numbers order numerically, not as text; names on Organization.
	var addrs []map[string]any
	for i, lat := range []float64{9.5, 10.25, -2, 45, 10.25} {
		addrs = append(addrs, c.create(addressPath, map[string]any{
			"street": personal("Ordergatan"), "postal_code": personal("333 44"), "city": personal("Orderby"),
			"country": "Sverige", "latitude": lat, "custom_id": fmt.Sprintf("A%d", i),
		}))
	}
	for _, o := range addrs {
		labels[o["id"].(string)] = "A:" + o["custom_id"].(string)
	}
	for _, desc := range []bool{false, true} {
		qs := "_order_by=latitude"
		if desc {
			qs = "_order_by=-latitude"
		}
		want := idsSortedBy(addrs, func(a, b map[string]any) int {
			if desc {
				return -compareNumbers(a, b, "latitude")
			}
			return compareNumbers(a, b, "latitude")
		})
		if got := idsOf(c.listObjects(addressPath, qs)); !sameSequence(got, want) {
			t.Errorf("%s: got order %s, want %s", paramNames(qs), labels.of(got), labels.of(want))
		}
	}
	var orgs []map[string]any
	for _, n := range []string{"Mango AB", "apple AB", "Banana AB", "Zeta AB"} {
		orgs = append(orgs, c.create(orgPath, map[string]any{"name": n}))
	}
	for _, o := range orgs {
		labels[o["id"].(string)] = "O:" + o["name"].(string)
	}
	for _, desc := range []bool{false, true} {
		qs := "_order_by=name"
		if desc {
			qs = "_order_by=-name"
		}
		want := idsSortedBy(orgs, func(a, b map[string]any) int {
			if desc {
				return -compareStrings(a, b, "name")
			}
			return compareStrings(a, b, "name")
		})
		got := idsOf(c.listObjects(orgPath, qs))
		// Byte order puts upper case first; the contract does not fix a
		// collation, so check only that the result is a consistent order:
		// ascending is the reverse of descending.
		if len(got) != len(want) || !sameSet(got, want) {
			t.Errorf("%s: got rows %s, want %s", paramNames(qs), labels.of(got), labels.of(want))
		}
		if desc {
			asc := idsOf(c.listObjects(orgPath, "_order_by=name"))
			for i := range asc {
				if asc[i] != got[len(got)-1-i] {
					t.Errorf("-name is not the reverse of name")
					break
				}
			}
		}
	}

	// Unknown order fields.
	for _, qs := range []string{"_order_by=nosuch", "_order_by=-nosuch", "_order_by=last_name,nosuch", "_order_by=is_active", "_order_by=", "_order_by=last_name,"} {
		errorKeys(t, c.getList(tenantPath, qs), "_order_by")
	}
}

func objectsWhere(objs []map[string]any, k string, v any) []map[string]any {
	var out []map[string]any
	for _, o := range objs {
		if o[k] == v {
			out = append(out, o)
		}
	}
	return out
}

// TestListOrderingNulls: the contract does not say where nulls sort; the
// reasonable reading checked here is that they form one block at one end,
// at the other end when descending, and at the same end for a personal
// field (sorted in the service) as for a clear one (sorted in SQL).
func TestListOrderingNulls(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	c := e.newCustomer("List nulls AB")
	hasNull := map[string]bool{}
	for i := 0; i < 6; i++ {
		body := map[string]any{"first_name": personal(fmt.Sprintf("Nullina%d", i))}
		if i%2 == 0 {
			body["last_name"] = personal(fmt.Sprintf("Nulltest%d", i))
			body["custom_id"] = fmt.Sprintf("N%d", i)
		}
		o := c.create(subPath, body)
		hasNull[o["id"].(string)] = i%2 == 1
	}
	end := func(qs string) string {
		ids := idsOf(c.listObjects(subPath, qs))
		if len(ids) != 6 {
			t.Fatalf("%s: %d rows, want 6", paramNames(qs), len(ids))
		}
		if hasNull[ids[0]] && hasNull[ids[1]] && hasNull[ids[2]] && !hasNull[ids[3]] {
			return "first"
		}
		if !hasNull[ids[2]] && hasNull[ids[3]] && hasNull[ids[4]] && hasNull[ids[5]] {
			return "last"
		}
		t.Errorf("%s: the rows with a null key are not one block at one end", paramNames(qs))
		return "?"
	}
	clearAsc, clearDesc := end("_order_by=custom_id"), end("_order_by=-custom_id")
	persAsc, persDesc := end("_order_by=last_name"), end("_order_by=-last_name")
	if clearAsc == clearDesc {
		t.Errorf("custom_id: nulls at the same end ascending and descending")
	}
	if persAsc == persDesc {
		t.Errorf("last_name: nulls at the same end ascending and descending")
	}
	if clearAsc != persAsc || clearDesc != persDesc {
		t.Errorf("nulls sort at one end for a clear field and at another for a personal field")
	}
}

// seedPagingRows creates n tenants with ties in last_name and custom_id;
// every third has the marker "Pagmark" in first_name.
func seedPagingRows(c *client, n int) rowLabels {
	labels := rowLabels{}
	last := []string{"Pagsson", "Andepag", "Zetterpag", "Mopag", "Ekpag"}
	for i := 0; i < n; i++ {
		first := fmt.Sprintf("Pagina%02d", i)
		if i%3 == 0 {
			first = fmt.Sprintf("Pagmark%02d", i)
		}
		o := c.create(tenantPath, map[string]any{
			"first_name": personal(first), "last_name": personal(last[i%len(last)]),
			"custom_id": fmt.Sprintf("P-%02d", (i*7)%11),
		})
		labels[o["id"].(string)] = fmt.Sprintf("T%d", i)
	}
	return labels
}

func TestListPaging(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	c := e.newCustomer("List paging AB")
	const n = 23
	labels := seedPagingRows(c, n)
	queries := []string{
		"",
		"_order_by=custom_id",
		"_order_by=-custom_id,last_name",
		"_order_by=last_name",
		"_order_by=-last_name",
		"first_name__icontains=PAGMARK",
		"first_name__icontains=pagmark&_order_by=-custom_id",
		"first_name__icontains=pagmark&_order_by=last_name",
		"first_name__icontains!=pagmark&custom_id__in=P-00,P-07,P-03",
		"_search=pagmark&_order_by=custom_id",
	}
	for qi, qs := range queries {
		t.Run(fmt.Sprintf("%02d", qi), func(t *testing.T) {
			c := c.forTest(t)
			full := idsOf(c.listObjects(tenantPath, qs))
			if qi == 0 && len(full) != n {
				t.Fatalf("unpaged list has %d rows, want %d", len(full), n)
			}
			if len(full) == 0 {
				t.Fatalf("query %d %s selects nothing: paging would prove little", qi, paramNames(qs))
			}
			for _, size := range []int{1, 5, 7, 23, 50} {
				pages := (len(full) + size - 1) / size
				for k := 1; k <= pages+1; k++ {
					pq := joinQueries(qs, fmt.Sprintf("_page=%d&_page_size=%d", k, size))
					got := idsOf(c.listObjects(tenantPath, pq))
					lo, hi := (k-1)*size, k*size
					if lo > len(full) {
						lo = len(full)
					}
					if hi > len(full) {
						hi = len(full)
					}
					want := full[lo:hi]
					if !sameSequence(got, want) {
						t.Errorf("query %d %s, page %d of size %d: got %s, want %s", qi, paramNames(qs), k, size, labels.of(got), labels.of(want))
					}
				}
			}
			// Far past the end: an empty array.
			far := joinQueries(qs, "_page=1000&_page_size=1000")
			if got := c.listObjects(tenantPath, far); len(got) != 0 {
				t.Errorf("query %d: a page past the end has %d rows", qi, len(got))
			}
			r := c.getList(tenantPath, joinQueries(qs, "_page=99&_page_size=50"))
			if r.status != http.StatusOK || strings.TrimSpace(string(r.raw)) != "[]" {
				t.Errorf("query %d: a page past the end: status %d, not an empty array", qi, r.status)
			}
		})
	}
}

// listStatistics lists with _statistics=true and returns data ids and statistics.
func (c *client) listStatistics(path, q string) ([]string, map[string]any) {
	t := c.e.t
	t.Helper()
	r := c.getList(path, joinQueries(q, "_statistics=true"))
	if r.status != http.StatusOK || r.obj == nil {
		t.Fatalf("%s: status %d or body not an object (error keys %v)", paramNames(q), r.status, keys(r.obj))
	}
	if len(r.obj) != 2 {
		t.Errorf("%s: statistics body has keys %v, want data and statistics", paramNames(q), keys(r.obj))
	}
	data, ok := r.obj["data"].([]any)
	if !ok {
		t.Fatalf("%s: data is not an array", paramNames(q))
	}
	stats, ok := r.obj["statistics"].(map[string]any)
	if !ok {
		t.Fatalf("%s: statistics is not an object", paramNames(q))
	}
	for _, k := range []string{"count", "page", "page_size", "page_count"} {
		if _, ok := stats[k]; !ok {
			t.Errorf("%s: statistics lacks %q", paramNames(q), k)
		}
	}
	if len(stats) != 4 {
		t.Errorf("%s: statistics has keys %v", paramNames(q), keys(stats))
	}
	ids := make([]string, len(data))
	for i, d := range data {
		m, _ := d.(map[string]any)
		ids[i], _ = m["id"].(string)
	}
	return ids, stats
}

func TestListStatistics(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	c := e.newCustomer("List stats AB")
	labels := seedPagingRows(c, 13)
	other := e.newCustomer("List stats other AB")
	seedPagingRows(other, 4)
	queries := []string{
		"",
		"_order_by=last_name",
		"custom_id__in=P-00,P-07",
		"custom_id__icontains=p-0",
		"first_name__icontains=pagmark",
		"first_name__icontains=pagmark&_order_by=custom_id",
		"first_name__icontains=pagmark&_order_by=-last_name",
		"_search=pagmark",
		"_search=ANDEPAG&_order_by=custom_id",
		"last_name=Pagsson",
		"first_name__icontains=nomatch",
		"_slim=true&custom_id__startswith=P",
	}
	num := func(v any) (int, bool) {
		f, ok := v.(float64)
		return int(f), ok && f == math.Trunc(f)
	}
	for qi, qs := range queries {
		t.Run(fmt.Sprintf("%02d", qi), func(t *testing.T) {
			c := c.forTest(t)
			full := idsOf(c.listObjects(tenantPath, qs))
			ids, st := c.listStatistics(tenantPath, qs)
			if !sameSequence(ids, full) {
				t.Errorf("query %d %s: statistics data %s differs from the plain list %s", qi, paramNames(qs), labels.of(ids), labels.of(full))
			}
			if n, ok := num(st["count"]); !ok || n != len(full) {
				t.Errorf("query %d %s: count is not %d", qi, paramNames(qs), len(full))
			}
			for _, k := range []string{"page", "page_size", "page_count"} {
				if st[k] != nil {
					t.Errorf("query %d %s: %s is not null when not paging", qi, paramNames(qs), k)
				}
			}
			for _, size := range []int{1, 3, 5, 1000} {
				pages := (len(full) + size - 1) / size
				for _, k := range []int{1, 2, pages, pages + 1} {
					if k < 1 {
						continue
					}
					ids, st := c.listStatistics(tenantPath, joinQueries(qs, fmt.Sprintf("_page=%d&_page_size=%d", k, size)))
					lo, hi := min((k-1)*size, len(full)), min(k*size, len(full))
					if !sameSequence(ids, full[lo:hi]) {
						t.Errorf("query %d %s page %d size %d: data %s, want %s", qi, paramNames(qs), k, size, labels.of(ids), labels.of(full[lo:hi]))
					}
					if n, ok := num(st["count"]); !ok || n != len(full) {
						t.Errorf("query %d %s page %d size %d: count is not the unpaged count %d", qi, paramNames(qs), k, size, len(full))
					}
					if n, ok := num(st["page"]); !ok || n != k {
						t.Errorf("query %d page %d size %d: page is not %d", qi, k, size, k)
					}
					if n, ok := num(st["page_size"]); !ok || n != size {
						t.Errorf("query %d page %d size %d: page_size is not %d", qi, k, size, size)
					}
					if n, ok := num(st["page_count"]); !ok || n != pages {
						t.Errorf("query %d page %d size %d: page_count is not ceil(%d/%d) = %d", qi, k, size, len(full), size, pages)
					}
				}
			}
		})
	}
	// _statistics=false: the plain array.
	if r := c.getList(tenantPath, "_statistics=false"); r.status != http.StatusOK || r.objects == nil {
		t.Errorf("_statistics=false: status %d or body not an array", r.status)
	}
}

// slimFields is the slim field set of each resource (contract section 4).
var slimFields = map[string][]string{
	piPath:      {"id", "created_at", "tenant", "sub_tenant", "organization", "custom_id"},
	tenantPath:  {"id", "created_at", "organization", "custom_id"},
	subPath:     {"id", "created_at", "organization", "custom_id"},
	orgPath:     {"id", "name"},
	addressPath: {"id", "created_at", "country", "organization", "custom_id"},
}

func TestListSlim(t *testing.T) {
	t.Parallel()
	pn := loadPersonnummer(t)
	ssn, _ := pn.valid(t, "197103011032")
	e := newEnv(t)
	c := e.newCustomer("List slim AB")
	org := c.create(orgPath, map[string]any{"name": "Slimorg", "custom_id": "SLIM-O"})
	adr := c.create(addressPath, map[string]any{
		"street": personal("Slimgatan"), "street_number": "12B", "postal_code": personal("444 55"), "city": personal("Slimstad"),
		"country": "Sverige", "latitude": 12.5, "longitude": 13.5, "custom_id": "SLIM-A", "organization": ref(org),
		"care_of": personal("Slimvard"),
	})
	person := func(extra string) map[string]any {
		return map[string]any{
			"first_name": personal("Slimfornamn" + extra), "last_name": personal("Slimefternamn" + extra),
			"email": personal("slim" + extra + "@slim-example.com"), "phone_number": personal("+4670555000" + extra),
			"ssn": ssn, "birth_date": personal("1971-03-01"), "custom_id": "SLIM-" + extra, "organization": ref(org),
			"current_registered_address": ref(adr),
		}
	}
	tb := person("1")
	tb["corporate_name"] = personal("Slimbolaget AB")
	tn := c.create(tenantPath, tb)
	sb := person("2")
	sb["is_active"] = false
	sub := c.create(subPath, sb)
	pb := person("3")
	delete(pb, "current_registered_address")
	pb["tenant"] = ref(tn)
	pb["previous_address"] = ref(adr)
	pi := c.create(piPath, pb)
	c.create(piPath, map[string]any{"sub_tenant": ref(sub), "first_name": personal("Slimsub")})
	full := map[string]map[string]any{piPath: pi, tenantPath: tn, subPath: sub, orgPath: org, addressPath: adr}
	searches := map[string]string{piPath: "slimfor", tenantPath: "SLIMBOLAGET", subPath: "slimefternamn2", orgPath: "slimorg", addressPath: "slimstad"}
	orders := map[string]string{piPath: "last_name", tenantPath: "-first_name", subPath: "email", orgPath: "name", addressPath: "city"}
	personalValues := []string{"Slimfornamn", "Slimefternamn", "slim-example.com", "+4670555000", ssn, "Slimgatan", "Slimstad", "444 55", "Slimvard", "Slimbolaget"}
	for _, path := range []string{piPath, tenantPath, subPath, orgPath, addressPath} {
		slim := slimFields[path]
		queries := []string{
			"_slim=true",
			"_slim=true&_search=" + url.QueryEscape(searches[path]),
			"_slim=true&_order_by=" + orders[path],
			"_slim=true&_page=1&_page_size=1",
			"_slim=true&_statistics=true",
			"_slim=true&id=" + full[path]["id"].(string),
		}
		if path != orgPath {
			queries = append(queries, "_slim=true&custom_id__icontains=slim")
		}
		if path == tenantPath || path == subPath || path == piPath {
			queries = append(queries, "_slim=true&first_name__istartswith=slim", "_slim=true&ssn="+url.QueryEscape(ssn))
		}
		for _, qs := range queries {
			r := c.getList(path, qs)
			var objs []any
			if strings.Contains(qs, "_statistics") {
				objs, _ = r.obj["data"].([]any)
			} else {
				objs = r.objects
			}
			if r.status != http.StatusOK || len(objs) == 0 {
				t.Errorf("%s %s: status %d, %d objects; want 200 and at least one", pathLabel(path), paramNames(qs), r.status, len(objs))
				continue
			}
			for i, o := range objs {
				m, _ := o.(map[string]any)
				got := keys(m)
				sort.Strings(got)
				want := append([]string(nil), slim...)
				sort.Strings(want)
				if !reflect.DeepEqual(got, want) {
					t.Errorf("%s %s: object %d has fields %v, want %v", pathLabel(path), paramNames(qs), i, got, want)
				}
				if m["id"] == full[path]["id"] {
					for _, k := range slim {
						if !reflect.DeepEqual(m[k], full[path][k]) {
							t.Errorf("%s %s: slim field %s differs from the full object's", pathLabel(path), paramNames(qs), k)
						}
					}
				}
			}
			for _, v := range personalValues {
				if strings.Contains(string(r.raw), v) {
					t.Errorf("%s %s: the slim body holds a personal value", pathLabel(path), paramNames(qs))
					break
				}
			}
		}
		// _slim=false and the default: every field.
		for _, qs := range []string{"", "_slim=false"} {
			for _, m := range c.listObjects(path, joinQueries(qs, "id="+full[path]["id"].(string))) {
				if !reflect.DeepEqual(m, full[path]) {
					t.Errorf("%s %s: the listed object differs from the created one", pathLabel(path), paramNames(qs))
				}
			}
		}
	}
}

func TestListJSONL(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	c := e.newCustomer("List jsonl AB")
	seedPagingRows(c, 11)
	c.create(orgPath, map[string]any{"name": "Jsonl org"})
	c.create(addressPath, map[string]any{"street": personal("Jsonlgatan"), "postal_code": personal("555 66"), "city": personal("Jsonlby"), "country": "Sverige", "latitude": 1.25})
	cases := []struct{ path, query string }{
		{tenantPath, ""},
		{tenantPath, "_order_by=-last_name"},
		{tenantPath, "_order_by=custom_id,-created_at"},
		{tenantPath, "first_name__icontains=pagmark"},
		{tenantPath, "first_name__icontains=pagmark&_order_by=custom_id"},
		{tenantPath, "_page=2&_page_size=3"},
		{tenantPath, "_page=2&_page_size=3&_order_by=last_name"},
		{tenantPath, "_slim=true"},
		{tenantPath, "_search=andepag"},
		{tenantPath, "custom_id=nomatch"},
		{tenantPath, "_page=9&_page_size=50"},
		{orgPath, ""},
		{addressPath, ""},
		{piPath, ""},
	}
	for i, tc := range cases {
		want := c.listObjects(tc.path, tc.query)
		r := c.getList(tc.path, joinQueries(tc.query, "_jsonl=true"))
		if r.status != http.StatusOK {
			t.Errorf("case %d %s: status %d (error keys %v)", i, paramNames(tc.query), r.status, keys(r.obj))
			continue
		}
		mt, _, err := mime.ParseMediaType(r.header.Get("Content-Type"))
		if err != nil || mt != "application/jsonl" {
			t.Errorf("case %d %s: Content-Type is not application/jsonl", i, paramNames(tc.query))
		}
		body := string(r.raw)
		var lines []string
		if body != "" {
			if !strings.HasSuffix(body, "\n") {
				t.Errorf("case %d %s: the last line does not end with a newline", i, paramNames(tc.query))
			}
			lines = strings.Split(strings.TrimSuffix(body, "\n"), "\n")
		}
		if len(lines) != len(want) {
			t.Errorf("case %d %s: %d lines, want %d objects", i, paramNames(tc.query), len(lines), len(want))
			continue
		}
		for j, line := range lines {
			var m map[string]any
			if err := json.Unmarshal([]byte(line), &m); err != nil || m == nil {
				t.Errorf("case %d %s: line %d is not a JSON object", i, paramNames(tc.query), j)
				continue
			}
			if !reflect.DeepEqual(m, want[j]) {
				t.Errorf("case %d %s: line %d differs from element %d of the array form", i, paramNames(tc.query), j, j)
			}
		}
	}
	if r := c.getList(tenantPath, "_jsonl=false"); r.status != http.StatusOK || r.objects == nil {
		t.Errorf("_jsonl=false: status %d or body not a JSON array", r.status)
	}
}

func TestListSearch(t *testing.T) {
	t.Parallel()
	pn := loadPersonnummer(t)
	ssn, _ := pn.valid(t, "194408139089")
	e := newEnv(t)
	c := e.newCustomer("List search AB")
	other := e.newCustomer("List search other AB")
	ids := map[string]string{}
	labels := rowLabels{}
	add := func(label, path string, body map[string]any) {
		o := c.create(path, body)
		ids[label] = o["id"].(string)
		labels[o["id"].(string)] = label
	}
	add("T1", tenantPath, map[string]any{
		"first_name": personal("Quintessa"), "last_name": personal("Plainname"), "email": personal("q.one@srch-example.com"),
		"phone_number": personal("+46709990001"), "custom_id": "SRCH-CUST-1",
	})
	add("T2", tenantPath, map[string]any{
		"last_name": personal("Åkerlund-Xy"), "corporate_name": personal("Zyxel Holding AB"), "custom_id": "other-2",
	})
	add("T3", tenantPath, map[string]any{
		"first_name": personal("Ordinary"), "email": personal("someone@elsewhere.org"), "phone_number": personal("0709990002"),
		"ssn": ssn, "birth_date": personal("1977-07-07"),
	})
	add("T4", tenantPath, map[string]any{"first_name": personal("Plainname Copy")})
	add("S1", subPath, map[string]any{"last_name": personal("Subsearchson"), "custom_id": "SUBCUST-9"})
	add("S2", subPath, map[string]any{"first_name": personal("Ingen"), "email": personal("sub@srch-example.com")})
	add("P1", piPath, map[string]any{"tenant": map[string]any{"id": ids["T1"]}, "first_name": personal("Pisearchy"), "phone_number": personal("+46708887776")})
	add("P2", piPath, map[string]any{"tenant": map[string]any{"id": ids["T2"]}, "custom_id": "PI-SRCH"})
	add("P3", piPath, map[string]any{"sub_tenant": map[string]any{"id": ids["S1"]}, "email": personal("pi3@Quint-mail.se")})
	add("O1", orgPath, map[string]any{"name": "Sökorg Nordic", "custom_id": "ORG-SRCH-77"})
	add("O2", orgPath, map[string]any{"name": "Other Firm", "custom_id": "zz"})
	add("A1", addressPath, map[string]any{
		"street": personal("Sökvägen"), "city": personal("Uppsala"), "postal_code": personal("752 36"),
		"country": "Sverige", "custom_id": "ADR-K1",
	})
	add("A2", addressPath, map[string]any{
		"street": personal("Storgatan"), "city": personal("Lund"), "postal_code": personal("222 21"),
		"country": "Norge", "custom_id": "adr-k2", "care_of": personal("Vardnamn"),
	})
	// The other customer matches every term below: it must never show.
	other.create(tenantPath, map[string]any{"first_name": "Quintessa Plainname", "corporate_name": "Zyxel", "custom_id": "SRCH-CUST-1"})
	other.create(orgPath, map[string]any{"name": "Sökorg Nordic Firm"})
	other.create(addressPath, map[string]any{"street": "Sökvägen", "city": "Lund", "postal_code": "752 36", "country": "Sverige", "custom_id": "ADR-K1"})

	T, S, P, O, A := tenantPath, subPath, piPath, orgPath, addressPath
	cases := []struct {
		path, term string
		want       []string
	}{
		{T, "QUINT", []string{"T1"}},           // first_name
		{T, "plainname", []string{"T1", "T4"}}, // last_name OR first_name
		{T, "SRCH-example", []string{"T1"}},    // email
		{T, "9990002", []string{"T3"}},         // phone
		{T, "+4670999", []string{"T1"}},        // phone, with its plus
		{T, "70999000", []string{"T1", "T3"}},  // phone, two rows
		{T, "srch-cust", []string{"T1"}},       // custom_id
		{T, "zyxel holding", []string{"T2"}},   // corporate_name
		{T, "åKERLUND", []string{"T2"}},        // non-ASCII case folding
		{T, "ELSEWHERE.ORG", []string{"T3"}},   // email domain
		{T, "194408", nil},                     // ssn is not a search field
		{T, "1977-07", nil},                    // nor birth_date
		{T, "nomatchxyz", nil},                 // nothing
		{S, "SUBSEARCH", []string{"S1"}},       // last_name
		{S, "subcust", []string{"S1"}},         // custom_id
		{S, "srch-example", []string{"S2"}},    // email
		{S, "quint", nil},                      // Tenant rows are not Subtenant rows
		{P, "pisearch", []string{"P1"}},        // first_name
		{P, "8887776", []string{"P1"}},         // phone
		{P, "pi-srch", []string{"P2"}},         // custom_id
		{P, "quint", []string{"P3"}},           // email (not the tenant's name)
		{P, "zzzz", nil},                       // nothing
		{O, "NORDIC", []string{"O1"}},          // name
		{O, "sökorg", []string{"O1"}},          // name, non-ASCII
		{O, "srch-77", []string{"O1"}},         // custom_id
		{O, "firm", []string{"O2"}},            // name
		{O, "nomatch", nil},                    // nothing
		{A, "SÖKVÄG", []string{"A1"}},          // street
		{A, "lund", []string{"A2"}},            // city
		{A, "752 3", []string{"A1"}},           // postal_code
		{A, "ADR-K", []string{"A1", "A2"}},     // custom_id, two rows
		{A, "gatan", []string{"A2"}},           // street
		{A, "norge", nil},                      // country is not a search field
		{A, "vardnamn", nil},                   // nor care_of
		{A, "nomatchxyz", nil},                 // nothing
		// Only "" is blank: white space is a substring like any other.
		{T, " ", []string{"T2", "T4"}},
		{O, " ", []string{"O1", "O2"}},
		{A, " ", []string{"A1", "A2"}},
		{O, "  ", nil},
		{O, "rg N", []string{"O1"}},
	}
	for i, tc := range cases {
		qs := queryOf("_search", tc.term)
		got := idsOf(c.listObjects(tc.path, qs))
		want := make([]string, len(tc.want))
		for j, l := range tc.want {
			want[j] = ids[l]
		}
		if !sameSet(got, want) {
			t.Errorf("case %d %s: got rows %s, want %s", i, pathLabel(tc.path), labels.of(got), labels.of(want))
		}
		if len(tc.want) == 0 {
			r := c.getList(tc.path, qs)
			if r.status != http.StatusOK || strings.TrimSpace(string(r.raw)) != "[]" {
				t.Errorf("case %d %s: a non-matching term: status %d, not an empty array", i, pathLabel(tc.path), r.status)
			}
		}
	}
	// Search is AND-ed with filters.
	got := idsOf(c.listObjects(T, queryOf("_search", "plainname", "first_name__icontains", "copy")))
	if !sameSet(got, []string{ids["T4"]}) {
		t.Errorf("_search with a filter: got rows %s, want [T4]", labels.of(got))
	}
	got = idsOf(c.listObjects(T, queryOf("_search", "plainname", "custom_id__isnull", "false")))
	if !sameSet(got, []string{ids["T1"]}) {
		t.Errorf("_search with a clear filter: got rows %s, want [T1]", labels.of(got))
	}
}

// TestListBothPaths: GET B and GET B list/ answer the same.
func TestListBothPaths(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	c := e.newCustomer("List paths AB")
	seedPagingRows(c, 9)
	org := c.create(orgPath, map[string]any{"name": "Paths org"})
	c.create(addressPath, map[string]any{"street": personal("Vägvalsgatan"), "postal_code": personal("666 77"), "city": personal("Vägvalsby"), "country": "Sverige", "organization": ref(org)})
	tn := c.create(tenantPath, map[string]any{"first_name": personal("Vägvalsson"), "organization": ref(org)})
	c.create(piPath, map[string]any{"tenant": ref(tn), "last_name": personal("Vägvalsdotter")})
	c.create(subPath, map[string]any{"last_name": personal("Vägvalsunder")})
	cases := []struct{ path, query string }{
		{tenantPath, ""},
		{tenantPath, "_order_by=last_name"},
		{tenantPath, "first_name__icontains=pagmark&_order_by=-custom_id"},
		{tenantPath, "_page=2&_page_size=4"},
		{tenantPath, "_statistics=true&_page=1&_page_size=2"},
		{tenantPath, "_slim=true"},
		{tenantPath, "_jsonl=true"},
		{tenantPath, "_search=pagmark"},
		{tenantPath, "organization=" + org["id"].(string)},
		{tenantPath, "nonexistent=1"},
		{tenantPath, "_page=1"},
		{piPath, ""},
		{subPath, ""},
		{orgPath, ""},
		{addressPath, "organization__isnull=false"},
	}
	for i, tc := range cases {
		a := c.getList(tc.path, tc.query)
		b := c.getList(tc.path+"list/", tc.query)
		if a.status != b.status {
			t.Errorf("case %d %s %s: status %d on B, %d on B list/", i, pathLabel(tc.path), paramNames(tc.query), a.status, b.status)
			continue
		}
		if a.status == http.StatusOK && string(a.raw) != string(b.raw) {
			t.Errorf("case %d %s %s: bodies differ between B and B list/", i, pathLabel(tc.path), paramNames(tc.query))
		}
		if a.status != http.StatusOK && !sameSet(keys(a.obj), keys(b.obj)) {
			t.Errorf("case %d %s %s: error keys differ: %v vs %v", i, pathLabel(tc.path), paramNames(tc.query), keys(a.obj), keys(b.obj))
		}
		if a.header.Get("Content-Type") != b.header.Get("Content-Type") {
			t.Errorf("case %d %s %s: Content-Type differs", i, pathLabel(tc.path), paramNames(tc.query))
		}
		if mt, _, _ := mime.ParseMediaType(a.header.Get("Content-Type")); a.status == http.StatusOK && !strings.Contains(tc.query, "_jsonl") && mt != "application/json" {
			t.Errorf("case %d %s %s: Content-Type is not application/json", i, pathLabel(tc.path), paramNames(tc.query))
		}
	}
	if r := c.getList(tenantPath, ""); r.status != http.StatusOK || len(r.objects) != 10 {
		t.Errorf("GET B: status %d, %d objects, want 200 and 10", r.status, len(r.objects))
	}
}

// TestListOtherCustomerInvisible: another customer's objects never appear,
// whatever the filter.
func TestListOtherCustomerInvisible(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	a := e.newCustomer("List tenancy A AB")
	b := e.newCustomer("List tenancy B AB")
	type set struct {
		org, tenant, sub, address, pi map[string]any
	}
	mk := func(c *client, tag string) set {
		s := set{}
		s.org = c.create(orgPath, map[string]any{"name": "Tenancy org " + tag, "custom_id": "SAME"})
		s.address = c.create(addressPath, map[string]any{
			"street": personal("Grannvägen"), "postal_code": personal("888 99"), "city": personal("Grannby"),
			"country": "Sverige", "custom_id": "SAME", "organization": ref(s.org), "latitude": 45.5,
		})
		s.tenant = c.create(tenantPath, map[string]any{
			"first_name": personal("Grannina" + tag), "custom_id": "SAME", "organization": ref(s.org),
			"current_registered_address": ref(s.address),
		})
		s.sub = c.create(subPath, map[string]any{"last_name": personal("Grannson" + tag), "custom_id": "SAME", "organization": ref(s.org)})
		s.pi = c.create(piPath, map[string]any{"tenant": ref(s.tenant), "custom_id": "SAME", "organization": ref(s.org)})
		return s
	}
	sa, sb := mk(a, "A"), mk(b, "B")
	paths := []struct {
		path string
		a, b map[string]any
	}{
		{orgPath, sa.org, sb.org}, {addressPath, sa.address, sb.address}, {tenantPath, sa.tenant, sb.tenant},
		{subPath, sa.sub, sb.sub}, {piPath, sa.pi, sb.pi},
	}
	for _, p := range paths {
		aid, bid := p.a["id"].(string), p.b["id"].(string)
		labels := rowLabels{aid: "own", bid: "other customer's"}
		check := func(qs string, want []string) {
			t.Helper()
			got := idsOf(a.listObjects(p.path, qs))
			if !sameSet(got, want) {
				t.Errorf("%s %s: got rows %s, want %s", pathLabel(p.path), paramNames(qs), labels.of(got), labels.of(want))
			}
		}
		check("", []string{aid})
		check("id="+bid, nil)
		check("id__in="+bid, nil)
		check("id__in="+aid+","+bid, []string{aid})
		check("id!="+aid, nil)
		check("custom_id__in=SAME", []string{aid})
		check("_order_by=-created_at", []string{aid})
		if p.path != orgPath {
			check("organization="+sb.org["id"].(string), nil)
			check("organization__isnull=false", []string{aid})
		}
		ids, st := a.listStatistics(p.path, "")
		if !sameSet(ids, []string{aid}) || st["count"] != float64(1) {
			t.Errorf("%s: statistics count or data includes another customer's rows", pathLabel(p.path))
		}
		// And the other way round.
		if got := idsOf(b.listObjects(p.path, "id__in="+aid+","+bid)); !sameSet(got, []string{bid}) {
			t.Errorf("%s: customer B sees rows %s", pathLabel(p.path), labels.of(got))
		}
	}
	lbl := rowLabels{sa.pi["id"].(string): "own", sb.pi["id"].(string): "other customer's"}
	for _, qs := range []string{"tenant=" + sb.tenant["id"].(string), "tenant__in=" + sb.tenant["id"].(string), "organization=" + sb.org["id"].(string)} {
		if got := idsOf(a.listObjects(piPath, qs)); len(got) != 0 {
			t.Errorf("pi %s: got rows %s, want none", paramNames(qs), lbl.of(got))
		}
	}
	for _, term := range []string{"granninab", "Tenancy org B"} {
		for _, path := range []string{tenantPath, orgPath} {
			if got := idsOf(a.listObjects(path, queryOf("_search", term))); len(got) != 0 {
				t.Errorf("%s: a search for another customer's value finds %d rows", pathLabel(path), len(got))
			}
		}
	}
	if got := idsOf(a.listObjects(tenantPath, queryOf("current_registered_address", sb.address["id"].(string)))); len(got) != 0 {
		t.Errorf("tenant: filtering on another customer's address finds %d rows", len(got))
	}
}

// TestListReflectsWrites: a list that filters, searches or sorts on a
// personal field (decided in the service) shows every write at once:
// creates, updates, deletes, cascades, references cleared by a delete, bulk
// writes, and never a failed bulk write. After each step its objects must
// equal those of a list the database orders alone.
func TestListReflectsWrites(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	c := e.newCustomer("List writes AB")
	labels := rowLabels{}
	mk := func(label, path string, body map[string]any) map[string]any {
		o := c.create(path, body)
		labels[o["id"].(string)] = label
		return o
	}
	org := mk("ORG", orgPath, map[string]any{"name": "Skrivorg"})
	adr := mk("AD", addressPath, map[string]any{"street": personal("Skrivgatan"), "postal_code": personal("999 11"), "city": personal("Skrivby"), "country": "Sverige"})
	x1 := mk("X1", tenantPath, map[string]any{"first_name": personal("Skrivina1"), "last_name": personal("Skrivlast-a"), "current_registered_address": ref(adr)})
	x2 := mk("X2", tenantPath, map[string]any{"first_name": personal("Skrivina2"), "last_name": personal("Skrivlast-b")})
	x3 := mk("X3", tenantPath, map[string]any{"first_name": personal("Skrivina3"), "last_name": personal("Skrivlast-c"), "organization": ref(org)})
	pi := mk("PI", piPath, map[string]any{"tenant": ref(x2), "first_name": personal("Skrivskydd")})

	// check compares the service-sorted list with the database-ordered one
	// and returns the service-sorted ids.
	check := func(step, path, order string) []string {
		t.Helper()
		service := c.listObjects(path, "_order_by="+order)
		db := c.listObjects(path, "_order_by=-created_at")
		if len(service) != len(db) {
			t.Errorf("%s: %s lists %d objects sorted on %s, %d ordered by the database", step, pathLabel(path), len(service), order, len(db))
		}
		byID := map[string]map[string]any{}
		for _, o := range db {
			byID[o["id"].(string)] = o
		}
		for _, o := range service {
			if !reflect.DeepEqual(o, byID[o["id"].(string)]) {
				t.Errorf("%s: %s object %s differs between the two lists", step, pathLabel(path), labels.of([]string{o["id"].(string)}))
			}
		}
		searched := idsOf(c.listObjects(path, "_search=skriv&_order_by=-created_at"))
		if !sameSequence(searched, idsOf(db)) {
			t.Errorf("%s: %s search lists %s, want %s", step, pathLabel(path), labels.of(searched), labels.of(idsOf(db)))
		}
		return idsOf(service)
	}
	order := func(step string, want ...map[string]any) {
		t.Helper()
		got := check(step, tenantPath, "last_name")
		w := idsOf(want)
		if !sameSequence(got, w) {
			t.Errorf("%s: tenants sorted on last_name are %s, want %s", step, labels.of(got), labels.of(w))
		}
	}
	order("start", x1, x2, x3)
	check("start", piPath, "first_name")

	if r := c.do("PATCH", tenantPath+x1["id"].(string)+"/", map[string]any{"last_name": personal("Skrivlast-z")}); r.status != http.StatusOK {
		t.Fatalf("PATCH: status %d", r.status)
	}
	order("after PATCH", x2, x3, x1)

	x4 := mk("X4", tenantPath, map[string]any{"first_name": personal("Skrivina4"), "last_name": personal("Skrivlast-aa"), "organization": ref(org)})
	order("after POST", x4, x2, x3, x1)

	if r := c.do("DELETE", tenantPath+x3["id"].(string)+"/", nil); r.status != http.StatusNoContent {
		t.Fatalf("DELETE: status %d", r.status)
	}
	order("after DELETE", x4, x2, x1)

	// Deleting the address nulls the reference; deleting the organization too.
	if r := c.do("DELETE", addressPath+adr["id"].(string)+"/", nil); r.status != http.StatusNoContent {
		t.Fatalf("DELETE address: status %d", r.status)
	}
	if r := c.do("DELETE", orgPath+org["id"].(string)+"/", nil); r.status != http.StatusNoContent {
		t.Fatalf("DELETE organization: status %d", r.status)
	}
	order("after deleting referenced objects", x4, x2, x1)
	for _, o := range c.listObjects(tenantPath, "_order_by=last_name") {
		if o["current_registered_address"] != nil || o["organization"] != nil {
			t.Errorf("tenant %s still refers to a deleted object in a list sorted on last_name", labels.of([]string{o["id"].(string)}))
		}
	}
	if got := idsOf(c.listObjects(tenantPath, "organization__isnull=false&first_name__icontains=skriv")); len(got) != 0 {
		t.Errorf("a filter on a deleted organization still finds %s", labels.of(got))
	}

	// A bulk write shows; a failed one does not.
	out := bulkObjects(t, c.postBulk(tenantPath, []map[string]any{
		{"id": x2["id"], "last_name": personal("Skrivlast-y")},
		{"first_name": personal("Skrivina5"), "last_name": personal("Skrivlast-b")},
	}), 2)
	x5 := out[1]
	labels[x5["id"].(string)] = "X5"
	order("after a bulk write", x4, x5, x2, x1)
	r := c.postBulk(tenantPath, []map[string]any{
		{"id": x4["id"], "last_name": personal("Skrivlast-0")},
		{"first_name": personal("Skrivina6"), "last_name": personal("Skrivlast-00"), "email": "not-an-email"},
	})
	if r.status != http.StatusBadRequest {
		t.Fatalf("failed bulk write: status %d, want 400", r.status)
	}
	order("after a failed bulk write", x4, x5, x2, x1)

	// Deleting a tenant deletes its protected identity.
	check("before cascade", piPath, "first_name")
	if r := c.do("DELETE", tenantPath+x2["id"].(string)+"/", nil); r.status != http.StatusNoContent {
		t.Fatalf("DELETE tenant: status %d", r.status)
	}
	if got := check("after cascade", piPath, "first_name"); len(got) != 0 {
		t.Errorf("the cascaded protected identity is still listed: %s", labels.of(got))
	}
	if got := idsOf(c.listObjects(piPath, "first_name__icontains=skriv")); len(got) != 0 {
		t.Errorf("a filter still finds the cascaded protected identity %s", labels.of(got))
	}
	_ = pi
	order("end", x4, x5, x1)
}

// Case-insensitive filters and _search compare as PostgreSQL's upper()
// does, character by character (Pigello's UPPER(x) LIKE UPPER(y)): a
// Turkish dotless ı or a Greek final ς is found by a query in capitals,
// and a dotted İ is not an i. Through the cache of decoded objects and
// through the search tokens alike.
func TestListCaseFoldOfUpper(t *testing.T) {
	e := newEnv(t)
	c := e.newCustomer("Case Fold AB")
	names := map[string]string{}
	for _, last := range []string{"Yıldız", "Σίσυφος", "İnce", "Ince", "Stenström"} {
		obj := c.create(tenantPath, map[string]any{"last_name": personal(last)})
		names[obj["id"].(string)] = last
	}
	uncached := e.sibling(func(cfg *config.Config) { cfg.Limits.ListCacheRows = 0 })
	for _, tc := range []struct {
		query string
		want  []string
	}{
		{"last_name__iexact=YILDIZ", []string{"Yıldız"}},
		{"last_name__icontains=ILDI", []string{"Yıldız"}},
		{"last_name__istartswith=%CE%A3%CE%8A%CE%A3", []string{"Σίσυφος"}},          // ΣΊΣ
		{"last_name__iendswith=%CE%A6%CE%9F%CE%A3", []string{"Σίσυφος"}},            // ΦΟΣ
		{"_search=%CF%83%CE%AF%CF%83%CF%85%CF%86%CE%BF%CF%83", []string{"Σίσυφος"}}, // σίσυφοσ
		{"last_name__iexact=ince", []string{"Ince"}},
		{"last_name__iexact=%C4%B0NCE", []string{"İnce"}}, // İNCE
		{"last_name__icontains=STR%C3%96M", []string{"Stenström"}},
	} {
		for i, env := range []*env{e, uncached} {
			r := env.send("GET", tenantPath+"?"+tc.query, nil, c.headers, "")
			var got []string
			for _, o := range objectsOf(t, r, tenantPath, tc.query) {
				got = append(got, names[o["id"].(string)])
			}
			if !slices.Equal(got, tc.want) { // the names are not printed: personal values
				t.Errorf("%s (cache %v): %d matches, want %d, or other ones", tc.query, i == 0, len(got), len(tc.want))
			}
		}
	}
}
