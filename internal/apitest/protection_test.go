package apitest

import (
	"bytes"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"accounts/internal/config"

	_ "modernc.org/sqlite"
)

// protectionValidSSNs returns the valid identity numbers of the shared test data.
func protectionValidSSNs(t *testing.T) []ssnVector {
	t.Helper()
	valid := loadPersonnummer(t).Valid
	if len(valid) < 9 {
		t.Fatalf("personnummer test vectors: only %d valid numbers", len(valid))
	}
	return valid
}

// protectionProbe is one personal value sent to the API that must never be
// found in clear in the database files.
type protectionProbe struct {
	label string // names the field and the object: safe to print
	value []byte
}

// protection500 asserts the contract's 500 body: exactly detail and
// request_id, the id equal to the X-Request-ID header, and none of the
// given personal values in the raw body.
func protection500(t *testing.T, label string, r response, values ...string) {
	t.Helper()
	if r.status != http.StatusInternalServerError {
		t.Errorf("%s: status %d, want 500", label, r.status)
		return
	}
	if len(r.obj) != 2 || r.obj["detail"] == nil || r.obj["request_id"] == nil {
		t.Errorf("%s: 500 body keys %v, want exactly detail and request_id", label, keys(r.obj))
	}
	if id, _ := r.obj["request_id"].(string); id == "" || id != r.header.Get("X-Request-ID") {
		t.Errorf("%s: 500 body request_id does not equal the X-Request-ID header", label)
	}
	for i, v := range values {
		if bytes.Contains(r.raw, []byte(v)) {
			t.Errorf("%s: 500 body contains personal value #%d", label, i)
		}
	}
}

// protectionStreamFailsClosed asserts that a streamed list holding an object
// that does not open is not answered as a complete success: either the
// contract's 500, or a transfer that breaks off (the status line may have
// been sent before the bad row was reached). Either way the body never
// holds the given values.
func protectionStreamFailsClosed(t *testing.T, c *client, path string, values ...string) {
	t.Helper()
	req, err := http.NewRequest("GET", c.e.server.URL+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range c.headers {
		req.Header.Set(k, v)
	}
	resp, err := checkedClient(t).Do(req)
	if err != nil {
		return // broken off before the status line: fails closed
	}
	defer resp.Body.Close()
	raw, readErr := io.ReadAll(resp.Body)
	for i, v := range values {
		if bytes.Contains(raw, []byte(v)) {
			t.Errorf("GET %s: body contains personal value #%d", path, i)
		}
	}
	if resp.StatusCode == http.StatusInternalServerError {
		var body map[string]any
		if json.Unmarshal(raw, &body) != nil || len(body) != 2 || body["request_id"] != resp.Header.Get("X-Request-ID") {
			t.Errorf("GET %s: 500 without the contract's body", path)
		}
		return
	}
	if readErr == nil {
		t.Errorf("GET %s: status %d and a complete body, want a failure", path, resp.StatusCode)
	}
}

func TestProtectionNoPlaintextInDatabaseFiles(t *testing.T) {
	e := newEnv(t)
	c := e.newCustomer("Protection Plaintext AB")
	ssns := protectionValidSSNs(t)
	var probes []protectionProbe
	addStr := func(label, v string) string {
		personal(v)
		probes = append(probes, protectionProbe{label, []byte(v)})
		return v
	}
	addSSN := func(label string, s ssnVector) string {
		personal(s.Input, s.Canonical)
		probes = append(probes, protectionProbe{label + " (input form)", []byte(s.Input)},
			protectionProbe{label + " (canonical form)", []byte(s.Canonical)})
		return s.Input
	}
	addNum := func(label string, v float64) float64 {
		text, err := json.Marshal(v) // the form sent on the wire
		if err != nil {
			t.Fatal(err)
		}
		probes = append(probes, protectionProbe{label + " (decimal)", text})
		var be [8]byte
		binary.BigEndian.PutUint64(be[:], math.Float64bits(v))
		probes = append(probes, protectionProbe{label + " (binary)", be[:]})
		return v
	}

	org := c.create(orgPath, map[string]any{"name": "Protection Org"})

	var addresses []map[string]any
	for i := range 3 {
		l := fmt.Sprintf("address %d ", i)
		addresses = append(addresses, c.create(addressPath, map[string]any{
			"street":        addStr(l+"street", fmt.Sprintf("Zyxprobegatan%c", 'a'+i)),
			"street_number": addStr(l+"street_number", fmt.Sprintf("98%d7-3Q", i)),
			"postal_code":   addStr(l+"postal_code", fmt.Sprintf("QX%d 9Z8", i)),
			"city":          addStr(l+"city", fmt.Sprintf("Zyxprobestad%c", 'a'+i)),
			"country":       "Sverige",
			"care_of":       addStr(l+"care_of", fmt.Sprintf("c/o Zyxwcareof%c", 'a'+i)),
			"attention":     addStr(l+"attention", fmt.Sprintf("Att Zyxwattention%c", 'a'+i)),
			"latitude":      addNum(l+"latitude", 59.3217+float64(i)/1e4),
			"longitude":     addNum(l+"longitude", 18.0617+float64(i)/1e4),
			"organization":  ref(org),
		}))
	}

	var tenants, subs []map[string]any
	for i := range 2 {
		l := fmt.Sprintf("tenant %d ", i)
		tenants = append(tenants, c.create(tenantPath, map[string]any{
			"first_name":                 addStr(l+"first_name", fmt.Sprintf("Zyxwvuta-Tenant-First-%d", i)),
			"last_name":                  addStr(l+"last_name", fmt.Sprintf("Zyxwvuta-Tenant-Last-%d", i)),
			"corporate_name":             addStr(l+"corporate_name", fmt.Sprintf("Zyxwvuta-Corporate-%d", i)),
			"email":                      addStr(l+"email", fmt.Sprintf("probe.tenant.zyx%d@example.se", i)),
			"phone_number":               addStr(l+"phone_number", fmt.Sprintf("+4670913579%d", i)),
			"ssn":                        addSSN(l+"ssn", ssns[1+i]),
			"birth_date":                 addStr(l+"birth_date", fmt.Sprintf("1931-07-1%d", i)),
			"current_registered_address": ref(addresses[0]),
		}))
		l = fmt.Sprintf("subtenant %d ", i)
		subs = append(subs, c.create(subPath, map[string]any{
			"first_name":     addStr(l+"first_name", fmt.Sprintf("Zyxwvuta-Sub-First-%d", i)),
			"last_name":      addStr(l+"last_name", fmt.Sprintf("Zyxwvuta-Sub-Last-%d", i)),
			"corporate_name": addStr(l+"corporate_name", fmt.Sprintf("Zyxwvuta-SubCorp-%d", i)),
			"email":          addStr(l+"email", fmt.Sprintf("probe.sub.zyx%d@example.se", i)),
			"phone_number":   addStr(l+"phone_number", fmt.Sprintf("+4670824680%d", i)),
			"ssn":            addSSN(l+"ssn", ssns[3+5*i]),
			"birth_date":     addStr(l+"birth_date", fmt.Sprintf("1932-08-2%d", i)),
			"future_address": ref(addresses[1]),
		}))
	}

	owners := []map[string]any{
		{"tenant": ref(tenants[0])},
		{"tenant": ref(tenants[1])},
		{"sub_tenant": ref(subs[0])},
		{"sub_tenant": ref(subs[1])},
	}
	for i, owner := range owners {
		l := fmt.Sprintf("protected identity %d ", i)
		body := map[string]any{
			"first_name":                 addStr(l+"first_name", fmt.Sprintf("Zyxwvuta-Plaintext-Probe-%d", i)),
			"last_name":                  addStr(l+"last_name", fmt.Sprintf("Qwertyzyx-Plaintext-Probe-%d", i)),
			"email":                      addStr(l+"email", fmt.Sprintf("probe.zyx%d@example.se", i)),
			"phone_number":               addStr(l+"phone_number", fmt.Sprintf("+4670123456%d", i)),
			"ssn":                        addSSN(l+"ssn", ssns[4+i]),
			"birth_date":                 addStr(l+"birth_date", fmt.Sprintf("1933-09-0%d", i+1)),
			"organization":               ref(org),
			"current_registered_address": ref(addresses[0]),
			"previous_address":           ref(addresses[1]),
			"future_address":             ref(addresses[2]),
		}
		for k, v := range owner {
			body[k] = v
		}
		pi := c.create(piPath, body)
		// Read it back, so the test also covers what a read leaves behind.
		if r := c.do("GET", piPath+pi["id"].(string)+"/", nil); r.status != http.StatusOK {
			t.Fatalf("%sGET: status %d", l, r.status)
		}
	}

	files := e.storedBytes()
	// The check must be able to see a value in clear: the organization name
	// is not personal and is stored as is.
	seen := false
	for _, f := range files {
		seen = seen || bytes.Contains(f.data, []byte("Protection Org"))
	}
	if !seen {
		t.Fatalf("the organization name is nowhere in the stored bytes; the plaintext check would prove nothing")
	}

	for _, f := range files {
		for _, p := range probes {
			if bytes.Contains(f.data, p.value) {
				t.Errorf("%s contains %s in clear", f.name, p.label)
			}
		}
		key := e.vars[config.EnvMasterKey]
		if bytes.Contains(f.data, []byte(key)) {
			t.Errorf("%s contains the master key (base64)", f.name)
		}
		if raw, err := base64.StdEncoding.DecodeString(key); err != nil {
			t.Fatalf("decoding the test's master key: %v", err)
		} else if bytes.Contains(f.data, raw) {
			t.Errorf("%s contains the master key (raw bytes)", f.name)
		}
	}
	if len(probes) < 80 {
		t.Fatalf("only %d probes; the test lost some values", len(probes))
	}
}

// protectionTwoIdentities makes a customer with two protected identities on
// different tenants, each with distinctive values, and returns the client,
// the ids and every personal value sent.
func protectionTwoIdentities(t *testing.T, e *env, customer, tag string) (*client, [2]string, []string) {
	t.Helper()
	c := e.newCustomer(customer)
	var ids [2]string
	var values []string
	for i := range 2 {
		tenant := c.create(tenantPath, map[string]any{"first_name": personal(fmt.Sprintf("Zyx-%s-Tenant-%d", tag, i))})
		first := personal(fmt.Sprintf("Zyxwvuta-%s-First-%d", tag, i))
		last := personal(fmt.Sprintf("Qwertyzyx-%s-Last-%d", tag, i))
		email := personal(fmt.Sprintf("probe.%s.%d@example.se", strings.ToLower(tag), i))
		pi := c.create(piPath, map[string]any{
			"tenant": ref(tenant), "first_name": first, "last_name": last, "email": email,
		})
		ids[i] = pi["id"].(string)
		values = append(values, first, last, email)
	}
	return c, ids, values
}

func TestProtectionSealedValueCopiedToAnotherRowFailsClosed(t *testing.T) {
	e := newEnv(t)
	c, ids, values := protectionTwoIdentities(t, e, "Protection Copy AB", "Copy")
	e.rawDB().exec(`UPDATE protected_identities SET sealed = (SELECT sealed FROM protected_identities WHERE id = ?) WHERE id = ?`, ids[0], ids[1])

	protection500(t, "GET P2 with P1's sealed value", c.do("GET", piPath+ids[1]+"/", nil), values...)
	protection500(t, "paged list with P2 holding P1's sealed value", c.do("GET", piPath+"list/?_page=1&_page_size=10", nil), values...)
	protectionStreamFailsClosed(t, c, piPath+"list/", values[3:]...)
	protectionStreamFailsClosed(t, c, piPath+"list/?_jsonl=true", values[3:]...)

	r := c.do("GET", piPath+ids[0]+"/", nil)
	if r.status != http.StatusOK {
		t.Fatalf("GET P1: status %d, want 200", r.status)
	}
	if r.obj["first_name"] != values[0] || r.obj["last_name"] != values[1] || r.obj["email"] != values[2] {
		t.Errorf("GET P1: personal fields do not match what was sent")
	}
}

func TestProtectionSealedValueCopiedAcrossCustomersFailsClosed(t *testing.T) {
	e := newEnv(t)
	a, idsA, valuesA := protectionTwoIdentities(t, e, "Protection Copy A AB", "CustA")
	b, idsB, valuesB := protectionTwoIdentities(t, e, "Protection Copy B AB", "CustB")
	e.rawDB().exec(`UPDATE protected_identities SET sealed = (SELECT sealed FROM protected_identities WHERE id = ?) WHERE id = ?`, idsA[0], idsB[0])

	all := append(append([]string{}, valuesA...), valuesB...)
	protection500(t, "GET B's identity with A's sealed value", b.do("GET", piPath+idsB[0]+"/", nil), all...)
	if r := a.do("GET", piPath+idsA[0]+"/", nil); r.status != http.StatusOK || r.obj["first_name"] != valuesA[0] {
		t.Errorf("GET A's identity: status %d, want 200 with its values", r.status)
	}
	if r := b.do("GET", piPath+idsB[1]+"/", nil); r.status != http.StatusOK || r.obj["first_name"] != valuesB[3] {
		t.Errorf("GET B's untouched identity: status %d, want 200 with its values", r.status)
	}
}

func TestProtectionTamperedSealedValueFailsClosed(t *testing.T) {
	e := newEnv(t)
	c, ids, values := protectionTwoIdentities(t, e, "Protection Tamper AB", "Tamper")
	db := e.rawDB()
	var sealed []byte
	if err := db.db.QueryRow(db.bind(`SELECT sealed FROM protected_identities WHERE id = ?`), ids[0]).Scan(&sealed); err != nil {
		t.Fatalf("reading sealed value: %v", err)
	}
	if len(sealed) < 20 {
		t.Fatalf("sealed value is only %d bytes", len(sealed))
	}
	sealed[len(sealed)/2] ^= 0x01
	db.exec(`UPDATE protected_identities SET sealed = ? WHERE id = ?`, sealed, ids[0])

	protection500(t, "GET tampered identity", c.do("GET", piPath+ids[0]+"/", nil), values...)
	// A list that holds the object fails closed too (nothing listed before,
	// so no earlier decryption can answer for it).
	protection500(t, "list with the tampered identity", c.do("GET", piPath, nil), values...)
	protection500(t, "search with the tampered identity", c.do("GET", piPath+"list/?_search=zyxwvuta", nil), values...)
	if r := c.do("GET", piPath+ids[1]+"/", nil); r.status != http.StatusOK || r.obj["first_name"] != values[3] {
		t.Errorf("GET untouched identity: status %d, want 200 with its values", r.status)
	}
}

func TestProtectionErrorBodiesDoNotEchoValues(t *testing.T) {
	e := newEnv(t)
	c := e.newCustomer("Protection Echo AB")
	tenant := c.create(tenantPath, map[string]any{"first_name": personal("Zyx-Echo-Tenant")})
	ssnVectors := protectionInvalidSSNs(t)

	long := personal("Zyxwvuta-Too-Long-" + strings.Repeat("Echoprobe", 30))
	cases := []struct {
		field, value string
	}{
		{"email", personal("not-an-email.zyxechoprobe.example.se")},
		{"email", personal("zyxecho@@probe@example")},
		{"ssn", personal("19121212-12Q2")},
		{"first_name", long},
		{"last_name", long},
		{"phone_number", personal("+46-zyx-echo-99")},
	}
	for _, s := range ssnVectors {
		if len(s) < 8 || s == "null" {
			continue // "" and "null" are not values a body could echo distinctively
		}
		cases = append(cases, struct{ field, value string }{"ssn", personal(s)})
	}
	for i, tc := range cases {
		for _, path := range []string{piPath, tenantPath} {
			body := map[string]any{tc.field: tc.value}
			if path == piPath {
				body["tenant"] = ref(tenant)
			} else if tc.field != "first_name" {
				body["first_name"] = personal("Zyx-Echo-Valid-Name")
			}
			r := c.do("POST", path, body)
			if r.status != http.StatusBadRequest {
				t.Errorf("case %d (%s) on %s: status %d, want 400", i, tc.field, path, r.status)
				continue
			}
			if _, ok := r.obj[tc.field]; !ok {
				t.Errorf("case %d on %s: error body lacks key %q; has %v", i, path, tc.field, keys(r.obj))
			}
			if bytes.Contains(r.raw, []byte(tc.value)) {
				t.Errorf("case %d (%s) on %s: error body echoes the submitted value", i, tc.field, path)
			}
			// An escaped form would echo it too.
			esc, _ := json.Marshal(tc.value)
			if bytes.Contains(r.raw, esc[1:len(esc)-1]) {
				t.Errorf("case %d (%s) on %s: error body echoes the submitted value (JSON-escaped)", i, tc.field, path)
			}
		}
	}
}

// protectionInvalidSSNs returns the invalid identity numbers of the shared test data.
func protectionInvalidSSNs(t *testing.T) []string { return loadPersonnummer(t).Invalid }

// A blind index is bound to its resource: a protected identity holding the
// identity number, e-mail address and phone number of a tenant (another
// than its own) stores other hashes than that tenant, so someone holding a
// copy of the database can't link the two rows (they could: the security
// review found the same hash in both). Lookups by each value still find
// each row.
func TestProtectionBlindIndexesAreBoundToTheirResource(t *testing.T) {
	e := newEnv(t)
	c := e.newCustomer("Protection Bound AB")
	ssn := auditSSNs(t)[0]
	values := map[string]string{
		"ssn":          personal(ssn.Input),
		"email":        personal("bunden.person@example.se"),
		"phone_number": personal("+46704445566"),
	}
	own := c.create(tenantPath, map[string]any{"first_name": personal("Bunden-Egen")})
	other := map[string]any{"first_name": personal("Bunden-Annan")}
	for k, v := range values {
		other[k] = v
	}
	otherTenant := c.create(tenantPath, other)
	identity := map[string]any{"tenant": ref(own), "first_name": personal("Bunden-Skyddad")}
	for k, v := range values {
		identity[k] = v
	}
	pi := c.create(piPath, identity)
	raw := e.rawDB()
	for field, v := range values {
		col := field + "_bidx"
		if n := raw.count("SELECT count(*) FROM protected_identities p JOIN tenants t ON p."+col+" = t."+col+
			" WHERE p.id = ?", auditID(pi)); n != 0 {
			t.Errorf("the protected identity's %s hash equals %d tenants'", field, n)
		}
		q := field + "=" + url.QueryEscape(v)
		if objs := c.listObjects(piPath, q); len(objs) != 1 || auditID(objs[0]) != auditID(pi) {
			t.Errorf("protected identities by %s: %d found, want the one", field, len(objs))
		}
		if objs := c.listObjects(tenantPath, q); len(objs) != 1 || auditID(objs[0]) != auditID(otherTenant) {
			t.Errorf("tenants by %s: %d found, want the one", field, len(objs))
		}
	}
}
