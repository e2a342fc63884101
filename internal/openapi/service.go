package openapi

// serviceEndpoints adds the endpoints that need no credentials.
func (b *builder) serviceEndpoints() {
	public := func(id, summary, description string, responses obj) obj {
		responses["500"] = ref("responses", "InternalServerError")
		return obj{"operationId": id, "summary": summary, "description": description,
			"tags": []any{tagService}, "security": []any{}, "responses": responses}
	}
	status := func(value string) obj {
		return obj{"type": "object", "required": []any{"status"}, "additionalProperties": false,
			"properties": obj{"status": obj{"type": "string", "enum": []any{value}}}}
	}
	text := func(mediaType string) obj { return obj{mediaType: obj{"schema": obj{"type": "string"}}} }
	b.operation("GET", PathHealthz, public("healthz", "Liveness", "Answers 200 while the process runs.",
		obj{"200": success("Alive.", jsonContent(status("ok"), obj{"status": "ok"}))}))
	b.operation("GET", PathReadyz, public("readyz", "Readiness",
		"200 while the database answers, its schema is current and the master key opens the stored customer keys; 503 otherwise. Point a load balancer's health check here.",
		obj{
			"200": success("Ready.", jsonContent(status("ready"), obj{"status": "ready"})),
			"503": success("Not ready.", jsonContent(status("unavailable"), obj{"status": "unavailable"})),
		}))
	b.operation("GET", PathMetrics, public("metrics", "Prometheus metrics",
		"The Prometheus text format. Served here unless `--metrics-addr` moves it to a listener of its own (then this path answers 404).",
		obj{"200": success("The metrics.", text("text/plain"))}))
	b.operation("GET", PathJSON, public("openapiJSON", "This document, as JSON",
		"The OpenAPI 3.0.3 document of the API, generated at start from the resource declarations the service enforces.",
		obj{"200": success("The document.", obj{"application/json": obj{"schema": obj{"type": "object"}}})}))
	b.operation("GET", PathYAML, public("openapiYAML", "This document, as YAML", "The same document as `/openapi.json`, in YAML.",
		obj{"200": success("The document.", obj{"application/yaml": obj{"schema": obj{"type": "object"}}})}))
	notModified := success("Not modified: the request's If-None-Match names the file's ETag.", nil)
	b.operation("GET", PathDocs, public("docs", "The API reference page",
		"This document rendered by Redoc, whose files are embedded in the binary: the page works with no network.",
		obj{"200": success("The page.", text("text/html")), "304": notModified}))
	b.operation("GET", PathDocsScript, public("docsScript", "The reference page's renderer",
		"The Redoc standalone bundle the reference page loads.",
		obj{"200": success("The script.", text("text/javascript")), "304": notModified}))
}
