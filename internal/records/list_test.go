package records

// These tests prove that every execution path of (*Service).List gives the
// same answer: the object cache (path a), the in-memory sort and the
// streaming filter used when the cache can't be (path b), and the SQL-only
// path (path c). Two services share one store: "cached" has the production
// cache bounds, "scanning" a cache that never holds anything. Each query of
// the tables below also runs in variants that force the other paths (a
// personal filter that matches everything, an order that ends with a
// personal key after id, the slim form), and every run must emit the same
// ids in the same order, and the same count when statistics are asked for.
// A few answers are also checked against an oracle written here, so a bug
// the paths share is caught too.
//
// Failure messages name the resource, the case index, the query's parameter
// names and object ids only, never a value.

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"accounts/internal/auth"
	"accounts/internal/keystore"
	"accounts/internal/query"
	"accounts/internal/schema"
	"accounts/internal/seal"
	"accounts/internal/store"
	"accounts/internal/store/sqlite"

	"github.com/google/uuid"
)

// listEnv is the store, the two services and what was created.
type listEnv struct {
	ctx      context.Context
	catalog  *schema.Catalog
	cached   *Service
	scanning *Service
	// decrypting has neither the cache nor the search tokens: every list
	// decrypts every row, the reference the other two are held to.
	decrypting *Service
	p, other   auth.Principal

	// objs holds customer one's objects by resource name, in creation
	// order, as the service returned them (the oracle's model).
	objs map[string][]Object
	// otherIDs are the second customer's ids, which must never appear.
	otherIDs map[string]bool
	orgs     []string
	addrs    []string
	tenants  []string
	subs     []string
}

// listPNR is the part of the personnummer test vectors this file reads.
type listPNR struct {
	Valid []struct {
		Input     string `json:"input"`
		Canonical string `json:"canonical"`
	} `json:"valid"`
}

func listLoadSSNs(t *testing.T) []string {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join("..", "..", "testdata", "personnummer.json"))
	if err != nil {
		t.Fatalf("reading personnummer test vectors: %v", err)
	}
	var v listPNR
	if err := json.Unmarshal(raw, &v); err != nil {
		t.Fatalf("decoding personnummer test vectors: %v", err)
	}
	if len(v.Valid) < 5 {
		t.Fatalf("expected at least 5 valid personnummer vectors, got %d", len(v.Valid))
	}
	out := make([]string, len(v.Valid))
	for i, n := range v.Valid {
		out[i] = n.Input
	}
	return out
}

// listBody builds a request body from key/value pairs; nil is JSON null.
func listBody(t testing.TB, kv ...any) Body {
	t.Helper()
	b := Body{}
	for i := 0; i < len(kv); i += 2 {
		raw, err := json.Marshal(kv[i+1])
		if err != nil {
			t.Fatalf("marshal body key %v: %v", kv[i], err)
		}
		b[kv[i].(string)] = raw
	}
	return b
}

// listRef is a reference value, or nil for "".
func listRef(id string) any {
	if id == "" {
		return nil
	}
	return map[string]string{"id": id}
}

func listNewCustomer(t testing.TB, ctx context.Context, db store.Store, ks *keystore.Store, master *seal.MasterKey, name string) auth.Principal {
	t.Helper()
	c := store.Customer{ID: uuid.NewString(), Name: name, CreatedAt: time.Now().UTC().Truncate(time.Microsecond)}
	if err := ks.Put(ctx, nil, master.NewCustomerKeys(c.ID)); err != nil {
		t.Fatalf("store customer keys: %v", err)
	}
	if err := db.CreateCustomer(ctx, c); err != nil {
		t.Fatalf("create customer: %v", err)
	}
	return auth.Principal{CustomerID: c.ID, ClientID: "test", Scope: auth.ReadWrite}
}

var (
	listFirsts     = []any{"Anna", "anna", "ANNA", "Åsa", "åsa", "ÅSA", "Östen", "Ärla", "Björn", "Erik", "Maja", nil, "Anders", "Hanna", "Jan"}
	listLasts      = []any{"Andersson", "Berg", "berg", "Öberg", "öberg", "Åkesson", "Lind", nil, "Lindberg", "Ek", "Nyström"}
	listDupEmails  = []string{"Dup.Person@Example.se", "dup.person@example.se", "DUP.PERSON@EXAMPLE.SE", "dup.Person@example.SE"}
	listCaseEmails = []string{"Asa.Oberg@Exempel.se", "asa.oberg@exempel.se"}
	listStreets    = []string{"Storgatan", "Östra Långgatan", "ängsvägen", "Kungsgatan", "Drottninggatan", "Ågatan", "storgatan"}
	listCities     = []string{"Stockholm", "Göteborg", "Malmö", "stockholm", "Umeå", "GÖTEBORG"}
	listCountries  = []string{"Sweden", "Norway", "sweden"}
	listLats       = []float64{59.3293, 57.7089, 55.605, 63.8258, -33.9, 0, 59.3293, 90, -90, 12.5}
)

func listDate(i int) string {
	return fmt.Sprintf("%04d-%02d-%02d", 1940+(i*7)%60, 1+i%12, 1+(i*5)%28)
}

func listCheckCreate(t *testing.T, what string, err error) {
	t.Helper()
	if err != nil {
		// Field error keys only; the service's errors never echo values.
		t.Fatalf("creating %s: %v", what, err)
	}
}

// openTestStore opens a SQLite store and a key store in the test's
// folder, with a new master key.
func openTestStore(t *testing.T) (*schema.Catalog, store.Store, *keystore.Store, *seal.MasterKey) {
	t.Helper()
	return openTestStoreAt(t, filepath.Join(t.TempDir(), "a.db"))
}

// openTestStoreAt is openTestStore with the SQLite database at path.
func openTestStoreAt(t *testing.T, path string) (*schema.Catalog, store.Store, *keystore.Store, *seal.MasterKey) {
	t.Helper()
	ctx := context.Background()
	catalog := schema.New()
	db, err := sqlite.Open(ctx, path, catalog)
	if err != nil {
		t.Fatalf("open store: %v", err)
	}
	t.Cleanup(func() { db.Close() })
	master, err := seal.ParseMasterKey(seal.GenerateMasterKey())
	if err != nil {
		t.Fatalf("master key: %v", err)
	}
	ks, err := keystore.Open(ctx, filepath.Join(t.TempDir(), "a.keys"))
	if err != nil {
		t.Fatalf("open key store: %v", err)
	}
	t.Cleanup(func() { ks.Close() })
	return catalog, db, ks, master
}

// newListEnv builds the store and services like internal/cli/app.go and
// fills two customers with data.
func newListEnv(t *testing.T) *listEnv {
	t.Helper()
	ctx := context.Background()
	catalog, db, ks, master := openTestStore(t)
	p := listNewCustomer(t, ctx, db, ks, master, "Customer One")
	other := listNewCustomer(t, ctx, db, ks, master, "Customer Two")
	ring := seal.NewKeyring(master, nil, ks)
	e := &listEnv{
		ctx:      ctx,
		catalog:  catalog,
		cached:   New(catalog, db, ring, nil),
		scanning: New(catalog, db, ring, nil),
		p:        p,
		other:    other,
		objs:     map[string][]Object{},
		otherIDs: map[string]bool{},
	}
	e.scanning.cache = newObjectCache(0, 0, time.Minute)
	e.decrypting = New(catalog, db, ring, nil)
	e.decrypting.cache = newObjectCache(0, 0, time.Minute)
	e.decrypting.candidates = 0
	ssns := listLoadSSNs(t)
	orgRes := catalog.Resource(schema.Organization)
	addrRes := catalog.Resource(schema.Address)
	tenantRes := catalog.Resource(schema.Tenant)
	subRes := catalog.Resource(schema.Subtenant)
	piRes := catalog.Resource(schema.ProtectedIdentity)

	// Organizations.
	for i := 0; i < 3; i++ {
		o, err := e.cached.Create(ctx, p, orgRes, listBody(t, "name", fmt.Sprintf("Org %d", i)))
		listCheckCreate(t, "organization", err)
		e.orgs = append(e.orgs, o.ID)
	}

	// Addresses, one by one through Create.
	for i := 0; i < 20; i++ {
		var lat, lon, number, careOf, custom, org any
		if i%4 != 0 {
			lat = listLats[i%10]
		}
		if i%5 != 0 {
			lon = float64((i*17)%360 - 180)
		}
		if i%3 != 0 {
			number = fmt.Sprintf("%dB", i+1)
		}
		if i%4 == 1 {
			careOf = "c/o Berg"
		}
		if i%6 != 0 {
			custom = fmt.Sprintf("A-%02d", i)
		}
		if i%5 == 2 {
			org = listRef(e.orgs[0])
		}
		o, err := e.cached.Create(ctx, p, addrRes, listBody(t,
			"street", listStreets[i%7], "street_number", number,
			"postal_code", fmt.Sprintf("1%02d 4%d", i, i%10), "city", listCities[i%6],
			"country", listCountries[i%3], "care_of", careOf, "latitude", lat, "longitude", lon,
			"custom_id", custom, "organization", org))
		listCheckCreate(t, "address", err)
		e.addrs = append(e.addrs, o.ID)
		e.objs[schema.Address] = append(e.objs[schema.Address], o)
	}

	// Tenants, in one bulk write.
	var items []Body
	for i := 0; i < 60; i++ {
		first, last := listFirsts[i%15], listLasts[(i*7+3)%11]
		var corporate, custom, email, phone, ssn, birth, org, addr any
		if i%13 == 0 {
			corporate = "Fastighets AB Ö"
		}
		if first == nil && last == nil {
			corporate = "Bolag AB"
		}
		switch {
		case i%5 == 0:
		case i%7 == 3:
			custom = "dup"
		case i%9 == 4:
			custom = "DUP"
		case i%2 == 1:
			custom = fmt.Sprintf("t-%03d", i)
		default:
			custom = fmt.Sprintf("T-%03d", i)
		}
		switch {
		case i == 5 || i == 17 || i == 29 || i == 41:
			email = listDupEmails[(i-5)/12]
		case i == 6 || i == 18:
			email = listCaseEmails[(i-6)/12]
		case i%4 == 0:
		case i%3 == 0:
			email = fmt.Sprintf("Person%d@Example.SE", i%23)
		default:
			email = fmt.Sprintf("person%d@example.se", i%23)
		}
		switch {
		case i%3 == 0:
		case i%5 == 1:
			phone = fmt.Sprintf("070%07d", 1000000+i%17)
		default:
			phone = fmt.Sprintf("+4670%07d", 1000000+i%17)
		}
		if i%6 != 0 {
			ssn = ssns[i%len(ssns)]
		}
		if i%5 != 2 {
			birth = listDate(i)
		}
		if i%3 == 0 {
			org = listRef(e.orgs[(i/3)%3])
		}
		if i%4 == 2 {
			addr = listRef(e.addrs[i%20])
		}
		items = append(items, listBody(t, "first_name", first, "last_name", last, "corporate_name", corporate,
			"custom_id", custom, "email", email, "phone_number", phone, "ssn", ssn, "birth_date", birth,
			"ssn_is_coordination_number", i%4 == 1, "organization", org, "current_registered_address", addr))
	}
	out, err := e.cached.Bulk(ctx, p, tenantRes, items)
	listCheckCreate(t, "tenants", err)
	for _, o := range out {
		e.tenants = append(e.tenants, o.ID)
	}
	e.objs[schema.Tenant] = out

	// Sub-tenants, for the identities that have no tenant.
	for i := 0; i < 8; i++ {
		o, err := e.scanning.Create(ctx, p, subRes, listBody(t, "first_name", listFirsts[(i+3)%15], "last_name", "Sub", "is_active", i%2 == 0))
		listCheckCreate(t, "subtenant", err)
		e.subs = append(e.subs, o.ID)
	}

	// Protected identities: 52 with a tenant, 8 with a sub-tenant.
	items = nil
	for i := 0; i < 60; i++ {
		var tenant, sub, email, phone, ssn, birth, custom, org, cur, prev any
		if i < 52 {
			tenant = listRef(e.tenants[i])
		} else {
			sub = listRef(e.subs[i-52])
		}
		switch {
		case i == 2 || i == 14 || i == 26 || i == 38:
			email = listDupEmails[(i-2)/12]
		case i == 9:
			email = listCaseEmails[0]
		case i%4 == 3:
		case i%2 == 0:
			email = fmt.Sprintf("pi%d@Example.se", i%19)
		default:
			email = fmt.Sprintf("pi%d@example.se", i%19)
		}
		if i%4 != 0 {
			phone = fmt.Sprintf("+4673%07d", 2000000+i%13)
		}
		if i%5 != 0 {
			ssn = ssns[(i*3)%len(ssns)]
		}
		if i%6 != 1 {
			birth = listDate(i + 11)
		}
		switch {
		case i%6 == 0:
		case i%8 == 5:
			custom = "dup"
		default:
			custom = fmt.Sprintf("P-%03d", i)
		}
		if i%4 == 1 {
			org = listRef(e.orgs[i%3])
		}
		if i%3 == 0 {
			cur = listRef(e.addrs[i%20])
		}
		if i%7 == 0 {
			prev = listRef(e.addrs[(i+5)%20])
		}
		items = append(items, listBody(t, "tenant", tenant, "sub_tenant", sub,
			"first_name", listFirsts[(i*4+1)%15], "last_name", listLasts[(i*3)%11],
			"email", email, "phone_number", phone, "ssn", ssn, "birth_date", birth, "custom_id", custom,
			"organization", org, "current_registered_address", cur, "previous_address", prev))
	}
	out, err = e.cached.Bulk(ctx, p, piRes, items)
	listCheckCreate(t, "protected identities", err)
	e.objs[schema.ProtectedIdentity] = out

	// The second customer: the same kinds of values, which must never show.
	q := other
	for i := 0; i < 3; i++ {
		o, err := e.scanning.Create(ctx, q, tenantRes, listBody(t, "first_name", "Anna", "last_name", "Berg",
			"email", listDupEmails[i], "ssn", ssns[0], "custom_id", "dup", "phone_number", "+46701000002"))
		listCheckCreate(t, "other tenant", err)
		e.otherIDs[o.ID] = true
		if i == 0 {
			pi, err := e.scanning.Create(ctx, q, piRes, listBody(t, "tenant", listRef(o.ID), "first_name", "Åsa",
				"last_name", "Öberg", "email", listDupEmails[1], "ssn", ssns[0], "custom_id", "dup"))
			listCheckCreate(t, "other identity", err)
			e.otherIDs[pi.ID] = true
		}
		a, err := e.scanning.Create(ctx, q, addrRes, listBody(t, "street", "Storgatan", "postal_code", "111 22",
			"city", "Stockholm", "country", "Sweden", "latitude", 59.3293, "custom_id", "A-01"))
		listCheckCreate(t, "other address", err)
		e.otherIDs[a.ID] = true
	}
	return e
}

// listRun is the outcome of one List call.
type listRun struct {
	ids   []string
	objs  []Object
	count int
}

func (e *listEnv) list(s *Service, p auth.Principal, res *schema.Resource, vals url.Values) (listRun, error) {
	q, err := query.Parse(res, vals)
	if err != nil {
		return listRun{}, fmt.Errorf("parse: %w", err)
	}
	var r listRun
	r.count, err = s.List(e.ctx, p, res, q, func(o Object) error {
		r.ids = append(r.ids, o.ID)
		r.objs = append(r.objs, o)
		return nil
	})
	return r, err
}

// listShort shortens ids for messages.
func listShort(ids []string) []string {
	out := make([]string, len(ids))
	for i, id := range ids {
		out[i] = id[:8]
	}
	return out
}

// listDiff describes how two id sequences differ: their lengths, the first
// position where they part, and a few ids from there (ids only).
func listDiff(got, want []string) string {
	k := 0
	for k < len(got) && k < len(want) && got[k] == want[k] {
		k++
	}
	window := func(ids []string) []string { return listShort(ids[k:min(k+6, len(ids))]) }
	return fmt.Sprintf("got %d ids, want %d; first difference at position %d: got %v, want %v",
		len(got), len(want), k, window(got), window(want))
}

// listKeys names a query's parameters, never their values.
func listKeys(vals url.Values) string {
	keys := make([]string, 0, len(vals))
	for k := range vals {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return strings.Join(keys, "&")
}

func listClone(v url.Values) url.Values {
	out := url.Values{}
	for k, vs := range v {
		out[k] = slices.Clone(vs)
	}
	return out
}

// listSetup describes, per resource, the query table and how to force the
// other paths.
type listSetup struct {
	resource string
	cases    []string
	// tautKey/tautValue: a filter on a personal field that every object
	// passes, which the database can't decide.
	tautKey, tautValue string
	// orderExt: personal fields that may end an order after id.
	orderExt []string
}

var listPersonCases = []string{
	"",
	"_statistics=true",
	"first_name=Anna",
	"first_name=Anna&_statistics=true&_page=1&_page_size=3",
	"first_name__iexact=anna",
	"first_name__iexact=åsa",
	"first_name__iexact!=ÅSA",
	"first_name__contains=an",
	"first_name__icontains=AN&_statistics=true",
	"first_name__icontains!=an",
	"first_name__startswith=Å",
	"first_name__istartswith=å&_order_by=-first_name",
	"first_name__endswith=a",
	"first_name__iendswith=A&_order_by=first_name,-custom_id",
	"first_name__in=Anna,Åsa,Östen",
	"first_name__isnull=true",
	"last_name__iendswith=BERG&_order_by=last_name,first_name",
	"last_name__endswith!=berg",
	"last_name__in=Berg,Öberg,Lind",
	"last_name__in!=Berg,Öberg,Lind&_statistics=true",
	"last_name__isnull=true",
	"last_name__isnull!=true&_statistics=true",
	"first_name!=Anna&last_name__isnull=false",
	"email=Dup.Person@Example.se",
	"email__iexact=dup.person@example.se&_statistics=true",
	"email__iexact=ASA.OBERG@EXEMPEL.SE",
	"email!=dup.person@example.se",
	"email__iexact!=DUP.PERSON@example.se",
	"email__in=dup.person@example.se,person3@example.se,pi3@example.se",
	"email__in!=dup.person@example.se,Person3@Example.SE&_statistics=true",
	"email__isnull=true",
	"email__isnull!=true&_order_by=email",
	"email__icontains=EXAMPLE&email__endswith=.se",
	"email__istartswith=PERSON1",
	"email__contains=ö",
	"phone_number={PHa}",
	"phone_number!={PHa}",
	"phone_number__in={PHa},{PHb}",
	"phone_number__in!={PHa},{PHb}&_statistics=true",
	"phone_number__startswith=%2B467&_statistics=true",
	"phone_number__isnull=true",
	"phone_number__contains=100000",
	"phone_number__iexact={PHb}",
	"ssn=19121212-1212",
	"ssn=191212121212&_statistics=true",
	"ssn=19121212%2B1212",
	"ssn!=191212121212",
	"ssn__in=194408139089,19701063-2391",
	"ssn__in!=194408139089,19701063-2391",
	"ssn__isnull=true",
	"ssn__isnull=false&_order_by=ssn",
	"ssn__isnull!=false&_order_by=-custom_id&_statistics=true",
	"birth_date={BDa}",
	"birth_date__gt=1980-01-01",
	"birth_date__gte=1960-01-01&birth_date__lt=1990-01-01",
	"birth_date__lte=1965-06-15&_order_by=-birth_date",
	"birth_date__gt!=1980-01-01",
	"birth_date__in={BDa},{BDb}",
	"birth_date__isnull=true",
	"custom_id=dup",
	"custom_id__iexact=dup",
	"custom_id!=dup",
	"custom_id__icontains=t-0&_statistics=true&_page=2&_page_size=4",
	"custom_id__startswith=T-",
	"custom_id__in=T-002,t-003,P-002,dup",
	"custom_id__isnull=true",
	"custom_id__isnull!=true&_order_by=-custom_id",
	"organization={ORG0}",
	"organization!={ORG0}",
	"organization__in={ORG0},{ORG1}",
	"organization__isnull=true&_order_by=organization",
	"current_registered_address__isnull=false",
	"current_registered_address__in={A2},{A3},{A6}",
	"id={ID3}",
	"id__in={ID1},{ID2},{ID3}",
	"id!={ID1}&_statistics=true&_page=1&_page_size=10",
	"created_at__gt={TS20}",
	"created_at__lte={TS20}&_order_by=-created_at",
	"created_at={TS20}",
	"created_at__gt!={TS20}",
	"created_at__in={TS20},{TS3}",
	"_search=berg",
	"_search=ÅS&_statistics=true",
	"_search=%2B467&_order_by=last_name",
	"_search=t-00",
	"_search=EXAMPLE.SE&first_name__icontains=a&_page=2&_page_size=5&_statistics=true",
	"_search=zzznotthere&_statistics=true",
	"_search=dup&custom_id__isnull=false",
	"_order_by=first_name",
	"_order_by=-first_name",
	"_order_by=last_name,-first_name",
	"_order_by=-birth_date",
	"_order_by=birth_date,-id",
	"_order_by=custom_id",
	"_order_by=-custom_id",
	"_order_by=custom_id,last_name",
	"_order_by=-created_at",
	"_order_by=email",
	"_order_by=-phone_number",
	"_order_by=-id",
	"_order_by=organization,-custom_id",
	"_order_by=-current_registered_address,first_name",
	"_page=1&_page_size=7",
	"_page=3&_page_size=7&_statistics=true",
	"_page=9&_page_size=7&_statistics=true",
	"_page=100&_page_size=1000&_statistics=true",
	"_page=2&_page_size=7&_order_by=first_name&_statistics=true",
	"_page=2&_page_size=7&_order_by=custom_id",
	"_page=5&_page_size=7&first_name__icontains=a",
	"_page=1&_page_size=1000&first_name__icontains=a&_order_by=-custom_id&_statistics=true",
	"_page=4&_page_size=3&custom_id__isnull=false&_order_by=custom_id&_statistics=true",
	"_page=2&_page_size=3&email__iexact=dup.person@example.se&_statistics=true",
	"_page=2&_page_size=10&ssn__isnull=false&_statistics=true",
	"_page=3&_page_size=5&_search=a&_order_by=-last_name,custom_id&_statistics=true",
	"_slim=true&first_name__icontains=an&_order_by=custom_id",
	"_slim=true&custom_id__icontains=T&_page=2&_page_size=5&_statistics=true",
}

var listTenantCases = append(slices.Clone(listPersonCases),
	"corporate_name__isnull=false",
	"corporate_name__icontains=ab",
	"corporate_name__iexact=fastighets ab ö",
	"_order_by=corporate_name",
	"ssn_is_coordination_number=true",
	"ssn_is_coordination_number!=true&_statistics=true",
	"ssn_is_coordination_number__in=true,false",
	"_order_by=ssn_is_coordination_number,-first_name",
	"_order_by=-ssn_is_coordination_number,custom_id&_page=2&_page_size=9&_statistics=true",
	"ssn_is_coordination_number=true&first_name__iexact=anna",
)

var listPICases = append(slices.Clone(listPersonCases),
	"tenant={T0}",
	"tenant!={T0}&_statistics=true",
	"tenant__isnull=true",
	"tenant__isnull=false&_statistics=true",
	"tenant__in={T1},{T2},{T3}",
	"sub_tenant__in={S0},{S1}",
	"sub_tenant!={S0}",
	"sub_tenant__isnull!=true&_order_by=sub_tenant",
	"previous_address={A5}",
	"previous_address__isnull=false&_order_by=-previous_address",
	"future_address__isnull=true&_statistics=true",
	"_order_by=tenant",
	"_order_by=-sub_tenant,last_name",
	"tenant__isnull=false&first_name__icontains=a&_order_by=tenant&_page=2&_page_size=4&_statistics=true",
)

var listAddressCases = []string{
	"",
	"_statistics=true",
	"street=Storgatan",
	"street__iexact=storgatan",
	"street__icontains=GATAN&_statistics=true",
	"street__istartswith=ö",
	"street__startswith=Ö",
	"street__endswith=vägen",
	"street__in=Storgatan,Ågatan",
	"street!=Storgatan",
	"street__icontains!=gatan",
	"street_number__isnull=true",
	"street_number__endswith=B",
	"postal_code__startswith=10",
	"postal_code__contains=%204",
	"city=Stockholm",
	"city__iexact=STOCKHOLM&_statistics=true",
	"city__iexact=göteborg",
	"city__in=Malmö,Umeå",
	"city__icontains!=holm",
	"country=Sweden",
	"country__iexact=sweden",
	"country!=Sweden",
	"country__in=Norway,sweden",
	"country__icontains=SWE&_order_by=-country",
	"country__isnull=true",
	"care_of__isnull=false",
	"care_of__icontains=BERG",
	"attention__isnull=true&_statistics=true",
	"latitude=59.3293",
	"latitude__gt=57.7089",
	"latitude__gte=57.7089",
	"latitude__lt=0",
	"latitude__lte=0",
	"latitude__in=90,-90,0",
	"latitude!=59.3293",
	"latitude__gt!=50",
	"latitude__isnull=true",
	"latitude__isnull=false&_order_by=-latitude",
	"longitude__gte=0&latitude__lt=60",
	"custom_id__isnull=true",
	"custom_id__startswith=A-1",
	"organization={ORG0}",
	"organization__isnull=true",
	"id__in={ID1},{ID2}",
	"created_at__gte={TS10}",
	"_search=gatan",
	"_search=GÖTE",
	"_search=A-1&_statistics=true",
	"_search=10",
	"_order_by=latitude",
	"_order_by=-latitude",
	"_order_by=latitude,-longitude",
	"_order_by=city,street",
	"_order_by=-city,custom_id",
	"_order_by=country,-latitude",
	"_order_by=country",
	"_order_by=-custom_id",
	"_order_by=postal_code",
	"_order_by=-street_number,country",
	"_page=2&_page_size=6&_order_by=latitude&_statistics=true",
	"_page=4&_page_size=6&_statistics=true",
	"_page=5&_page_size=6&_order_by=country&_statistics=true",
	"_page=1&_page_size=3&latitude__gt=0&_statistics=true",
	"_page=2&_page_size=2&country=Sweden&_order_by=-custom_id&_statistics=true",
	"_slim=true&country__icontains=sw",
}

func listSetups() []listSetup {
	person := []string{"first_name", "last_name", "birth_date"}
	return []listSetup{
		{resource: schema.Tenant, cases: listTenantCases, tautKey: "birth_date__lt!", tautValue: "0001-01-01", orderExt: person},
		{resource: schema.ProtectedIdentity, cases: listPICases, tautKey: "birth_date__lt!", tautValue: "0001-01-01", orderExt: person},
		{resource: schema.Address, cases: listAddressCases, tautKey: "latitude__lt!", tautValue: "-1000", orderExt: []string{"city", "street"}},
	}
}

// vars returns the placeholders of the query tables for one resource.
func (e *listEnv) vars(resource string) *strings.Replacer {
	objs := e.objs[resource]
	ts := func(i int) string { return objs[i].CreatedAt.Format(time.RFC3339Nano) }
	var phones, dates []string
	for _, o := range objs {
		if s, ok := o.Values["phone_number"].(string); ok && !slices.Contains(phones, s) {
			phones = append(phones, s)
		}
		if s, ok := o.Values["birth_date"].(string); ok && !slices.Contains(dates, s) {
			dates = append(dates, s)
		}
	}
	for len(phones) < 2 {
		phones = append(phones, "0700000000")
	}
	for len(dates) < 2 {
		dates = append(dates, "2000-01-01")
	}
	pairs := []string{
		"{PHa}", phones[0], "{PHb}", phones[1], "{BDa}", dates[0], "{BDb}", dates[1],
		"{ORG0}", e.orgs[0], "{ORG1}", e.orgs[1],
		"{A2}", e.addrs[2], "{A3}", e.addrs[3], "{A5}", e.addrs[5], "{A6}", e.addrs[6],
		"{T0}", e.tenants[0], "{T1}", e.tenants[1], "{T2}", e.tenants[2], "{T3}", e.tenants[3],
		"{S0}", e.subs[0], "{S1}", e.subs[1],
		"{ID1}", objs[1].ID, "{ID2}", objs[2].ID, "{ID3}", objs[3].ID,
		"{TS3}", ts(3), "{TS10}", ts(10), "{TS20}", ts(min(20, len(objs)-1)),
	}
	for i := 1; i < len(pairs); i += 2 {
		pairs[i] = url.QueryEscape(pairs[i])
	}
	return strings.NewReplacer(pairs...)
}

// variants returns the query and the versions of it that force the other
// execution paths, by name.
func (st listSetup) variants(vals url.Values) ([]string, []url.Values) {
	names := []string{"plain"}
	out := []url.Values{vals}
	if _, ok := vals[st.tautKey]; !ok {
		v := listClone(vals)
		v.Set(st.tautKey, st.tautValue)
		names, out = append(names, "personal-tautology"), append(out, v)
	}
	order := vals.Get("_order_by")
	if order == "" {
		order = "created_at"
	}
	keys := map[string]bool{}
	for _, k := range strings.Split(order, ",") {
		keys[strings.TrimPrefix(k, "-")] = true
	}
	for _, ext := range st.orderExt {
		if keys[ext] {
			continue
		}
		v := listClone(vals)
		if keys["id"] {
			v.Set("_order_by", order+","+ext)
		} else {
			v.Set("_order_by", order+",id,"+ext)
		}
		names, out = append(names, "personal-order-after-id"), append(out, v)
		break
	}
	if vals.Get("_slim") == "" {
		v := listClone(vals)
		v.Set("_slim", "true")
		names, out = append(names, "slim"), append(out, v)
	}
	return names, out
}

// checkAll runs every case of every resource on both services in every
// variant and reports any disagreement. It returns the reference answers by
// resource and case index. Unless full, the scanning service runs only the
// plain and the personal-tautology variants (the cached service runs all),
// which keeps the repeated checks after writes affordable under -race.
func (e *listEnv) checkAll(t *testing.T, stage string, full bool) map[string][]listRun {
	t.Helper()
	refs := map[string][]listRun{}
	for _, st := range listSetups() {
		res := e.catalog.Resource(st.resource)
		mine := map[string]bool{}
		for _, o := range e.objs[st.resource] {
			mine[o.ID] = true
		}
		rep := e.vars(st.resource)
		for i, c := range st.cases {
			vals, err := url.ParseQuery(rep.Replace(c))
			if err != nil {
				t.Fatalf("%s: %s case %d: bad query string: %v", stage, st.resource, i, err)
			}
			where := fmt.Sprintf("%s: %s case %d (%s)", stage, st.resource, i, listKeys(vals))
			ref, err := e.list(e.cached, e.p, res, vals)
			if err != nil {
				t.Fatalf("%s: cached plain: %v", where, err)
			}
			refs[st.resource] = append(refs[st.resource], ref)
			for _, id := range ref.ids {
				if e.otherIDs[id] {
					t.Errorf("%s: another customer's object %s was listed", where, id[:8])
				} else if !mine[id] {
					t.Errorf("%s: unknown object %s was listed", where, id[:8])
				}
			}
			stats := vals.Get("_statistics") == "true"
			if stats && vals.Get("_page_size") == "" && ref.count != len(ref.ids) {
				t.Errorf("%s: count %d but %d objects emitted", where, ref.count, len(ref.ids))
			}
			names, variants := st.variants(vals)
			for vi, v := range variants {
				for _, svc := range e.services() {
					if vi == 0 && svc.name == "cached" {
						continue
					}
					if !full && svc.name != "cached" && names[vi] != "plain" && names[vi] != "personal-tautology" {
						continue
					}
					got, err := e.list(svc.s, e.p, res, v)
					if err != nil {
						t.Errorf("%s variant %s on %s: %v", where, names[vi], svc.name, err)
						continue
					}
					label := fmt.Sprintf("%s variant %s on %s", where, names[vi], svc.name)
					if !slices.Equal(got.ids, ref.ids) {
						t.Errorf("%s: emitted ids differ from the cached plain run: %s", label, listDiff(got.ids, ref.ids))
						continue
					}
					if stats && got.count != ref.count {
						t.Errorf("%s: count %d, cached plain run counted %d", label, got.count, ref.count)
					}
					e.compareObjects(t, label, res, ref.objs, got.objs, v.Get("_slim") == "true" || vals.Get("_slim") == "true")
				}
			}
		}
	}
	return refs
}

// compareObjects checks that the same objects carry the same values; in the
// slim form only the clear fields are compared. It names fields, not values.
func (e *listEnv) compareObjects(t *testing.T, label string, res *schema.Resource, want, got []Object, slim bool) {
	t.Helper()
	for i := range want {
		if !got[i].CreatedAt.Equal(want[i].CreatedAt) {
			t.Errorf("%s: object %s: created_at differs", label, want[i].ID[:8])
		}
		for _, f := range res.Fields {
			if slim && f.Personal {
				continue
			}
			if !reflect.DeepEqual(got[i].Values[f.Name], want[i].Values[f.Name]) {
				t.Errorf("%s: object %s: field %s differs", label, want[i].ID[:8], f.Name)
			}
		}
	}
}

// Oracle helpers: an independent reading of the contract's semantics.

func listStr(o Object, name string) (string, bool) {
	s, ok := o.Values[name].(string)
	return s, ok
}

func listOracleCompare(a, b any) int {
	switch {
	case a == nil && b == nil:
		return 0
	case a == nil:
		return -1
	case b == nil:
		return 1
	}
	switch x := a.(type) {
	case string:
		return strings.Compare(x, b.(string))
	case float64:
		y := b.(float64)
		if x < y {
			return -1
		}
		if x > y {
			return 1
		}
		return 0
	case bool:
		y := b.(bool)
		if x == y {
			return 0
		}
		if !x {
			return -1
		}
		return 1
	}
	panic(fmt.Sprintf("oracle: unexpected type %T", a))
}

// listOrder sorts by the named fields ("-" for descending; nulls first
// ascending, last descending), then id, or by created_at and id when none.
func listOrder(objs []Object, keys ...string) {
	slices.SortFunc(objs, func(a, b Object) int {
		for _, k := range keys {
			desc := strings.HasPrefix(k, "-")
			k = strings.TrimPrefix(k, "-")
			c := listOracleCompare(a.Values[k], b.Values[k])
			if desc {
				c = -c
			}
			if c != 0 {
				return c
			}
		}
		if len(keys) == 0 {
			if c := a.CreatedAt.Compare(b.CreatedAt); c != 0 {
				return c
			}
		}
		return strings.Compare(a.ID, b.ID)
	})
}

func listIDs(objs []Object) []string {
	out := make([]string, len(objs))
	for i, o := range objs {
		out[i] = o.ID
	}
	return out
}

type listKnown struct {
	resource string
	query    string
	keep     func(Object) bool
	order    []string
	// first and n select a page of the oracle's answer (n 0: all).
	first, n int
	// want is the exact number of matches the fixture was built to have
	// (-1: not fixed, but at least one).
	want int
}

func listKnownAnswers() []listKnown {
	lower := strings.ToLower
	all := func(Object) bool { return true }
	ssnIs := func(canon ...string) func(Object) bool {
		return func(o Object) bool { s, ok := listStr(o, "ssn"); return ok && slices.Contains(canon, s) }
	}
	searchTenant := func(term string) func(Object) bool {
		return func(o Object) bool {
			for _, f := range []string{"first_name", "last_name", "corporate_name", "email", "phone_number", "custom_id"} {
				if s, ok := listStr(o, f); ok && strings.Contains(lower(s), lower(term)) {
					return true
				}
			}
			return false
		}
	}
	return []listKnown{
		{resource: schema.Tenant, query: "", keep: all, want: 60},
		{resource: schema.Tenant, query: "email__iexact=dup.person@example.se", keep: func(o Object) bool {
			s, ok := listStr(o, "email")
			return ok && lower(s) == "dup.person@example.se"
		}, want: 4},
		{resource: schema.Tenant, query: "email=Dup.Person@Example.se", keep: func(o Object) bool {
			s, ok := listStr(o, "email")
			return ok && s == "Dup.Person@Example.se"
		}, want: 1},
		{resource: schema.Tenant, query: "email__iexact=ASA.OBERG@EXEMPEL.SE", keep: func(o Object) bool {
			s, ok := listStr(o, "email")
			return ok && lower(s) == "asa.oberg@exempel.se"
		}, want: 2},
		{resource: schema.Tenant, query: "email__iexact!=dup.person@example.se", keep: func(o Object) bool {
			s, ok := listStr(o, "email")
			return !ok || lower(s) != "dup.person@example.se"
		}, want: 56},
		{resource: schema.Tenant, query: "ssn=19121212-1212", keep: ssnIs("191212121212"), want: -1},
		{resource: schema.Tenant, query: "ssn!=19121212-1212", keep: func(o Object) bool { return !ssnIs("191212121212")(o) }, want: -1},
		{resource: schema.Tenant, query: "ssn__isnull=true", keep: func(o Object) bool { return o.Values["ssn"] == nil }, want: 10},
		{resource: schema.Tenant, query: "first_name__icontains!=an", keep: func(o Object) bool {
			s, ok := listStr(o, "first_name")
			return !ok || !strings.Contains(lower(s), "an")
		}, want: -1},
		{resource: schema.Tenant, query: "first_name__iexact=åsa", keep: func(o Object) bool {
			s, ok := listStr(o, "first_name")
			return ok && lower(s) == "åsa"
		}, want: 12},
		{resource: schema.Tenant, query: "last_name__in=Berg,Öberg,Lind", keep: func(o Object) bool {
			s, ok := listStr(o, "last_name")
			return ok && (s == "Berg" || s == "Öberg" || s == "Lind")
		}, want: -1},
		{resource: schema.Tenant, query: "custom_id__isnull=true", keep: func(o Object) bool { return o.Values["custom_id"] == nil }, want: 12},
		{resource: schema.Tenant, query: "custom_id__iexact=DUP", keep: func(o Object) bool {
			s, ok := listStr(o, "custom_id")
			return ok && lower(s) == "dup"
		}, want: -1},
		{resource: schema.Tenant, query: "phone_number__isnull=true", keep: func(o Object) bool { return o.Values["phone_number"] == nil }, want: 20},
		{resource: schema.Tenant, query: "ssn_is_coordination_number=true", keep: func(o Object) bool { return o.Values["ssn_is_coordination_number"] == true }, want: 15},
		{resource: schema.Tenant, query: "birth_date__gt=1980-01-01", keep: func(o Object) bool {
			s, ok := listStr(o, "birth_date")
			return ok && s > "1980-01-01"
		}, want: -1},
		{resource: schema.Tenant, query: "_search=berg", keep: searchTenant("berg"), want: -1},
		{resource: schema.Tenant, query: "_search=ÖBERG", keep: searchTenant("öberg"), want: -1},
		{resource: schema.Tenant, query: "_order_by=-birth_date", keep: all, order: []string{"-birth_date"}, want: 60},
		{resource: schema.Tenant, query: "_order_by=last_name,-first_name", keep: all, order: []string{"last_name", "-first_name"}, want: 60},
		{resource: schema.Tenant, query: "_order_by=-custom_id", keep: all, order: []string{"-custom_id"}, want: 60},
		{resource: schema.Tenant, query: "_order_by=custom_id&_page=3&_page_size=7", keep: all, order: []string{"custom_id"}, first: 14, n: 7, want: 60},
		{resource: schema.Tenant, query: "_order_by=first_name&_page=2&_page_size=7", keep: all, order: []string{"first_name"}, first: 7, n: 7, want: 60},
		{resource: schema.ProtectedIdentity, query: "", keep: all, want: 60},
		{resource: schema.ProtectedIdentity, query: "tenant__isnull=true", keep: func(o Object) bool { return o.Values["tenant"] == nil }, want: 8},
		{resource: schema.ProtectedIdentity, query: "sub_tenant__isnull!=true", keep: func(o Object) bool { return o.Values["sub_tenant"] != nil }, want: 8},
		{resource: schema.ProtectedIdentity, query: "email__iexact=DUP.person@example.se", keep: func(o Object) bool {
			s, ok := listStr(o, "email")
			return ok && lower(s) == "dup.person@example.se"
		}, want: 4},
		{resource: schema.ProtectedIdentity, query: "email!=dup.person@example.se", keep: func(o Object) bool {
			s, ok := listStr(o, "email")
			return !ok || s != "dup.person@example.se"
		}, want: 59},
		{resource: schema.ProtectedIdentity, query: "ssn__in=194408139089,19701063-2391", keep: ssnIs("194408139089", "197010632391"), want: -1},
		{resource: schema.ProtectedIdentity, query: "_order_by=-last_name,first_name", keep: all, order: []string{"-last_name", "first_name"}, want: 60},
		{resource: schema.Address, query: "", keep: all, want: 20},
		{resource: schema.Address, query: "latitude__isnull=true", keep: func(o Object) bool { return o.Values["latitude"] == nil }, want: 5},
		{resource: schema.Address, query: "latitude__gte=57.7089", keep: func(o Object) bool {
			f, ok := o.Values["latitude"].(float64)
			return ok && f >= 57.7089
		}, want: -1},
		{resource: schema.Address, query: "latitude__lt!=0", keep: func(o Object) bool {
			f, ok := o.Values["latitude"].(float64)
			return !ok || f >= 0
		}, want: -1},
		{resource: schema.Address, query: "city__iexact=stockholm", keep: func(o Object) bool {
			s, ok := listStr(o, "city")
			return ok && lower(s) == "stockholm"
		}, want: 7},
		{resource: schema.Address, query: "_order_by=-latitude", keep: all, order: []string{"-latitude"}, want: 20},
		{resource: schema.Address, query: "_order_by=latitude&_page=2&_page_size=6", keep: all, order: []string{"latitude"}, first: 6, n: 6, want: 20},
	}
}

// checkKnown compares both services with the oracle, over the model e.objs.
// With fixed, the fixture's built-in match counts are checked too (they
// hold before any write).
func (e *listEnv) checkKnown(t *testing.T, stage string, fixed bool) {
	t.Helper()
	for i, k := range listKnownAnswers() {
		res := e.catalog.Resource(k.resource)
		vals, err := url.ParseQuery(k.query)
		if err != nil {
			t.Fatalf("%s: known answer %d: %v", stage, i, err)
		}
		var matched []Object
		for _, o := range e.objs[k.resource] {
			if k.keep(o) {
				matched = append(matched, o)
			}
		}
		where := fmt.Sprintf("%s: known answer %d (%s, %s)", stage, i, k.resource, listKeys(vals))
		if fixed && k.want >= 0 && len(matched) != k.want {
			t.Fatalf("%s: the fixture has %d matches, built to have %d", where, len(matched), k.want)
		}
		if len(matched) == 0 {
			t.Fatalf("%s: the fixture has no match; the case proves nothing", where)
		}
		listOrder(matched, k.order...)
		want := listIDs(matched)
		if k.n > 0 {
			want = want[min(k.first, len(want)):min(k.first+k.n, len(want))]
		}
		for _, svc := range e.services() {
			got, err := e.list(svc.s, e.p, res, vals)
			if err != nil {
				t.Errorf("%s on %s: %v", where, svc.name, err)
				continue
			}
			if !slices.Equal(got.ids, want) {
				t.Errorf("%s on %s: differs from the oracle: %s", where, svc.name, listDiff(got.ids, want))
			}
		}
	}
}

// namedService is one of the services the paths are compared on.
type namedService struct {
	name string
	s    *Service
}

// services are the cached service (the search tokens first, then the
// cache), the scanning one (the tokens, no cache) and the decrypting one
// (neither).
func (e *listEnv) services() []namedService {
	return []namedService{{"cached", e.cached}, {"scanning", e.scanning}, {"decrypting", e.decrypting}}
}

// checkCacheUse asserts that the cached service did use its cache and the
// scanning one never did, so both kinds of path were compared.
func (e *listEnv) checkCacheUse(t *testing.T) {
	t.Helper()
	for _, name := range []string{schema.Tenant, schema.ProtectedIdentity, schema.Address} {
		res := e.catalog.Resource(name)
		if e.cached.cache.get(cacheKey{customerID: e.p.CustomerID, res: res}, time.Now()) == nil {
			t.Errorf("the cached service never cached %s: path (a) was not exercised", name)
		}
	}
	e.scanning.cache.mu.Lock()
	n := len(e.scanning.cache.entries)
	e.scanning.cache.mu.Unlock()
	if n != 0 {
		t.Errorf("the scanning service cached %d sets; it must always scan", n)
	}
}

func TestListPathsAgree(t *testing.T) {
	e := newListEnv(t)
	e.checkAll(t, "initial", true)
	e.checkCacheUse(t)
}

func TestListKnownAnswers(t *testing.T) {
	e := newListEnv(t)
	e.checkKnown(t, "initial", true)
	// The other customer sees only its own objects.
	for _, name := range []string{schema.Tenant, schema.ProtectedIdentity, schema.Address} {
		res := e.catalog.Resource(name)
		for _, s := range []*Service{e.cached, e.scanning, e.decrypting} {
			for _, qs := range []string{"", "email__iexact=dup.person@example.se", "_search=a", "_order_by=-custom_id&_statistics=true"} {
				vals, _ := url.ParseQuery(qs)
				if name == schema.Address && strings.HasPrefix(qs, "email") {
					continue
				}
				got, err := e.list(s, e.other, res, vals)
				if err != nil {
					t.Fatalf("other customer %s: %v", name, err)
				}
				for _, id := range got.ids {
					if !e.otherIDs[id] {
						t.Errorf("other customer %s (%s): object %s of customer one was listed", name, listKeys(vals), id[:8])
					}
				}
				if qs == "" && len(got.ids) == 0 {
					t.Errorf("other customer %s: its own objects were not listed", name)
				}
			}
		}
	}
}

// TestListPathsAgreeAfterWrites changes data through both services after
// the cache is warm, and checks after each step that every path still
// agrees and that the known answers follow the change.
func TestListPathsAgreeAfterWrites(t *testing.T) {
	e := newListEnv(t)
	ctx, p := e.ctx, e.p
	tenantRes := e.catalog.Resource(schema.Tenant)
	piRes := e.catalog.Resource(schema.ProtectedIdentity)
	addrRes := e.catalog.Resource(schema.Address)
	// Warm the cache: one list per resource that must look at personal
	// values (TestListPathsAgree compares the paths before any write).
	for _, w := range []struct{ resource, qs string }{
		{schema.Tenant, "first_name__isnull=false"},
		{schema.ProtectedIdentity, "_search=a"},
		{schema.Address, "_order_by=city"},
	} {
		vals, _ := url.ParseQuery(w.qs)
		if _, err := e.list(e.cached, p, e.catalog.Resource(w.resource), vals); err != nil {
			t.Fatalf("warm-up %s: %v", w.resource, err)
		}
	}
	e.checkCacheUse(t)

	replace := func(resource string, o Object) {
		for i := range e.objs[resource] {
			if e.objs[resource][i].ID == o.ID {
				e.objs[resource][i] = o
				return
			}
		}
		e.objs[resource] = append(e.objs[resource], o)
	}
	remove := func(resource, id string) {
		e.objs[resource] = slices.DeleteFunc(e.objs[resource], func(o Object) bool { return o.ID == id })
	}
	exactly := func(stage, resource, qs string, want []string) {
		t.Helper()
		vals, err := url.ParseQuery(qs)
		if err != nil {
			t.Fatalf("%s: %v", stage, err)
		}
		for _, svc := range e.services() {
			got, err := e.list(svc.s, p, e.catalog.Resource(resource), vals)
			if err != nil {
				t.Fatalf("%s on %s: %v", stage, svc.name, err)
			}
			if !slices.Equal(got.ids, want) {
				t.Errorf("%s on %s (%s %s): %s", stage, svc.name, resource, listKeys(vals), listDiff(got.ids, want))
			}
		}
	}

	// 1. Update a tenant's personal fields through the cached service.
	t7 := e.tenants[7]
	o, err := e.cached.Update(ctx, p, tenantRes, t7, listBody(t, "first_name", "Zäta", "email", nil, "ssn", "19121212-1212", "custom_id", "zz-new"))
	if err != nil {
		t.Fatalf("update tenant: %v", err)
	}
	replace(schema.Tenant, o)
	exactly("after update", schema.Tenant, "first_name=Zäta", []string{t7})
	exactly("after update", schema.Tenant, "first_name__iexact=zÄta&email__isnull=true", []string{t7})
	exactly("after update", schema.Tenant, "_search=ZÄT", []string{t7})
	exactly("after update", schema.Tenant, "custom_id=zz-new", []string{t7})
	e.checkAll(t, "after update", false)
	e.checkKnown(t, "after update", false)

	// 2. Delete a tenant (its identity goes with it) and an address (every
	// reference to it is cleared) through the cached service.
	t8 := e.tenants[8]
	pi8 := e.objs[schema.ProtectedIdentity][8].ID
	if e.objs[schema.ProtectedIdentity][8].Values["tenant"] != t8 {
		t.Fatalf("fixture: identity 8 is not tenant 8's")
	}
	if err := e.cached.Delete(ctx, p, tenantRes, t8); err != nil {
		t.Fatalf("delete tenant: %v", err)
	}
	remove(schema.Tenant, t8)
	remove(schema.ProtectedIdentity, pi8)
	a2 := e.addrs[2]
	var refTenants, refPIs []string
	for _, o := range e.objs[schema.Tenant] {
		if o.Values["current_registered_address"] == a2 {
			refTenants = append(refTenants, o.ID)
		}
	}
	for _, o := range e.objs[schema.ProtectedIdentity] {
		if o.Values["current_registered_address"] == a2 || o.Values["previous_address"] == a2 {
			refPIs = append(refPIs, o.ID)
		}
	}
	if len(refTenants) == 0 || len(refPIs) == 0 {
		t.Fatalf("fixture: address 2 should be referenced by tenants and identities")
	}
	if err := e.cached.Delete(ctx, p, addrRes, a2); err != nil {
		t.Fatalf("delete address: %v", err)
	}
	remove(schema.Address, a2)
	for _, name := range []string{schema.Tenant, schema.ProtectedIdentity} {
		for i := range e.objs[name] {
			o := e.objs[name][i]
			for _, f := range []string{"current_registered_address", "previous_address"} {
				if o.Values[f] == a2 {
					vals := make(schema.Values, len(o.Values))
					for k, v := range o.Values {
						vals[k] = v
					}
					vals[f] = nil
					o.Values = vals
				}
			}
			e.objs[name][i] = o
		}
	}
	for _, id := range []string{t8, pi8, a2} {
		for _, name := range []string{schema.Tenant, schema.ProtectedIdentity, schema.Address} {
			exactly("after delete", name, "id="+id, nil)
		}
	}
	exactly("after delete", schema.Tenant, "current_registered_address="+a2, nil)
	exactly("after delete", schema.ProtectedIdentity, "previous_address="+a2+"&first_name__isnull=false", nil)
	exactly("after delete", schema.Tenant, "id="+refTenants[0]+"&current_registered_address__isnull=true&first_name__isnull!=true", []string{refTenants[0]})
	e.checkAll(t, "after delete", false)
	e.checkKnown(t, "after delete", false)

	// 3. Writes through the scanning service (another process, as far as
	// the cached service's cache knows): an update, a create, a bulk of
	// both, and a delete and a create in one step.
	pi10 := e.objs[schema.ProtectedIdentity][9].ID
	o, err = e.scanning.Update(ctx, p, piRes, pi10, listBody(t, "last_name", "Öberg", "birth_date", nil, "phone_number", "+46739999999"))
	if err != nil {
		t.Fatalf("update identity: %v", err)
	}
	replace(schema.ProtectedIdentity, o)
	exactly("after update elsewhere", schema.ProtectedIdentity, "phone_number=%2B46739999999", []string{pi10})
	nt, err := e.scanning.Create(ctx, p, tenantRes, listBody(t, "first_name", "Åsa", "last_name", "Öberg", "email", "ny.person@example.se"))
	if err != nil {
		t.Fatalf("create tenant: %v", err)
	}
	replace(schema.Tenant, nt)
	out, err := e.scanning.Bulk(ctx, p, tenantRes, []Body{
		listBody(t, "id", e.tenants[11], "last_name", nil, "first_name", "Öjvind", "custom_id", nil),
		listBody(t, "corporate_name", "Ny Bolag AB", "custom_id", "dup"),
	})
	if err != nil {
		t.Fatalf("bulk tenants: %v", err)
	}
	for _, o := range out {
		replace(schema.Tenant, o)
	}
	exactly("after bulk elsewhere", schema.Tenant, "email=ny.person@example.se", []string{nt.ID})
	exactly("after bulk elsewhere", schema.Tenant, "first_name=Öjvind&last_name__isnull=true", []string{e.tenants[11]})
	// Delete one tenant and create one more: the count is back where it
	// was, but the deleted object must not linger in any cache.
	t13 := e.tenants[13]
	var pi13 string
	if err := e.scanning.Delete(ctx, p, tenantRes, t13); err != nil {
		t.Fatalf("delete tenant: %v", err)
	}
	remove(schema.Tenant, t13)
	for _, o := range e.objs[schema.ProtectedIdentity] {
		if o.Values["tenant"] == t13 {
			remove(schema.ProtectedIdentity, o.ID)
			pi13 = o.ID
			break
		}
	}
	nt2, err := e.cached.Create(ctx, p, tenantRes, listBody(t, "last_name", "Berg", "ssn", "19121212-1212"))
	if err != nil {
		t.Fatalf("create tenant: %v", err)
	}
	replace(schema.Tenant, nt2)
	for _, name := range []string{schema.Tenant, schema.ProtectedIdentity} {
		exactly("after delete and create elsewhere", name, "id__in="+t13+","+pi13, nil)
	}
	if pi13 == "" {
		t.Fatalf("fixture: tenant 13 should have an identity")
	}
	e.checkAll(t, "after writes elsewhere", true)
	e.checkKnown(t, "after writes elsewhere", false)
	if n := len(e.objs[schema.Tenant]); n != 61 {
		t.Fatalf("model: %d tenants, want 61", n)
	}
	exactly("after writes elsewhere", schema.Tenant, "", listIDs(func() []Object {
		objs := slices.Clone(e.objs[schema.Tenant])
		listOrder(objs)
		return objs
	}()))
	exactly("after writes elsewhere", schema.Tenant, "ssn=191212121212&last_name=Berg&_order_by=-created_at", func() []string {
		var objs []Object
		for _, o := range e.objs[schema.Tenant] {
			if o.Values["ssn"] == "191212121212" && o.Values["last_name"] == "Berg" {
				objs = append(objs, o)
			}
		}
		slices.SortFunc(objs, func(a, b Object) int {
			if c := b.CreatedAt.Compare(a.CreatedAt); c != 0 {
				return c
			}
			return strings.Compare(a.ID, b.ID)
		})
		if len(objs) == 0 || objs[0].ID != nt2.ID {
			t.Fatalf("model: the new tenant should come first")
		}
		return listIDs(objs)
	}())
	e.checkCacheUse(t)
}

// Many lists at once on a cache made stale by a write (one rebuilds it,
// the others wait for it), each asking its own order and case-insensitive
// filters of the set they share: every answer is the scanning service's.
func TestConcurrentListsOnStaleCache(t *testing.T) {
	e := newListEnv(t)
	tenantRes := e.catalog.Resource(schema.Tenant)
	queries := []string{
		"last_name__icontains=BERG&_order_by=last_name&_page=1&_page_size=5&_statistics=true",
		"first_name__istartswith=a&_order_by=-first_name",
		"_search=ö&_order_by=email",
		"last_name__iexact=berg&first_name__iendswith=A",
		"email__icontains=EXAMPLE&_order_by=-last_name,first_name&_page=2&_page_size=3",
	}
	want := map[string]listRun{}
	check := func() {
		for _, qs := range queries {
			vals, _ := url.ParseQuery(qs)
			r, err := e.list(e.scanning, e.p, tenantRes, vals)
			if err != nil {
				t.Fatalf("scanning %s: %v", qs, err)
			}
			want[qs] = r
		}
		if len(want[queries[0]].ids) == 0 || len(want[queries[2]].ids) == 0 {
			t.Fatal("fixture: the icontains or the search query selects nothing")
		}
		var wg sync.WaitGroup
		for i := range 4 * len(queries) {
			qs := queries[i%len(queries)]
			wg.Go(func() {
				vals, _ := url.ParseQuery(qs)
				got, err := e.list(e.cached, e.p, tenantRes, vals)
				switch {
				case err != nil:
					t.Errorf("cached %s: %v", qs, err)
				case !slices.Equal(got.ids, want[qs].ids) || (vals.Has("_statistics") && got.count != want[qs].count):
					t.Errorf("cached %s: %s, count %d want %d", qs, listDiff(got.ids, want[qs].ids), got.count, want[qs].count)
				}
			})
		}
		wg.Wait()
	}
	check()
	if _, err := e.cached.Update(e.ctx, e.p, tenantRes, e.tenants[3], listBody(t, "last_name", "Östberg", "first_name", "Anna")); err != nil {
		t.Fatalf("update: %v", err)
	}
	check()
}
