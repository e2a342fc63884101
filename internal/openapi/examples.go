package openapi

import (
	"fmt"

	"accounts/internal/personnummer"
	"accounts/internal/schema"
)

// ExampleIDs are the ids the examples and code samples use for one object
// of each resource, by resource name. A test that runs the samples
// replaces them with the ids of objects it created.
var ExampleIDs = map[string]string{
	schema.Organization:      "5f0c7a2e-8d41-4b6a-9c3e-1a2b3c4d5e01",
	schema.Tenant:            "5f0c7a2e-8d41-4b6a-9c3e-1a2b3c4d5e02",
	schema.Subtenant:         "5f0c7a2e-8d41-4b6a-9c3e-1a2b3c4d5e03",
	schema.Address:           "5f0c7a2e-8d41-4b6a-9c3e-1a2b3c4d5e04",
	schema.ProtectedIdentity: "5f0c7a2e-8d41-4b6a-9c3e-1a2b3c4d5e05",
}

// exampleCreatedAt is the created_at of every example object.
const exampleCreatedAt = "2026-11-27T12:00:00.123456Z"

// tolvanSSN is Skatteverket's published test person (testdata/personnummer.json),
// the one the README's walkthrough creates: never a number made up.
const tolvanSSN = "19121212-1212"

// example is what the document shows of one resource: a create body, an
// update body and a list query, each a valid request (a test sends them).
type example struct {
	create map[string]any
	update map[string]any
	// query is a list request's query string: a filter and paging.
	query string
}

// refTo is a reference to the example object of a resource.
func refTo(resource string) map[string]any { return map[string]any{"id": ExampleIDs[resource]} }

// examples are the requests of each resource's examples and code samples.
var examples = map[string]example{
	schema.Organization: {
		create: map[string]any{"name": "Acme Fastigheter AB", "custom_id": "ORG-1001"},
		update: map[string]any{"custom_id": "ORG-1002"},
		query:  "name__istartswith=acme&_page=1&_page_size=50",
	},
	schema.Tenant: {
		create: map[string]any{"first_name": "Test", "last_name": "Testsson", "organization": refTo(schema.Organization)},
		update: map[string]any{"custom_id": "HYR-1001"},
		query:  "organization=" + ExampleIDs[schema.Organization] + "&_order_by=last_name,-created_at",
	},
	schema.Subtenant: {
		create: map[string]any{"first_name": "Test", "last_name": "Testsson", "is_active": true},
		update: map[string]any{"is_active": false},
		query:  "is_active=true&_slim=true",
	},
	schema.Address: {
		create: map[string]any{"street": "Storgatan", "street_number": "1A", "postal_code": "123 45", "city": "Stockholm", "country": "Sverige"},
		update: map[string]any{"care_of": "c/o Testsson"},
		query:  "city__iexact=stockholm&_statistics=true",
	},
	schema.ProtectedIdentity: {
		create: map[string]any{
			"tenant":     refTo(schema.Tenant),
			"first_name": "Tolvan", "last_name": "Tolvansson",
			"ssn": tolvanSSN, "email": "tolvan@example.se",
		},
		update: map[string]any{"phone_number": "+46701740605", "custom_id": "SKY-1001"},
		query:  "last_name__istartswith=tolv&tenant__isnull=false&_page=1&_page_size=50",
	},
}

// exampleOf returns a resource's examples; a resource without them is a
// mistake of this package, found by its tests at once.
func exampleOf(res *schema.Resource) example {
	ex, ok := examples[res.Name]
	if !ok {
		panic(fmt.Sprintf("openapi: no examples for %s", res.Name))
	}
	return ex
}

// exampleObject is the object a create of the example body answers: every
// field, those the body leaves out at their default or null, the ssn in
// its stored 12-digit form.
func exampleObject(res *schema.Resource) map[string]any {
	ex := exampleOf(res)
	obj := map[string]any{"id": ExampleIDs[res.Name], "created_at": exampleCreatedAt}
	for _, f := range res.Fields {
		v, ok := ex.create[f.Name]
		switch {
		case !ok:
			v = f.Default
		case f.Type == schema.SSN:
			n, err := personnummer.Parse(v.(string))
			if err != nil {
				panic("openapi: the example ssn of " + res.Name + " is not valid")
			}
			v = n.Canonical()
		}
		obj[f.Name] = v
	}
	return obj
}

// slimObject is exampleObject in the slim form.
func slimObject(res *schema.Resource) map[string]any {
	full := exampleObject(res)
	obj := map[string]any{}
	for _, name := range res.Slim {
		obj[name] = full[name]
	}
	return obj
}
