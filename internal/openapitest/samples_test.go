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

// The curl and Go samples of every Protectedidentity operation, as the
// document shows them, run against a live server with the ids of real
// objects in place of the examples' and the client's headers in the
// environment, and succeed: create, get, update, both lists, bulk write,
// delete.
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
	pi := schema.New().Resource(schema.ProtectedIdentity)
	env := os.Environ()
	for name, value := range srv.headers {
		env = append(env, openapi.EnvName(name)+"="+value)
	}
	dir := t.TempDir()
	runners := map[string]func(t *testing.T, source string) []byte{
		"curl": func(t *testing.T, source string) []byte {
			cmd := exec.Command("bash", "-euo", "pipefail", "-c", strings.Replace(source, "curl ", curl+" ", 1))
			return runSample(t, cmd, env)
		},
		"Go": func(t *testing.T, source string) []byte {
			file := filepath.Join(dir, "main.go")
			if err := os.WriteFile(file, []byte(source), 0o600); err != nil {
				t.Fatal(err)
			}
			cmd := exec.Command("go", "run", file)
			cmd.Dir = dir
			out := runSample(t, cmd, append(env, "GOFLAGS=", "GO111MODULE=on"))
			// The Go samples print the status line, then the body.
			_, body, _ := bytes.Cut(out, []byte("\n"))
			return body
		},
	}
	for _, lang := range []string{"curl", "Go"} {
		t.Run(lang, func(t *testing.T) {
			run := runners[lang]
			// A tenant of its own: a tenant has at most one identity.
			tenant := srv.create(t, "/accounts/users/customer/tenant/", `{"last_name": "Testsson"}`)
			ids := strings.NewReplacer(
				openapi.ExampleServer, srv.base,
				openapi.ExampleIDs[schema.Tenant], tenant,
			)
			created := idOf(t, run(t, ids.Replace(codeSamples(t, doc, "POST", pi.Path)[lang])))
			withPI := strings.NewReplacer(
				openapi.ExampleServer, srv.base,
				openapi.ExampleIDs[schema.Tenant], tenant,
				openapi.ExampleIDs[schema.ProtectedIdentity], created,
			)
			for _, op := range []struct{ method, path string }{
				{"GET", pi.Path + "{pk}/"},
				{"PATCH", pi.Path + "{pk}/"},
				{"GET", pi.Path},
				{"GET", pi.Path + "list/"},
				{"POST", pi.Path + "list/"},
				{"DELETE", pi.Path + "{pk}/"},
			} {
				out := run(t, withPI.Replace(codeSamples(t, doc, op.method, op.path)[lang]))
				if op.method == "GET" && op.path == pi.Path+"{pk}/" && idOf(t, out) != created {
					t.Errorf("the get sample read another object")
				}
			}
			if got := srv.status(t, "GET", pi.Path+created+"/"); got != http.StatusNotFound {
				t.Errorf("after the delete sample, the identity answers %d, want 404", got)
			}
		})
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
