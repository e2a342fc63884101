package openapitest

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"accounts/internal/httpapi"
	"accounts/internal/schema"
	"accounts/internal/servetest"
)

// Spectral's spectral:oas ruleset, as .spectral.yaml adjusts it (each rule
// turned off there says why), finds nothing in the document: no error and
// no warning.
func TestSpectralFindsNothing(t *testing.T) {
	spectral := servetest.NodeTool(t, "spectral")
	root := servetest.RepoRoot(t)
	// The JSON form: internal/openapi holds the YAML form to be the same
	// document.
	spec := filepath.Join(t.TempDir(), "openapi.json")
	if err := os.WriteFile(spec, httpapi.Reference(schema.New()).JSON, 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(spectral, "lint", "--ruleset", filepath.Join(root, ".spectral.yaml"), "--fail-severity", "warn", spec)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Errorf("spectral lint: %v\n%s", err, out)
	}
}
