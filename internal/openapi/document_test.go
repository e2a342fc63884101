package openapi_test

import (
	"context"
	"encoding/json"
	"os"
	"reflect"
	"regexp"
	"slices"
	"testing"
	"time"

	"accounts/internal/httpapi"
	"accounts/internal/schema"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/prometheus/client_golang/prometheus"
)

// load parses and validates one form of the document as OpenAPI 3.0.3,
// its examples included.
func load(t *testing.T, data []byte) *openapi3.T {
	t.Helper()
	loader := openapi3.NewLoader()
	doc, err := loader.LoadFromData(data)
	if err != nil {
		t.Fatalf("the document does not parse: %v", err)
	}
	if doc.OpenAPI != "3.0.3" {
		t.Errorf("openapi %q, want 3.0.3", doc.OpenAPI)
	}
	if err := doc.Validate(context.Background(), openapi3.EnableExamplesValidation()); err != nil {
		t.Fatalf("the document is not valid OpenAPI: %v", err)
	}
	return doc
}

// The document is valid OpenAPI 3.0.3 with valid examples, and its YAML
// form is the same document as its JSON form.
func TestDocumentIsValidOpenAPI(t *testing.T) {
	ref := httpapi.Reference(schema.New())
	fromJSON := load(t, ref.JSON)
	fromYAML := load(t, ref.YAML)
	a, _ := json.Marshal(fromJSON)
	b, _ := json.Marshal(fromYAML)
	var ja, jb any
	json.Unmarshal(a, &ja)
	json.Unmarshal(b, &jb)
	if !reflect.DeepEqual(ja, jb) {
		t.Errorf("the YAML form is not the same document as the JSON form")
	}
}

// Every route of the route table is an operation of the document, and
// every operation of the document a route.
func TestRoutesAreTheDocumentsOperations(t *testing.T) {
	c := schema.New()
	srv := httpapi.New(httpapi.Options{Catalog: c, Registry: prometheus.NewRegistry()})
	routes := srv.Routes()
	ops := httpapi.Reference(c).Operations()
	slices.Sort(routes)
	for _, r := range routes {
		if !slices.Contains(ops, r) {
			t.Errorf("route %s is not in the document", r)
		}
	}
	for _, op := range ops {
		if !slices.Contains(routes, op) {
			t.Errorf("the document's %s is not a route", op)
		}
	}
	// And the document parsed says the same as Operations.
	doc := load(t, httpapi.Reference(c).JSON)
	var parsed []string
	for path, item := range doc.Paths.Map() {
		for method := range item.Operations() {
			parsed = append(parsed, method+" "+path)
		}
	}
	slices.Sort(parsed)
	if !slices.Equal(parsed, ops) {
		t.Errorf("the document's paths are not what Operations lists")
	}
	if len(ops) < 7*len(c.Resources) {
		t.Errorf("only %d operations", len(ops))
	}
}

// Building the document is quick enough to do at every start.
func TestDocumentBuildsQuickly(t *testing.T) {
	start := time.Now()
	httpapi.Reference(schema.New())
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("building the document took %v", d)
	}
}

// identityNumber is a string shaped like a Swedish personal identity
// number.
var identityNumber = regexp.MustCompile(`^(18|19|20)[0-9]{6}[-+]?[0-9]{4}$`)

// Every identity number in the document (examples, code samples) is one
// of testdata/personnummer.json's valid test numbers: a number made up
// could be a living person's.
func TestExampleNumbersAreTestVectors(t *testing.T) {
	data, err := os.ReadFile("../../testdata/personnummer.json")
	if err != nil {
		t.Fatal(err)
	}
	var vectors struct {
		Valid []struct{ Input, Canonical string } `json:"valid"`
	}
	if err := json.Unmarshal(data, &vectors); err != nil {
		t.Fatal(err)
	}
	known := map[string]bool{}
	for _, v := range vectors.Valid {
		known[v.Input], known[v.Canonical] = true, true
	}
	var doc any
	if err := json.Unmarshal(httpapi.Reference(schema.New()).JSON, &doc); err != nil {
		t.Fatal(err)
	}
	found := 0
	var walk func(v any)
	walk = func(v any) {
		switch v := v.(type) {
		case map[string]any:
			for _, x := range v {
				walk(x)
			}
		case []any:
			for _, x := range v {
				walk(x)
			}
		case string:
			for _, word := range regexp.MustCompile(`[0-9+-]+`).FindAllString(v, -1) {
				if identityNumber.MatchString(word) {
					found++
					if !known[word] {
						t.Errorf("the document holds an identity number that is not a test vector")
					}
				}
			}
		}
	}
	walk(doc)
	if found == 0 {
		t.Fatal("the document holds no identity number: its examples lack the ssn")
	}
}

// The pattern of a string field without one of its own (first_name)
// refuses exactly what the service refuses as a control character.
func TestNoControlPatternIsHasControl(t *testing.T) {
	doc := load(t, httpapi.Reference(schema.New()).JSON)
	pattern := doc.Components.Schemas["Protectedidentity"].Value.Properties["first_name"].Value.Pattern
	if pattern == "" {
		t.Fatal("first_name has no pattern")
	}
	re := regexp.MustCompile(pattern)
	for r := rune(0); r <= 0x2100; r++ {
		s := "a" + string(r) + "b"
		if re.MatchString(s) == schema.HasControl(s) {
			t.Errorf("U+%04X: the pattern matches %v, the service refuses %v", r, re.MatchString(s), schema.HasControl(s))
		}
	}
}
