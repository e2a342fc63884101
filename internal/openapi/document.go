// Package openapi builds the service's OpenAPI 3.0.3 document from the
// resource declarations (internal/schema) and the list query language
// (internal/query) the service runs on, never by hand: the document can't
// describe a field, a rule or a filter the service does not have, nor miss
// one it has.
package openapi

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	"accounts/internal/auth"
	"accounts/internal/query"
	"accounts/internal/schema"
)

// HTTP is what the document takes from the HTTP layer: the fixed error
// bodies it writes, shown as they are, and its limits.
type HTTP struct {
	ParseError, Unauthenticated, Forbidden, NotFound, MethodNotAllowed,
	TooLarge, Unsupported, Throttled, Overloaded, Internal map[string]string
	// BodyLimit and BulkBodyLimit are the largest bodies, in bytes, of a
	// single object and of a bulk write.
	BodyLimit, BulkBodyLimit int64
	// BulkItems is the most items a bulk write takes.
	BulkItems int
}

// Service paths: the endpoints that are not a resource's.
const (
	PathHealthz    = "/healthz"
	PathReadyz     = "/readyz"
	PathMetrics    = "/metrics"
	PathJSON       = "/openapi.json"
	PathYAML       = "/openapi.yaml"
	PathDocs       = "/docs/"
	PathDocsScript = "/docs/redoc.standalone.js"
)

// Document is the built document.
type Document struct {
	// JSON and YAML are the document in each form, byte for byte what
	// /openapi.json and /openapi.yaml serve.
	JSON, YAML []byte
	operations []string
}

// Operations lists the document's operations as "METHOD path", sorted.
func (d *Document) Operations() []string { return slices.Clone(d.operations) }

// securitySchemes are the seven headers of the contract's section 2: one
// requirement that names them all, so all seven are required together.
var securitySchemes = []struct{ header, about string }{
	{auth.HeaderCustomerID, "UUID of the customer (the property-management company) whose data is addressed."},
	{auth.HeaderApplicationID, "UUID of the integration application."},
	{auth.HeaderServiceID, "UUID of the service within that application."},
	{auth.HeaderServiceVersionID, "UUID of the activated service version."},
	{auth.HeaderClientCT, "Content type of the calling client entity, e.g. `accounts.integrationuseragent`."},
	{auth.HeaderClientEntity, "UUID of the calling client entity (the activation)."},
	{auth.HeaderClientSecret, "The secret issued for that client entity. Never put it in a URL."},
}

// obj is a JSON object of the document.
type obj = map[string]any

// New builds the document of the catalog's resources and the service
// endpoints.
func New(c *schema.Catalog, bodies HTTP) *Document {
	b := &builder{catalog: c, bodies: bodies, paths: obj{}, schemas: obj{}}
	b.serviceEndpoints()
	var tags []any
	for _, res := range c.Resources {
		b.resource(res)
		tags = append(tags, obj{"name": res.Name, "description": b.resourceAbout(res)})
	}
	tags = append(tags, obj{"name": tagService, "description": "Health, readiness, metrics and this reference: no credentials needed."})
	schemes := obj{}
	requirement := obj{}
	for _, s := range securitySchemes {
		schemes[s.header] = obj{"type": "apiKey", "in": "header", "name": s.header,
			"description": s.about + " All seven X-PIGELLO-* headers are required together."}
		requirement[s.header] = []any{}
	}
	b.errorSchemas()
	doc := obj{
		"openapi": "3.0.3",
		"info": obj{
			"title":       "Accounts",
			"version":     "2.0.0",
			"description": apiAbout,
			"license":     obj{"name": "Proprietary"},
			"contact":     obj{"name": "Accounts service operators"},
		},
		"servers":  []any{obj{"url": ExampleServer, "description": "A local server, as the README's walkthrough starts it."}},
		"security": []any{requirement},
		"tags":     tags,
		"paths":    b.paths,
		"components": obj{
			"schemas":         b.schemas,
			"securitySchemes": schemes,
			"responses":       b.errorResponses(),
			"parameters":      b.sharedParameters(),
		},
	}
	// One round through JSON turns the tree into plain maps, slices and
	// float64s: what the YAML writer takes, and what a reader would see.
	data, err := json.MarshalIndent(doc, "", "  ")
	if err != nil {
		panic("openapi: " + err.Error())
	}
	var plain any
	if err := json.Unmarshal(data, &plain); err != nil {
		panic("openapi: " + err.Error())
	}
	slices.Sort(b.operations)
	return &Document{JSON: append(data, '\n'), YAML: toYAML(plain), operations: b.operations}
}

// ExampleServer is the base URL of the examples and code samples.
const ExampleServer = "http://127.0.0.1:8080"

const tagService = "Service"

const apiAbout = `The Accounts application of the Pigello Core API: the real identity of tenants and sub-tenants who live under Swedish protected personal data (Protectedidentity), and the resources it points to.

**Authentication.** Every operation but the service endpoints needs all seven ` + "`X-PIGELLO-*`" + ` headers of one API client (issued with ` + "`accounts client create`" + `). Any of them missing or wrong is a 401 with the same body; a client of scope ` + "`read`" + ` gets 403 on a write. Each customer sees only its own objects: another customer's object answers 404, like one that does not exist.

**Conventions.** JSON in UTF-8; every path ends with ` + "`/`" + ` (a path without it answers 308 to the slashed path). Updates are PATCH (partial); PUT answers 405 with ` + "`Allow`" + `. A reference is ` + "`{\"id\": \"<uuid>\"}`" + ` or null. Every object carries every field of its resource; unset fields are null. Personal fields are stored encrypted and every read of them is audited.

**Errors.** 400 names each failing field with a list of messages (` + "`non_field_errors`" + ` for the object); 401, 403, 404, 405, 413, 415, 429, 500 and 503 have the fixed bodies shown. 429 and 503 carry ` + "`Retry-After`" + ` in whole seconds. Every response carries ` + "`X-Request-ID`" + `: an incoming one of at most 64 characters of ` + "`[A-Za-z0-9._:-]`" + ` is echoed, else the server makes one.

**Lists.** ` + "`GET B`" + ` and ` + "`GET B list/`" + ` list a resource: filters (` + "`field=value`" + `, ` + "`field__op=value`" + `, a trailing ` + "`!`" + ` on the name negates: ` + "`first_name__icontains!=ann`" + `), all AND-ed, and the reserved ` + "`_page`, `_page_size`, `_order_by`, `_search`, `_slim`, `_statistics`, `_jsonl`" + `. An unknown parameter is a 400 on its name: nothing is silently ignored.`

// builder accumulates the document's paths and schemas.
type builder struct {
	catalog    *schema.Catalog
	bodies     HTTP
	paths      obj
	schemas    obj
	operations []string
}

// operation adds one operation under path.
func (b *builder) operation(method, path string, op obj) {
	item, _ := b.paths[path].(obj)
	if item == nil {
		item = obj{}
		b.paths[path] = item
	}
	item[strings.ToLower(method)] = op
	b.operations = append(b.operations, method+" "+path)
}

// resourceAbout describes a resource: what it is, its path, and what
// deleting one does.
func (b *builder) resourceAbout(res *schema.Resource) string {
	about := map[string]string{
		schema.ProtectedIdentity: "The real identity of a tenant or sub-tenant who lives under protected personal data. Exactly one of `tenant` and `sub_tenant` is set, and each has at most one protected identity.",
		schema.Tenant:            "A tenant: a person or company renting from the customer.",
		schema.Subtenant:         "A sub-tenant: a person or company renting from a tenant.",
		schema.Organization:      "An organization of the customer's; organizations form a tree through `organization`.",
		schema.Address:           "A postal address, with optional coordinates.",
	}[res.Name]
	if about == "" {
		panic("openapi: no description of " + res.Name)
	}
	return fmt.Sprintf("%s\n\nCollection: `%s`. Deleting an object is a hard delete.%s", about, res.Path, b.deletionAbout(res))
}

// deletionAbout says what deleting an object does to the objects that
// point to it.
func (b *builder) deletionAbout(res *schema.Resource) string {
	var cascade, setNull []string
	for _, r := range b.catalog.ReferencesTo(res) {
		name := r.Resource.Name + "." + r.Field.Name
		if r.Field.OnDelete == schema.Cascade {
			cascade = append(cascade, name)
		} else {
			setNull = append(setNull, name)
		}
	}
	s := ""
	if len(cascade) > 0 {
		s += " It deletes the objects that point to it through " + strings.Join(cascade, ", ") + "."
	}
	if len(setNull) > 0 {
		s += " It sets " + strings.Join(setNull, ", ") + " to null where they point to it."
	}
	return s
}

// ref points to a component of the document.
func ref(kind, name string) obj { return obj{"$ref": "#/components/" + kind + "/" + name} }

// jsonContent is an application/json body of the schema, with its
// example when one is given.
func jsonContent(schemaValue any, examples ...any) obj {
	m := obj{"schema": schemaValue}
	if len(examples) == 1 {
		m["example"] = examples[0]
	}
	return obj{"application/json": m}
}

// requestIDHeader is on every response.
var requestIDHeader = obj{"X-Request-ID": obj{
	"description": "The request's id: an incoming X-Request-ID of at most 64 characters of [A-Za-z0-9._:-], echoed, or one the server made.",
	"schema":      obj{"type": "string"},
}}

// success is a 2xx response.
func success(description string, content obj) obj {
	r := obj{"description": description, "headers": requestIDHeader}
	if content != nil {
		r["content"] = content
	}
	return r
}

// listParameters is the parameters of a list: the reserved ones and every
// filter of the resource.
func (b *builder) listParameters(res *schema.Resource) []any {
	params := []any{
		ref("parameters", "page"), ref("parameters", "page_size"),
		obj{"name": "_order_by", "in": "query", "required": false,
			"description": "Comma-separated field names, `-` before a name for descending, e.g. `last_name,-created_at`. Default: `created_at`, then `id`. Fields: " + filterableNames(res) + ".",
			"schema":      obj{"type": "string"}, "example": "-created_at"},
		obj{"name": "_search", "in": "query", "required": false,
			"description": "Case-insensitive substring match over " + searchNames(res) + ", OR-ed; one substring, white space included. May not be empty.",
			"schema":      obj{"type": "string", "minLength": 1}},
		ref("parameters", "slim"), ref("parameters", "statistics"), ref("parameters", "jsonl"),
	}
	fields := append([]*schema.Field{schema.IDField, schema.CreatedAtField}, res.Fields...)
	for _, f := range fields {
		for _, op := range query.Ops(f.Type) {
			params = append(params, filterParameter(f, op))
		}
	}
	return params
}

func filterableNames(res *schema.Resource) string {
	names := []string{"`id`", "`created_at`"}
	for _, f := range res.Fields {
		names = append(names, "`"+f.Name+"`")
	}
	return strings.Join(names, ", ")
}

func searchNames(res *schema.Resource) string {
	var names []string
	for _, f := range res.SearchFields() {
		names = append(names, "`"+f.Name+"`")
	}
	return strings.Join(names, ", ")
}

// filterParameter is one filter: "field" for exact, "field__op" for the
// others. A trailing "!" negates any of them.
func filterParameter(f *schema.Field, op query.Op) obj {
	name := f.Name
	if op != query.Exact {
		name += "__" + string(op)
	}
	var value obj
	var about string
	switch op {
	case query.IsNull:
		value, about = obj{"type": "boolean"}, "`true`: the field is null; `false`: it is set."
	case query.In:
		value, about = obj{"type": "string"}, fmt.Sprintf("A comma-separated list of values: the field equals one of them. A list's `__in` filters hold at most %d values in all.", query.MaxInValues)
	default:
		value = filterValue(f)
		about = map[query.Op]string{
			query.Exact: "Equal to the value.", query.IExact: "Equal to the value, ignoring case.",
			query.Contains: "Contains the value.", query.IContains: "Contains the value, ignoring case.",
			query.StartsWith: "Starts with the value.", query.IStartsWith: "Starts with the value, ignoring case.",
			query.EndsWith: "Ends with the value.", query.IEndsWith: "Ends with the value, ignoring case.",
			query.GT: "Greater than the value.", query.GTE: "Greater than or equal to the value.",
			query.LT: "Less than the value.", query.LTE: "Less than or equal to the value.",
		}[op]
	}
	return obj{
		"name": name, "in": "query", "required": false,
		"description": fmt.Sprintf("Filter on `%s` (operator `%s`): %s `%s!` negates it.", f.Name, op, about, name),
		"schema":      value,
	}
}

// filterValue is the schema of one operand of a filter on f.
func filterValue(f *schema.Field) obj {
	switch f.Type {
	case schema.Ref, schema.ID:
		return obj{"type": "string", "format": "uuid"}
	case schema.Bool:
		return obj{"type": "boolean"}
	case schema.Number:
		return obj{"type": "number", "format": "double"}
	case schema.Date:
		return obj{"type": "string", "format": "date"}
	case schema.DateTime:
		return obj{"type": "string", "format": "date-time"}
	case schema.SSN:
		return ssnSchema()
	}
	return obj{"type": "string"}
}

// ssnPattern is the shape of an accepted identity number; the date and
// the Luhn check digit are checked by the service (a 400 on the field).
const ssnPattern = `^(18|19|20)[0-9]{6}[-+]?[0-9]{4}$`

func ssnSchema() obj {
	return obj{"type": "string", "minLength": 12, "maxLength": 13, "pattern": ssnPattern}
}

func (b *builder) sharedParameters() obj {
	boolParam := func(name, about string) obj {
		return obj{"name": name, "in": "query", "required": false, "description": about, "schema": obj{"type": "boolean"}}
	}
	return obj{
		"pk": obj{"name": "pk", "in": "path", "required": true,
			"description": "The object's id. A malformed id answers 404, like an unknown one.",
			"schema":      obj{"type": "string"}, "example": ExampleIDs[schema.ProtectedIdentity]},
		"page": obj{"name": "_page", "in": "query", "required": false,
			"description": fmt.Sprintf("1-based page number; must be given with `_page_size`. (`_page` − 1) × `_page_size` is at most %d. Without both, the whole result is returned, streamed.", query.MaxOffset),
			"schema":      obj{"type": "integer", "minimum": 1}, "example": 1},
		"page_size": obj{"name": "_page_size", "in": "query", "required": false,
			"description": "Page size; must be given with `_page`.",
			"schema":      obj{"type": "integer", "minimum": 1, "maximum": query.MaxPageSize}, "example": 50},
		"slim":       boolParam("_slim", "`true`: each object in its slim form."),
		"statistics": boolParam("_statistics", "`true`: the body is `{\"data\": [...], \"statistics\": {...}}`, where `count` counts the matches before paging."),
		"jsonl":      boolParam("_jsonl", "`true`: `application/jsonl`, one object a line, streamed. Can't be combined with `_statistics`."),
	}
}
