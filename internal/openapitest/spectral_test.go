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
	for name, data := range map[string][]byte{
		"openapi.json": httpapi.Reference(schema.New()).JSON,
		"openapi.yaml": httpapi.Reference(schema.New()).YAML,
	} {
		spec := filepath.Join(t.TempDir(), name)
		if err := os.WriteFile(spec, data, 0o600); err != nil {
			t.Fatal(err)
		}
		cmd := exec.Command(spectral, "lint", "--ruleset", filepath.Join(root, ".spectral.yaml"), "--fail-severity", "warn", spec)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Errorf("spectral lint %s: %v\n%s", name, err, out)
		}
	}
}
