// Package apidocs serves the API reference page: the OpenAPI document
// rendered by Redoc, whose standalone bundle is embedded in the binary, so
// the page needs no network beyond this server. The bundle is the release
// pinned in tools/redoc; tools/redoc/refresh replaces it.
package apidocs

import (
	"bytes"
	"crypto/sha256"
	_ "embed"
	"encoding/hex"
	"net/http"
	"time"
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
	serve(w, r, "text/html; charset=utf-8", page, pageTag)
}

// Script serves the Redoc bundle.
func Script(w http.ResponseWriter, r *http.Request) {
	serve(w, r, "text/javascript; charset=utf-8", script, scriptTag)
}

// Entity tags of the embedded files: a browser that has the bundle
// revalidates it (no-cache) and gets 304, not its megabyte again.
var (
	pageTag   = entityTag(page)
	scriptTag = entityTag(script)
)

func entityTag(body []byte) string {
	sum := sha256.Sum256(body)
	return `"` + hex.EncodeToString(sum[:16]) + `"`
}

func serve(w http.ResponseWriter, r *http.Request, contentType string, body []byte, tag string) {
	h := w.Header()
	h.Set("Content-Type", contentType)
	h.Set("Content-Security-Policy", contentSecurityPolicy)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Cache-Control", "no-cache")
	h.Set("ETag", tag)
	http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(body))
}
