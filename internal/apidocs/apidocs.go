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
	bundle []byte
	// script is the bundle served: Redoc's, but for its logo.
	script = withoutOutsideLogo(bundle)
)

// redocLogo is the one address outside this server that Redoc's bundle
// loads: the logo beside "API docs by Redocly" in its side menu.
const redocLogo = "https://cdn.redoc.ly/redoc/logo-mini.svg"

// emptyImage is an SVG image of nothing, as a data: URL that can stand in
// a JavaScript string as it is.
const emptyImage = "data:image/svg+xml,%3Csvg%20xmlns%3D%22http%3A%2F%2Fwww.w3.org%2F2000%2Fsvg%22%2F%3E"

// withoutOutsideLogo replaces Redoc's logo by an empty image, so that the
// page asks nothing of another server: the policy below would block the
// request, but a proxy that drops the header would let it out, telling
// Redocly's CDN who reads this API's reference.
func withoutOutsideLogo(b []byte) []byte {
	return bytes.ReplaceAll(b, []byte(redocLogo), []byte(emptyImage))
}

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
