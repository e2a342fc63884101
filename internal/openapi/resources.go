package openapi

import (
	"fmt"
	"net/http"
	"strings"

	"accounts/internal/schema"
)

// resource adds a resource's schemas and its seven operations.
func (b *builder) resource(res *schema.Resource) {
	b.resourceSchemas(res)
	ex := exampleOf(res)
	n := res.Name
	item := res.Path + "{pk}/"
	list := res.Path + "list/"
	pk := []any{ref("parameters", "pk")}
	itemPath := res.Path + ExampleIDs[n] + "/"

	b.operation("GET", res.Path, b.op(res, "list"+n+"Collection", "List "+n+" objects (the collection path)",
		"The same list as `GET "+list+"`.", b.listParameters(res), nil,
		b.listResponses(res), sample{method: "GET", path: res.Path + "?" + ex.query}))
	b.operation("POST", res.Path, b.op(res, "create"+n, "Create "+article(n),
		"Creates one object and answers it whole.", nil,
		b.requestBody(n+"Request", exampleOf(res).create),
		b.responses(res, http.StatusCreated, "The object created.", n, exampleObject(res), true, false),
		sample{method: "POST", path: res.Path, body: ex.create}))
	b.operation("GET", list, b.op(res, "list"+n, "List "+n+" objects",
		"Filters, ordering, paging, search and the slim form: see the parameters. Unpaged, the whole result is streamed.",
		b.listParameters(res), nil, b.listResponses(res), sample{method: "GET", path: list + "?" + ex.query}))
	b.operation("POST", list, b.op(res, "bulkWrite"+n, "Create or update "+n+" objects in bulk",
		"Each item without `id` is created; each item with `id` is a partial update of that object. "+fmt.Sprintf("At most %d items, written in one transaction: all or nothing.", b.bodies.BulkItems)+" On failure, 400 with an array of the same length: one error object per item, `{}` for the items that were fine.",
		nil, b.bulkRequestBody(res), b.bulkResponses(res),
		sample{method: "POST", path: list, body: []any{bulkExample(res)}}))
	b.operation("GET", item, b.op(res, "get"+n, "Get "+article(n), "Answers the object, every field of it.", pk, nil,
		b.responses(res, http.StatusOK, "The object.", n, exampleObject(res), false, true),
		sample{method: "GET", path: itemPath}))
	b.operation("PATCH", item, b.op(res, "update"+n, "Update "+article(n),
		"A partial update: only the fields sent change. Rules between fields are checked on the object as it will be after the update. Answers the whole object. An object the customer does not have is a 404 whatever the body (past its limit included), as the object is looked up before the body is read.",
		pk, b.requestBody("Patched"+n+"Request", ex.update),
		b.responses(res, http.StatusOK, "The whole object after the update.", n, exampleObject(res), true, true),
		sample{method: "PATCH", path: itemPath, body: ex.update}))
	b.operation("DELETE", item, b.op(res, "delete"+n, "Delete "+article(n), "A hard delete."+b.deletionAbout(res), pk, nil,
		b.responses(res, http.StatusNoContent, "Deleted.", "", nil, false, true),
		sample{method: "DELETE", path: itemPath}))
}

// bulkExample is one update item of a bulk write.
func bulkExample(res *schema.Resource) map[string]any {
	item := map[string]any{"id": ExampleIDs[res.Name]}
	for k, v := range exampleOf(res).update {
		item[k] = v
	}
	return item
}

// op is one operation of a resource.
func (b *builder) op(res *schema.Resource, id, summary, description string, params []any, body obj, responses obj, s sample) obj {
	o := obj{
		"operationId":   id,
		"summary":       summary,
		"tags":          []any{res.Name},
		"responses":     responses,
		"x-codeSamples": s.all(),
	}
	if description != "" {
		o["description"] = description
	}
	if params != nil {
		o["parameters"] = params
	}
	if body != nil {
		o["requestBody"] = body
	}
	return o
}

func (b *builder) requestBody(schemaName string, example map[string]any) obj {
	return obj{"required": true, "content": jsonContent(ref("schemas", schemaName), example)}
}

func (b *builder) bulkRequestBody(res *schema.Resource) obj {
	return obj{"required": true, "content": jsonContent(obj{
		"type": "array", "maxItems": b.bodies.BulkItems, "items": ref("schemas", res.Name+"BulkItem"),
	}, []any{bulkExample(res)})}
}

// responses are an operation's answers: its success and every error it
// can meet. body says whether it reads a request body (413, 415);
// item whether it names one object (404).
func (b *builder) responses(res *schema.Resource, status int, description, schemaName string, example any, body, item bool) obj {
	var content obj
	if schemaName != "" {
		content = jsonContent(ref("schemas", schemaName), example)
	}
	r := obj{fmt.Sprint(status): success(description, content)}
	b.errors(r, status != http.StatusOK || body, body, item)
	return r
}

// errors adds the error responses of an authenticated operation: write
// says a read client is refused (403).
func (b *builder) errors(r obj, write, body, item bool) {
	r["400"] = ref("responses", "BadRequest")
	r["401"] = ref("responses", "Unauthorized")
	if write {
		r["403"] = ref("responses", "Forbidden")
	}
	if item {
		r["404"] = ref("responses", "NotFound")
	}
	if body {
		r["413"] = ref("responses", "PayloadTooLarge")
		r["415"] = ref("responses", "UnsupportedMediaType")
	}
	r["429"] = ref("responses", "TooManyRequests")
	r["500"] = ref("responses", "InternalServerError")
	r["503"] = ref("responses", "ServiceUnavailable")
}

func (b *builder) listResponses(res *schema.Resource) obj {
	n := res.Name
	objects := obj{"anyOf": []any{
		obj{"type": "array", "items": ref("schemas", n)},
		obj{"type": "array", "items": ref("schemas", n+"Slim")},
	}}
	r := obj{"200": success("The matching objects: an array; with `_statistics=true` the array and the counts; with `_jsonl=true` one object a line.", obj{
		"application/json": obj{
			"schema":  obj{"anyOf": []any{objects, ref("schemas", n+"Statistics")}},
			"example": []any{exampleObject(res)},
		},
		"application/jsonl": obj{"schema": objects, "example": []any{exampleObject(res)}},
	})}
	b.errors(r, false, false, false)
	return r
}

func (b *builder) bulkResponses(res *schema.Resource) obj {
	r := obj{"201": success("The objects written, in request order.", jsonContent(
		obj{"type": "array", "items": ref("schemas", res.Name)}, []any{exampleObject(res)}))}
	b.errors(r, true, true, false)
	r["400"] = ref("responses", "BulkBadRequest")
	return r
}

// resourceSchemas declares the resource's object, its slim form, the
// bodies of a create, an update and a bulk item, and the statistics
// envelope of a list.
func (b *builder) resourceSchemas(res *schema.Resource) {
	n := res.Name
	full := obj{}
	example := exampleObject(res)
	var all []any
	for _, f := range append([]*schema.Field{schema.IDField, schema.CreatedAtField}, res.Fields...) {
		full[f.Name] = b.fieldSchema(res, f, modeResponse, example)
		all = append(all, f.Name)
	}
	b.schemas[n] = obj{"type": "object", "description": b.resourceAbout(res), "properties": full,
		"required": all, "additionalProperties": false, "example": example}

	slim := obj{}
	var slimNames []any
	for _, name := range res.Slim {
		slim[name] = full[name]
		slimNames = append(slimNames, name)
	}
	b.schemas[n+"Slim"] = obj{"type": "object", "description": "The slim form of " + article(n) + " (`_slim=true`).",
		"properties": slim, "required": slimNames, "additionalProperties": false, "example": slimObject(res)}

	b.schemas[n+"Request"] = b.bodySchema(res, modeCreate, "The body of a create. "+rulesAbout(res))
	b.schemas["Patched"+n+"Request"] = b.bodySchema(res, modeUpdate, "The body of an update: any of the fields. "+rulesAbout(res))
	b.schemas[n+"BulkItem"] = b.bodySchema(res, modeBulk, "An item of a bulk write: with `id`, an update of that object; without, a create (required fields required). "+rulesAbout(res))

	nullableInt := obj{"type": "integer", "nullable": true}
	b.schemas[n+"Statistics"] = obj{"type": "object", "required": []any{"data", "statistics"}, "additionalProperties": false,
		"properties": obj{
			"data": obj{"anyOf": []any{
				obj{"type": "array", "items": ref("schemas", n)},
				obj{"type": "array", "items": ref("schemas", n+"Slim")},
			}},
			"statistics": obj{"type": "object", "required": []any{"count", "page", "page_size", "page_count"}, "additionalProperties": false,
				"description": "`count` is the number of matches before paging; the page fields are null when the list does not page.",
				"properties":  obj{"count": obj{"type": "integer"}, "page": nullableInt, "page_size": nullableInt, "page_count": nullableInt}},
		}}
}

// rulesAbout describes the resource's rules between fields, which the
// fields' own descriptions repeat.
func rulesAbout(res *schema.Resource) string {
	if len(res.Rules) == 0 {
		return "Read-only fields (`id`, `created_at`) sent are ignored; a key that is not a field is a 400 on that key."
	}
	return "Rules between fields are checked on the object as it will be after the write. Read-only fields (`id`, `created_at`) sent are ignored; a key that is not a field is a 400 on that key."
}

// mode is which side of the wire a field schema describes.
type mode int

const (
	modeResponse mode = iota
	modeCreate
	modeUpdate
	modeBulk
)

func (b *builder) bodySchema(res *schema.Resource, m mode, description string) obj {
	props := obj{}
	var required []any
	for _, f := range res.Fields {
		props[f.Name] = b.fieldSchema(res, f, m, nil)
		if f.Required && m == modeCreate {
			required = append(required, f.Name)
		}
	}
	// Any JSON value at all: the service ignores it.
	ignored := obj{"description": "Read-only: ignored when sent.", "anyOf": []any{
		obj{"type": "string", "nullable": true}, obj{"type": "number"}, obj{"type": "boolean"},
		obj{"type": "object"}, obj{"type": "array", "items": obj{}},
	}}
	props["created_at"] = ignored
	if m == modeBulk {
		props["id"] = obj{"type": "string", "format": "uuid", "description": "The object this item updates; without it, the item creates one."}
	} else {
		props["id"] = ignored
	}
	s := obj{"type": "object", "description": description, "properties": props, "additionalProperties": false}
	if len(required) > 0 {
		s["required"] = required
	}
	return s
}

// fieldSchema is the schema of one field, with its rules in its
// description, as Pigello's reference writes them; a response's shows the
// field's value in example, the resource's example object.
func (b *builder) fieldSchema(res *schema.Resource, f *schema.Field, m mode, example map[string]any) obj {
	var s obj
	switch f.Type {
	case schema.ID:
		s = obj{"type": "string", "format": "uuid", "readOnly": true}
	case schema.DateTime:
		s = obj{"type": "string", "format": "date-time", "readOnly": true}
	case schema.String:
		s = obj{"type": "string", "minLength": 1, "maxLength": f.MaxLen}
	case schema.Email:
		s = obj{"type": "string", "format": "email", "minLength": 1, "maxLength": f.MaxLen, "pattern": schema.EmailPattern}
	case schema.Phone:
		s = obj{"type": "string", "minLength": 1, "maxLength": f.MaxLen, "pattern": `^\+?1?\d{7,15}$`}
	case schema.SSN:
		s = ssnSchema()
	case schema.Date:
		s = obj{"type": "string", "format": "date"}
	case schema.Bool:
		s = obj{"type": "boolean"}
		if m == modeCreate || m == modeResponse {
			// Not in an update's or a bulk item's schema: a client or
			// proxy that fills defaults in would turn a partial update
			// into one that resets the field.
			s["default"] = f.Default
		}
	case schema.Number:
		// double: a generator's default for number is a 32-bit float
		// (Go's float32), which loses the coordinates' digits.
		s = obj{"type": "number", "format": "double", "minimum": f.Min, "maximum": f.Max}
	case schema.Ref:
		// Inline rather than a $ref: a nullable allOf of an object schema
		// is read by some validators (Spectral's) as refusing null.
		s = obj{"type": "object", "required": []any{"id"}, "additionalProperties": false,
			"properties": obj{"id": obj{"type": "string", "format": "uuid"}}}
	default:
		panic(fmt.Sprintf("openapi: no schema for the type of %s.%s", res.Name, f.Name))
	}
	switch {
	case f.Pattern != "":
		s["pattern"] = f.Pattern
	case f.Type == schema.String:
		s["pattern"] = noControlPattern
	}
	if f.Nullable() && f.Type != schema.ID && f.Type != schema.DateTime {
		s["nullable"] = true
	}
	if d := b.fieldAbout(res, f); d != "" {
		s["description"] = d
	}
	if m == modeResponse && example[f.Name] != nil {
		s["example"] = example[f.Name]
	}
	return s
}

// noControlPattern is the rule every string without a pattern of its own
// keeps (schema.HasControl): no control character but tab.
const noControlPattern = `^[^\x00-\x08\x0A-\x1F\x7F-\x9F]*$`

// fieldAbout is a field's description: its meaning and every rule on it.
func (b *builder) fieldAbout(res *schema.Resource, f *schema.Field) string {
	var parts []string
	switch f.Type {
	case schema.ID:
		return "The object's id, made by the server."
	case schema.DateTime:
		return "When the object was created: UTC, RFC 3339 with microseconds."
	case schema.Ref:
		parts = append(parts, fmt.Sprintf("A reference to %s: `{\"id\": \"<uuid>\"}`, or null. It must name an existing %s of the same customer.", article(f.Target), f.Target))
	case schema.Email:
		parts = append(parts, "An e-mail address: one `@`, a non-empty local part, a domain with a dot.")
	case schema.SSN:
		parts = append(parts, "A Swedish personal identity number (personnummer or coordination number): `YYYYMMDDNNNC` or `YYYYMMDD-NNNC` (or `+`), an existing date (day + 60 for a coordination number), a valid Luhn check digit. Stored and returned in the 12-digit form.")
	case schema.Phone:
		parts = append(parts, "A phone number.")
	case schema.Date:
		parts = append(parts, "A date, `YYYY-MM-DD`.")
	}
	if f.Allowed != "" {
		parts = append(parts, f.Allowed)
	}
	if f.Required {
		parts = append(parts, "Required; can't be null.")
	}
	if f.Unique {
		parts = append(parts, "Must be unique.")
	}
	for _, rule := range res.Rules {
		parts = append(parts, ruleAbout(rule, f.Name)...)
	}
	if f.Acyclic {
		whole := article(strings.ToLower(res.Name))
		parts = append(parts, strings.ToUpper(whole[:1])+whole[1:]+" can't be its own ancestor.")
	}
	if f.Searchable {
		parts = append(parts, "Matched by `_search`.")
	}
	if f.Personal {
		parts = append(parts, "Personal: stored encrypted, every read audited.")
	}
	return strings.Join(parts, " ")
}

// article puts "a" or "an" before a resource name.
func article(name string) string {
	if strings.ContainsRune("AEIOUaeiou", rune(name[0])) {
		return "an " + name
	}
	return "a " + name
}

// ruleAbout writes what a rule between fields asks of one of them, in
// Pigello's words.
func ruleAbout(rule schema.Rule, field string) []string {
	switch r := rule.(type) {
	case schema.ExactlyOne:
		other := ""
		switch field {
		case r.A:
			other = r.B
		case r.B:
			other = r.A
		default:
			return nil
		}
		return []string{
			"This value can't be set when any of the following fields are set: " + other + ".",
			"This field, or at least one of the following fields must be set: " + other + ".",
		}
	case schema.AtLeastOne:
		var others []string
		in := false
		for _, name := range r {
			if name == field {
				in = true
			} else {
				others = append(others, name)
			}
		}
		if !in {
			return nil
		}
		return []string{"This field, or at least one of the following fields must be set: " + strings.Join(others, ", ") + "."}
	}
	panic(fmt.Sprintf("openapi: no description of the rule %T", rule))
}
