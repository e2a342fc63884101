package apidocs

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
)

// The embedded bundle is the Redoc release tools/redoc pins: the version
// tools/redoc/refresh recorded beside it is the lock file's.
func TestEmbeddedRedocIsThePinnedRelease(t *testing.T) {
	recorded, err := os.ReadFile("redoc.version")
	if err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile("../../tools/redoc/package-lock.json")
	if err != nil {
		t.Fatal(err)
	}
	var lock struct {
		Packages map[string]struct {
			Version string `json:"version"`
		} `json:"packages"`
	}
	if err := json.Unmarshal(data, &lock); err != nil {
		t.Fatal(err)
	}
	pinned := lock.Packages["node_modules/redoc"].Version
	if pinned == "" || strings.TrimSpace(string(recorded)) != pinned {
		t.Errorf("internal/apidocs holds Redoc %q, tools/redoc pins %q: run tools/redoc/refresh", strings.TrimSpace(string(recorded)), pinned)
	}
	if len(script) < 100_000 || !strings.Contains(string(page), `src="redoc.standalone.js"`) {
		t.Errorf("the page or the bundle is not embedded")
	}
}

// The bundle served loads no image from Redocly's CDN: its one address
// outside this server, the logo, is an empty data: image. The bundle as
// embedded has the address once, so a refreshed Redoc that moved its logo
// elsewhere fails here rather than reaching out.
func TestBundleLoadsNothingFromOutside(t *testing.T) {
	if n := bytes.Count(bundle, []byte(redocLogo)); n != 1 {
		t.Errorf("the embedded bundle names Redoc's logo %d times, want 1: look again at what it loads", n)
	}
	if bytes.Contains(script, []byte("cdn.redoc.ly")) || !bytes.Contains(script, []byte(emptyImage)) {
		t.Errorf("the bundle served still loads Redoc's logo from its CDN")
	}
	rec := httptest.NewRecorder()
	Script(rec, httptest.NewRequest("GET", "/docs/redoc.standalone.js", nil))
	if bytes.Contains(rec.Body.Bytes(), []byte("cdn.redoc.ly")) {
		t.Errorf("the script served names Redocly's CDN")
	}
}

// The page and its script come with their types and a policy that lets
// the page load nothing from outside this server.
func TestPageHeaders(t *testing.T) {
	for _, c := range []struct {
		serve       http.HandlerFunc
		contentType string
	}{{Page, "text/html"}, {Script, "text/javascript"}} {
		rec := httptest.NewRecorder()
		c.serve(rec, httptest.NewRequest("GET", "/docs/", nil))
		h := rec.Header()
		if !strings.HasPrefix(h.Get("Content-Type"), c.contentType) || h.Get("X-Content-Type-Options") != "nosniff" {
			t.Errorf("%s: Content-Type %q, X-Content-Type-Options %q", c.contentType, h.Get("Content-Type"), h.Get("X-Content-Type-Options"))
		}
		csp := h.Get("Content-Security-Policy")
		if !strings.Contains(csp, "default-src 'none'") || !strings.Contains(csp, "script-src 'self'") || strings.Contains(csp, "http") {
			t.Errorf("%s: Content-Security-Policy %q lets the page load from elsewhere", c.contentType, csp)
		}
	}
}

// A browser that has a file gets 304 for it, not the file again.
func TestRevalidation(t *testing.T) {
	first := httptest.NewRecorder()
	Script(first, httptest.NewRequest("GET", "/docs/redoc.standalone.js", nil))
	tag := first.Header().Get("ETag")
	if first.Code != http.StatusOK || tag == "" || first.Body.Len() != len(script) {
		t.Fatalf("first fetch: status %d, ETag %q, %d bytes", first.Code, tag, first.Body.Len())
	}
	again := httptest.NewRequest("GET", "/docs/redoc.standalone.js", nil)
	again.Header.Set("If-None-Match", tag)
	second := httptest.NewRecorder()
	Script(second, again)
	if second.Code != http.StatusNotModified || second.Body.Len() != 0 {
		t.Errorf("revalidation: status %d, %d bytes; want 304, none", second.Code, second.Body.Len())
	}
}
