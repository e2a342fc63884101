package openapitest

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"accounts/internal/servetest"
)

func TestMain(m *testing.M) { os.Exit(servetest.RunTests(m)) }

// nodeTool returns the path of a program of tools/npm's packages.
func nodeTool(t *testing.T, name string) string {
	t.Helper()
	servetest.NeedTool(t, "node", "apt-get install nodejs npm")
	path := filepath.Join(servetest.RepoRoot(t), "tools", "npm", "node_modules", ".bin", name)
	if _, err := os.Stat(path); err != nil {
		servetest.Missing(t, "this test needs "+name+" from tools/npm (npm ci --prefix tools/npm)")
	}
	return path
}

// live is a running server and the headers of a read_write client of one
// customer.
type live struct {
	base    string
	headers map[string]string
}

// startServer starts `accounts serve` on a new SQLite deployment with one
// customer and client.
func startServer(t *testing.T) live {
	t.Helper()
	d := servetest.NewSQLiteDeployment(t)
	customer := d.Customer("Acme Fastigheter AB")
	headers := d.Client(customer, "read_write")
	s := d.Start(servetest.DeploymentEnvOnly())
	return live{base: s.Base, headers: headers}
}

// testSSN is Skatteverket's test person of testdata/personnummer.json (the
// README's Tolvan): its input form and the stored 12-digit form.
func testSSN(t *testing.T) (input, canonical string) {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(servetest.RepoRoot(t), "testdata", "personnummer.json"))
	if err != nil {
		t.Fatal(err)
	}
	var v struct {
		Valid []struct{ Input, Canonical string } `json:"valid"`
	}
	if err := json.Unmarshal(data, &v); err != nil || len(v.Valid) < 2 {
		t.Fatalf("testdata/personnummer.json has no valid numbers: %v", err)
	}
	return v.Valid[1].Input, v.Valid[1].Canonical
}
