package httpapi_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"reflect"
	"testing"
	"unicode/utf8"

	"accounts/internal/cli"
	"accounts/internal/config"
	"accounts/internal/schema"
	"accounts/internal/seal"
)

// fuzzService is a real service on a SQLite file, with a customer, a
// client, and one object of each resource to refer to.
type fuzzService struct {
	handler http.Handler
	headers map[string]string
	refs    map[string]string // resource name -> id of a fixture
}

func newFuzzService(f *testing.F) *fuzzService {
	dir := f.TempDir()
	vars := map[string]string{
		config.EnvDatabase:  filepath.Join(dir, "accounts.db"),
		config.EnvMasterKey: seal.GenerateMasterKey(),
	}
	run := func(v any, args ...string) {
		var out bytes.Buffer
		err := cli.Run(context.Background(), append(args, "--json"), cli.IO{Env: config.MapEnv(vars), Stdout: &out, Stderr: io.Discard})
		if err != nil || json.Unmarshal(out.Bytes(), v) != nil {
			f.Fatalf("accounts %s %s: %v", args[0], args[1], err)
		}
	}
	var customer struct{ ID string }
	run(&customer, "customer", "create", "--name", "Fuzz AB")
	var client struct{ Headers map[string]string }
	run(&client, "client", "create", "--customer", customer.ID)
	cfg := config.Config{Database: vars[config.EnvDatabase], MasterKey: vars[config.EnvMasterKey]}
	app, err := cli.OpenApp(context.Background(), cfg, slog.New(slog.NewJSONHandler(io.Discard, nil)))
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { app.Close() })
	s := &fuzzService{handler: app.Handler, headers: client.Headers, refs: map[string]string{}}
	for _, fx := range []struct{ res, path, body string }{
		{schema.Organization, "/sales/organization/", `{"name": "Fuzz Org"}`},
		{schema.Address, "/common/address/", `{"street": "Fuzzgatan", "postal_code": "123 45", "city": "Fuzzby", "country": "Sverige"}`},
		{schema.Tenant, "/accounts/users/customer/tenant/", `{"first_name": "Fuzz"}`},
		{schema.Subtenant, "/accounts/users/customer/subtenant/", `{"last_name": "Fuzz"}`},
	} {
		status, obj := s.send("POST", fx.path, []byte(fx.body))
		if status != http.StatusCreated {
			f.Fatalf("fixture %s: status %d", fx.res, status)
		}
		s.refs[fx.res] = obj.(map[string]any)["id"].(string)
	}
	return s
}

func (s *fuzzService) send(method, path string, body []byte) (int, any) {
	req := httptest.NewRequest(method, path, bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	for k, v := range s.headers {
		req.Header.Set(k, v)
	}
	rec := httptest.NewRecorder()
	s.handler.ServeHTTP(rec, req)
	var out any
	json.Unmarshal(rec.Body.Bytes(), &out)
	return rec.Code, out
}

// FuzzObjectBody sends fuzzed bodies to every resource's create, bulk
// write and update, through the real handler and a real SQLite store. It
// checks: the answer is 201/200 or 400, never a 500; an accepted object's
// values obey every field limit; every field the body set comes back as the
// body's value decodes (exactly, or in canonical form); and writing the
// returned values back changes nothing (they re-encode and decode to
// themselves).
func FuzzObjectBody(f *testing.F) {
	s := newFuzzService(f)
	tenantRef := `{"id": "` + s.refs[schema.Tenant] + `"}`
	seeds := []struct {
		res  uint8
		body string
	}{
		{0, `{"tenant": ` + tenantRef + `, "first_name": "Tolvan", "last_name": "Tolvansson", "email": "tolvan@example.se", "phone_number": "+46701234567", "birth_date": "1912-12-12", "custom_id": "x"}`},
		{0, `{"sub_tenant": {"id": "` + s.refs[schema.Subtenant] + `"}, "first_name": "A\u00e5\ud83d\ude00"}`},
		{1, `{"first_name": "Anna", "ssn_is_coordination_number": true, "organization": {"id": "` + s.refs[schema.Organization] + `"}}`},
		{2, `{"corporate_name": "Fuzz AB", "is_active": false}`},
		{3, `{"name": "Org", "organization": null}`},
		{4, `{"street": "Storgatan", "street_number": "12B", "postal_code": "111 22", "city": "Stockholm", "country": "Sverige", "latitude": 59.3, "longitude": 18.06}`},
		{0, `{"first_name": "\ud800"}`},
		{1, `{"first_name": "A", "first_name": "B"}`},
		{4, `{"latitude": 1e400}`},
	}
	for _, sd := range seeds {
		f.Add(sd.res, []byte(sd.body), false)
		f.Add(sd.res, []byte(sd.body), true)
	}
	catalog := schema.New()
	f.Fuzz(func(t *testing.T, which uint8, body []byte, bulk bool) {
		res := catalog.Resources[int(which)%len(catalog.Resources)]
		path := res.Path
		if bulk {
			path += "list/"
			body = append(append([]byte{'['}, body...), ']')
		}
		status, out := s.send("POST", path, body)
		switch status {
		case http.StatusBadRequest:
			return
		case http.StatusCreated:
		default:
			t.Fatalf("%s: status %d, want 201 or 400", res.Name, status)
		}
		if !utf8.Valid(body) {
			t.Fatalf("%s: accepted a body that is not UTF-8", res.Name)
		}
		var sent []map[string]json.RawMessage
		var objs []any
		if bulk {
			objs, _ = out.([]any)
			if json.Unmarshal(body, &sent) != nil || len(objs) != len(sent) {
				t.Fatalf("bulk of %d answered %d objects", len(sent), len(objs))
			}
		} else {
			sent = make([]map[string]json.RawMessage, 1)
			objs = []any{out}
			if json.Unmarshal(body, &sent[0]) != nil {
				t.Fatalf("accepted body does not decode")
			}
		}
		for i, o := range objs {
			obj, ok := o.(map[string]any)
			if !ok {
				t.Fatalf("201 body holds something else than an object")
			}
			checkAccepted(t, s, res, sent[i], obj)
		}
	})
}

// checkAccepted checks one accepted object: its values obey their fields,
// every field sent comes back as it decodes, and writing the returned
// values back changes nothing.
func checkAccepted(t *testing.T, s *fuzzService, res *schema.Resource, sent map[string]json.RawMessage, obj map[string]any) {
	t.Helper()
	checkObject(t, res, obj)
	for name, raw := range sent {
		fld := res.Field(name)
		if fld == nil {
			continue // id, created_at: read-only, ignored
		}
		want, msg := fld.Decode(raw)
		if msg != "" {
			t.Fatalf("%s.%s: accepted a value its field refuses", res.Name, name)
		}
		if !sameValue(fld, want, obj[name]) {
			t.Fatalf("%s.%s: returned value differs from the one sent", res.Name, name)
		}
	}
	update := map[string]any{}
	for _, fld := range res.Fields {
		update[fld.Name] = obj[fld.Name]
	}
	data, _ := json.Marshal(update)
	status, again := s.send("PATCH", res.Path+obj["id"].(string)+"/", data)
	if status != http.StatusOK {
		t.Fatalf("%s: writing back the returned values: status %d", res.Name, status)
	}
	if !reflect.DeepEqual(again, any(obj)) {
		t.Fatalf("%s: writing back the returned values changed them", res.Name)
	}
}

// checkObject checks every field of a returned object against its
// declaration, independently of the decoder that let it in.
func checkObject(t *testing.T, res *schema.Resource, obj map[string]any) {
	t.Helper()
	if len(obj) != len(res.Fields)+2 {
		t.Fatalf("%s: %d keys, want every field", res.Name, len(obj))
	}
	for _, fld := range res.Fields {
		v, present := obj[fld.Name]
		if !present {
			t.Fatalf("%s.%s: missing", res.Name, fld.Name)
		}
		if v == nil {
			if !fld.Nullable() {
				t.Fatalf("%s.%s: null", res.Name, fld.Name)
			}
			continue
		}
		switch fld.Type {
		case schema.Bool:
			if _, ok := v.(bool); !ok {
				t.Fatalf("%s.%s: not a boolean", res.Name, fld.Name)
			}
		case schema.Number:
			n, ok := v.(float64)
			if !ok || n < fld.Min || n > fld.Max {
				t.Fatalf("%s.%s: not a number within its bounds", res.Name, fld.Name)
			}
		case schema.Ref:
			ref, ok := v.(map[string]any)
			id, _ := ref["id"].(string)
			if !ok || len(ref) != 1 || len(id) != 36 {
				t.Fatalf("%s.%s: not a reference", res.Name, fld.Name)
			}
		default:
			str, ok := v.(string)
			if !ok || str == "" || !utf8.ValidString(str) || schema.HasControl(str) {
				t.Fatalf("%s.%s: not a clean non-blank string", res.Name, fld.Name)
			}
			if fld.MaxLen > 0 && utf8.RuneCountInString(str) > fld.MaxLen {
				t.Fatalf("%s.%s: %d characters, limit %d", res.Name, fld.Name, utf8.RuneCountInString(str), fld.MaxLen)
			}
			data, _ := json.Marshal(str)
			if back, msg := fld.Decode(data); msg != "" || back != str {
				t.Fatalf("%s.%s: the returned value does not decode to itself", res.Name, fld.Name)
			}
		}
	}
}

// sameValue compares a decoded value with its JSON answer.
func sameValue(fld *schema.Field, want, got any) bool {
	if want == nil || got == nil {
		return want == nil && got == nil
	}
	if fld.Type == schema.Ref {
		ref, _ := got.(map[string]any)
		return ref["id"] == want
	}
	return reflect.DeepEqual(want, got)
}
