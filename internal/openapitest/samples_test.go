package openapitest

import (
	"bytes"
	"encoding/json"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"accounts/internal/httpapi"
	"accounts/internal/openapi"
	"accounts/internal/schema"
	"accounts/internal/servetest"
)

// codeSamples are an operation's x-codeSamples by label.
func codeSamples(t *testing.T, doc map[string]any, method, path string) map[string]string {
	t.Helper()
	op, _ := doc["paths"].(map[string]any)[path].(map[string]any)[strings.ToLower(method)].(map[string]any)
	if op == nil {
		t.Fatalf("the document has no %s %s", method, path)
	}
	out := map[string]string{}
	list, _ := op["x-codeSamples"].([]any)
	for _, s := range list {
		m := s.(map[string]any)
		out[m["label"].(string)] = m["source"].(string)
	}
	for _, label := range []string{"curl", "Go", "Python", "JavaScript"} {
		if out[label] == "" {
			t.Errorf("%s %s has no %s sample", method, path, label)
		}
	}
	return out
}

// The code samples, as the document shows them, run against a live server
// with the ids of real objects in place of the examples' and the client's
// headers in the environment, and succeed: the curl samples of every
// operation of every resource (so every example is a valid request), and
// the Go, JavaScript and Python samples of every Protectedidentity
// operation. For each resource:
// create, get, update, both lists, bulk write; then the deletes, the
// objects pointed to last.
func TestCodeSamplesRun(t *testing.T) {
	if testing.Short() {
		t.Skip("runs curl and go run against a server")
	}
	curl := servetest.NeedTool(t, "curl", "apt-get install curl")
	srv := startServer(t)
	var doc map[string]any
	if err := json.Unmarshal(httpapi.Reference(schema.New()).JSON, &doc); err != nil {
		t.Fatal(err)
	}
	catalog := schema.New()
	env := os.Environ()
	for name, value := range srv.headers {
		env = append(env, openapi.EnvName(name)+"="+value)
	}
	dir := t.TempDir()
	t.Run("curl", func(t *testing.T) {
		run := func(t *testing.T, source string) []byte {
			cmd := exec.Command("bash", "-euo", "pipefail", "-c", strings.Replace(source, "curl ", curl+" ", 1))
			return runSample(t, cmd, env)
		}
		// Each resource after those its examples point to.
		var order []*schema.Resource
		for _, name := range []string{schema.Organization, schema.Address, schema.Tenant, schema.Subtenant, schema.ProtectedIdentity} {
			order = append(order, catalog.Resource(name))
		}
		runSamples(t, srv, doc, "curl", order, map[string]string{}, run)
	})
	// The Protectedidentity samples of the languages whose samples are
	// programs: written to a file of dir, run by argv with the file last.
	programs := []struct {
		label, file string
		argv        func(t *testing.T) []string
		// cut drops what the program prints before the body.
		cut bool
	}{
		{"Go", "main.go", func(t *testing.T) []string {
			return []string{servetest.NeedTool(t, "go", "install Go"), "run"}
		}, true},
		{"JavaScript", "sample.mjs", func(t *testing.T) []string {
			return []string{servetest.NeedTool(t, "node", "apt-get install nodejs")}
		}, false},
		{"Python", "sample.py", func(t *testing.T) []string {
			python := servetest.NeedTool(t, "python3", "apt-get install python3")
			if exec.Command(python, "-c", "import requests").Run() != nil {
				servetest.Missing(t, "the Python samples need requests (apt-get install python3-requests)")
			}
			return []string{python}
		}, false},
	}
	for _, p := range programs {
		t.Run(p.label, func(t *testing.T) {
			argv := p.argv(t)
			run := func(t *testing.T, source string) []byte {
				file := filepath.Join(dir, p.file)
				if err := os.WriteFile(file, []byte(source), 0o600); err != nil {
					t.Fatal(err)
				}
				cmd := exec.Command(argv[0], append(argv[1:], file)...)
				cmd.Dir = dir
				out := runSample(t, cmd, append(env, "GOFLAGS=", "GO111MODULE=on"))
				if p.cut {
					// The Go samples print the status line, then the body.
					_, out, _ = bytes.Cut(out, []byte("\n"))
				}
				return out
			}
			// A tenant of its own: a tenant has at most one identity.
			ids := map[string]string{schema.Tenant: srv.create(t, "/accounts/users/customer/tenant/", `{"last_name": "Testsson"}`)}
			runSamples(t, srv, doc, p.label, []*schema.Resource{catalog.Resource(schema.ProtectedIdentity)}, ids, run)
		})
	}
}

// runSamples runs one language's samples (label: its x-codeSamples
// label) of the resources' operations, in order; ids maps a resource's
// example id to a real object's, and gains each object the create
// samples make.
func runSamples(t *testing.T, srv live, doc map[string]any, label string, resources []*schema.Resource, ids map[string]string, run func(*testing.T, string) []byte) {
	t.Helper()
	substitute := func(source string) string {
		pairs := []string{openapi.ExampleServer, srv.base}
		for name, id := range ids {
			pairs = append(pairs, openapi.ExampleIDs[name], id)
		}
		return strings.NewReplacer(pairs...).Replace(source)
	}
	for _, res := range resources {
		ids[res.Name] = idOf(t, run(t, substitute(codeSamples(t, doc, "POST", res.Path)[label])))
		for _, op := range []struct{ method, path string }{
			{"GET", res.Path + "{pk}/"},
			{"PATCH", res.Path + "{pk}/"},
			{"GET", res.Path},
			{"GET", res.Path + "list/"},
			{"POST", res.Path + "list/"},
		} {
			out := run(t, substitute(codeSamples(t, doc, op.method, op.path)[label]))
			if op.method == "GET" && op.path == res.Path+"{pk}/" && idOf(t, out) != ids[res.Name] {
				t.Errorf("the get sample of %s read another object", res.Name)
			}
		}
	}
	for i := len(resources) - 1; i >= 0; i-- {
		res := resources[i]
		run(t, substitute(codeSamples(t, doc, "DELETE", res.Path+"{pk}/")[label]))
		if got := srv.status(t, "GET", res.Path+ids[res.Name]+"/"); got != http.StatusNotFound {
			t.Errorf("after the delete sample, the %s answers %d, want 404", res.Name, got)
		}
	}
}

// runSample runs a sample; a failure reports the exit and stderr (curl's
// error names the status), never stdout, which holds personal data.
func runSample(t *testing.T, cmd *exec.Cmd, env []string) []byte {
	t.Helper()
	cmd.Env = env
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("sample failed: %v\nstderr: %s\nstatus line: %s", err, stderr.String(), statusLine(stdout.Bytes()))
	}
	return stdout.Bytes()
}

// statusLine is the first line of a Go sample's output when it is a
// status line ("400 Bad Request"), else "".
func statusLine(out []byte) string {
	first, _, _ := bytes.Cut(out, []byte("\n"))
	if len(first) > 4 && first[3] == ' ' && bytes.IndexFunc(first[:3], func(r rune) bool { return r < '0' || r > '9' }) < 0 {
		return string(first)
	}
	return ""
}

// idOf is the "id" of a JSON object.
func idOf(t *testing.T, data []byte) string {
	t.Helper()
	var v struct {
		ID string `json:"id"`
	}
	if err := json.Unmarshal(bytes.TrimSpace(data), &v); err != nil || v.ID == "" {
		t.Fatalf("the sample's output is not an object with an id")
	}
	return v.ID
}
