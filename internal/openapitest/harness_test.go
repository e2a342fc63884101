package openapitest

import (
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"accounts/internal/servetest"
)

func TestMain(m *testing.M) { os.Exit(servetest.RunTests(m)) }

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
	return startOn(t, servetest.NewSQLiteDeployment(t))
}

// startOn starts `accounts serve` on the deployment, with one customer and
// client.
func startOn(t *testing.T, d *servetest.Deployment) live {
	t.Helper()
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

// request sends a request with the client's headers and returns the
// status and body.
func (l live) request(t *testing.T, method, path, body string) (int, []byte) {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, l.base+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range l.headers {
		req.Header.Set(k, v)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, data
}

// create POSTs an object that must be created and returns its id.
func (l live) create(t *testing.T, path, body string) string {
	t.Helper()
	status, data := l.request(t, "POST", path, body)
	if status != http.StatusCreated {
		t.Fatalf("POST %s: status %d", path, status)
	}
	return idOf(t, data)
}

// status is the status a request without a body answers.
func (l live) status(t *testing.T, method, path string) int {
	t.Helper()
	status, _ := l.request(t, method, path, "")
	return status
}
