// Package apidocs serves the API reference page: the OpenAPI document
// rendered by Redoc, whose standalone bundle is embedded in the binary, so
// the page needs no network beyond this server. The bundle is the release
// pinned in tools/redoc; tools/redoc/refresh replaces it.
package apidocs

import (
	_ "embed"
	"net/http"
)

var (
	//go:embed index.html
	page []byte
	//go:embed redoc.standalone.js
	script []byte
)

// contentSecurityPolicy lets the page load its script and the document
// from this server alone. Redoc sets styles inline and runs its search in
// a worker made from a blob.
const contentSecurityPolicy = "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; " +
	"img-src 'self' data:; font-src 'self' data:; connect-src 'self'; worker-src 'self' blob:; " +
	"base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

// Page serves the reference page.
func Page(w http.ResponseWriter, r *http.Request) {
	serve(w, "text/html; charset=utf-8", page)
}

// Script serves the Redoc bundle.
func Script(w http.ResponseWriter, r *http.Request) {
	serve(w, "text/javascript; charset=utf-8", script)
}

func serve(w http.ResponseWriter, contentType string, body []byte) {
	h := w.Header()
	h.Set("Content-Type", contentType)
	h.Set("Content-Security-Policy", contentSecurityPolicy)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Cache-Control", "no-cache")
	w.Write(body)
}
