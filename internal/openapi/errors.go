package openapi

import (
	"fmt"

	"accounts/internal/apperr"
	"accounts/internal/schema"
)

// errorSchemas declares the error bodies of the contract's section 7.
func (b *builder) errorSchemas() {
	b.schemas["FieldErrors"] = obj{
		"type":                 "object",
		"description":          "A validation failure: one key per failing field, each with its messages; `non_field_errors` for the object as a whole, and query parameters by their names. Messages name the rule, never the value sent.",
		"additionalProperties": obj{"type": "array", "items": obj{"type": "string"}},
		"example": obj{
			"ssn":                 []any{schema.MsgSSN},
			apperr.NonFieldErrors: []any{"One of tenant or sub_tenant must be set."},
		},
	}
	b.schemas["BulkErrors"] = obj{
		"type":        "array",
		"description": "A bulk write that failed: one error object per item, in request order, `{}` for the items that were fine.",
		"items":       ref("schemas", "FieldErrors"),
	}
	b.schemas["Detail"] = obj{
		"type": "object", "required": []any{"detail"}, "additionalProperties": false,
		"properties": obj{"detail": obj{"type": "string"}},
	}
	b.schemas["ServerError"] = obj{
		"type": "object", "required": []any{"detail", "request_id"}, "additionalProperties": false,
		"description": "An unexpected failure: never a stack, SQL or value; `request_id` names the request in the server's log.",
		"properties":  obj{"detail": obj{"type": "string"}, "request_id": obj{"type": "string"}},
	}
}

// errorResponses are the shared error answers, each with its fixed body.
func (b *builder) errorResponses() obj {
	detail := func(description string, body map[string]string, headers obj) obj {
		if body == nil {
			panic("openapi: no body for: " + description)
		}
		h := obj{}
		for k, v := range requestIDHeader {
			h[k] = v
		}
		for k, v := range headers {
			h[k] = v
		}
		return obj{"description": description, "headers": h, "content": jsonContent(ref("schemas", "Detail"), body)}
	}
	retryAfter := obj{"Retry-After": obj{"description": "Seconds to wait before trying again (at least 1).", "schema": obj{"type": "integer", "minimum": 1}}}
	fieldErrors := obj{"ssn": []any{schema.MsgSSN}}
	badRequest := func(description string, fields obj, schemas ...any) obj {
		return obj{"description": description, "headers": requestIDHeader, "content": obj{"application/json": obj{
			"schema": obj{"oneOf": schemas},
			"examples": obj{
				"fields":    fields,
				"malformed": obj{"summary": "A body that is not JSON, or not JSON that decodes exactly", "value": b.bodies.ParseError},
			},
		}}}
	}
	internal := b.bodies.Internal
	if internal == nil {
		panic("openapi: no body for 500")
	}
	return obj{
		"BadRequest": badRequest("Validation failed (field errors), or the body is not JSON that decodes exactly.",
			obj{"summary": "Fields that failed validation", "value": fieldErrors},
			ref("schemas", "FieldErrors"), ref("schemas", "Detail")),
		"BulkBadRequest": badRequest("A bulk write failed (an array, one error object per item), or the request failed as a whole.",
			obj{"summary": "Items that failed validation: one object per item, empty for an item that passed", "value": []any{obj{}, fieldErrors}},
			ref("schemas", "BulkErrors"), ref("schemas", "FieldErrors"), ref("schemas", "Detail")),
		"Unauthorized":         detail("Credentials missing or wrong: the same body whichever header was wrong.", b.bodies.Unauthenticated, nil),
		"Forbidden":            detail("A client of scope `read` attempted a write.", b.bodies.Forbidden, nil),
		"NotFound":             detail("No such object for this customer (or a malformed id).", b.bodies.NotFound, nil),
		"MethodNotAllowed":     detail("The path has no such method (PUT, for one); `Allow` lists those it has.", b.bodies.MethodNotAllowed, obj{"Allow": obj{"description": "The path's methods.", "schema": obj{"type": "string"}}}),
		"PayloadTooLarge":      detail(fmt.Sprintf("The body is over its limit: %d MiB for one object, %d MiB for a bulk write.", b.bodies.BodyLimit>>20, b.bodies.BulkBodyLimit>>20), b.bodies.TooLarge, nil),
		"UnsupportedMediaType": detail("The body is not `application/json` in UTF-8, or has a `Content-Encoding`.", b.bodies.Unsupported, nil),
		"TooManyRequests":      detail("The caller is over its share: its request rate, its customer's requests in flight, lists or expensive requests in progress, or failed authentications.", b.bodies.Throttled, retryAfter),
		"ServiceUnavailable":   detail("The process is at a capacity limit, the request ran past its time limit, or the database could not be reached (the request changed nothing).", b.bodies.Overloaded, retryAfter),
		"InternalServerError": obj{"description": "An unexpected failure.", "headers": requestIDHeader,
			"content": jsonContent(ref("schemas", "ServerError"), internal)},
	}
}
