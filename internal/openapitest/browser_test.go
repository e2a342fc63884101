package openapitest

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"accounts/internal/httpapi"
	"accounts/internal/schema"
	"accounts/internal/servetest"
)

// ScreenshotPath is where the browser test saves the reference page, below
// the module's root (the README names it; git ignores it).
const screenshotPath = "internal/openapitest/screenshots/docs.png"

// chromium runs headless Chromium on url with args, in a profile of its
// own, resolving no name but the loopback address: the page must work with
// no network. It returns stdout and the browser's log.
func chromium(t *testing.T, bin, url string, args ...string) (stdout []byte, log string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	argv := append([]string{
		"--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
		"--disable-background-networking", "--disable-component-update", "--disable-sync",
		"--user-data-dir=" + t.TempDir(),
		"--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
		"--enable-logging=stderr", "--v=0",
		// Time enough for Redoc to fetch the document and render it.
		"--virtual-time-budget=20000",
	}, args...)
	cmd := exec.CommandContext(ctx, bin, append(argv, url)...)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	if err := cmd.Run(); err != nil {
		t.Fatalf("chromium: %v\n%s", err, errOut.String())
	}
	return out.Bytes(), errOut.String()
}

// Headless Chromium opens /docs/ with no network but the server's: Redoc
// renders the document, every operation of every resource is listed by its
// summary and link, the page breaks none of its security policy, and a
// screenshot of the page is saved at screenshotPath.
func TestReferencePageInChromium(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a browser")
	}
	bin := servetest.NeedTool(t, "chromium", "apt-get install chromium")
	srv := startServer(t)
	dom, log := chromium(t, bin, srv.base+"/docs/", "--dump-dom")
	page := string(dom)
	if strings.Contains(page, "failed to render") || !strings.Contains(page, "Accounts") {
		t.Fatalf("Redoc did not render the document (%d bytes of DOM)", len(dom))
	}
	// The page keeps to this server: the bundle's one outside address,
	// Redoc's logo, is served as an empty data: image (apidocs), so the
	// policy has nothing to block, of the server's own or from elsewhere.
	for _, line := range strings.Split(log, "\n") {
		if strings.Contains(line, "Content Security Policy") {
			t.Errorf("the page breaks its Content-Security-Policy: %s", line)
		}
	}
	var doc struct {
		Paths map[string]map[string]struct {
			OperationID string   `json:"operationId"`
			Summary     string   `json:"summary"`
			Tags        []string `json:"tags"`
		} `json:"paths"`
	}
	if err := json.Unmarshal(httpapi.Reference(schema.New()).JSON, &doc); err != nil {
		t.Fatal(err)
	}
	listed := 0
	for path, ops := range doc.Paths {
		for method, op := range ops {
			link := "#tag/" + op.Tags[0] + "/operation/" + op.OperationID
			if !strings.Contains(page, link) || !strings.Contains(page, op.Summary) {
				t.Errorf("the page does not list %s %s (%s)", strings.ToUpper(method), path, op.OperationID)
				continue
			}
			listed++
		}
	}
	if listed < 7*len(schema.New().Resources) {
		t.Errorf("the page lists %d operations", listed)
	}

	shot := filepath.Join(servetest.RepoRoot(t), filepath.FromSlash(screenshotPath))
	if err := os.MkdirAll(filepath.Dir(shot), 0o755); err != nil {
		t.Fatal(err)
	}
	os.Remove(shot)
	// The page's top: headless Chromium draws a blank page for a link to
	// an operation (#tag/...), which Redoc scrolls to after rendering.
	chromium(t, bin, srv.base+"/docs/", "--window-size=1400,1600", "--hide-scrollbars", "--screenshot="+shot)
	if info, err := os.Stat(shot); err != nil || info.Size() < 10_000 {
		t.Fatalf("no screenshot at %s: %v", screenshotPath, err)
	}
}
