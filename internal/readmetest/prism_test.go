package readmetest

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"accounts/internal/httpapi"
	"accounts/internal/schema"
	"accounts/internal/servetest"
)

// prismViolation is a line of Prism's log that reports a request or a
// response the document does not allow.
var prismViolation = regexp.MustCompile(`(?i)violation|\berror\b|\bwarning\b`)

// The README's walkthrough, its requests sent through Stoplight Prism in
// proxy mode: Prism validates every request and every response against
// the OpenAPI document (--errors turns a violation into an error answer,
// which fails the walkthrough's curl -f), and reports none.
func TestREADMEWalkthroughThroughPrism(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the command and runs a server and Prism")
	}
	for _, tool := range []string{"bash", "curl", "jq", "go"} {
		servetest.NeedTool(t, tool, "the README walkthrough needs it: apt-get install "+tool)
	}
	prism := servetest.NodeTool(t, "prism")
	spec := filepath.Join(t.TempDir(), "openapi.json")
	if err := os.WriteFile(spec, httpapi.Reference(schema.New()).JSON, 0o600); err != nil {
		t.Fatal(err)
	}
	port, prismPort := servetest.FreePort(t), servetest.FreePort(t)
	cmd := exec.Command(prism, "proxy", spec, "http://127.0.0.1:"+strconv.Itoa(port),
		"--errors", "--host", "127.0.0.1", "--port", strconv.Itoa(prismPort))
	// A file, which the test reads while Prism writes it.
	logPath := filepath.Join(t.TempDir(), "prism.log")
	logFile, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	defer logFile.Close()
	cmd.Stdout, cmd.Stderr = logFile, logFile
	readLog := func() string {
		data, _ := os.ReadFile(logPath)
		return string(data)
	}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		cmd.Wait()
	})
	for deadline := time.Now().Add(60 * time.Second); !strings.Contains(readLog(), "Prism is listening"); time.Sleep(100 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("Prism did not start within 60 s:\n%s", readLog())
		}
	}
	started := len(readLog())

	run := runWalkthrough(t, readmeWalkthrough(t), port, "API=http://127.0.0.1:"+strconv.Itoa(prismPort))
	// Prism's log names paths and statuses, and quotes no body: it may be
	// printed. stdout holds the identity: never printed.
	proxied := readLog()[started:]
	if run.err != nil {
		t.Fatalf("the walkthrough through Prism failed: %v\nstderr:\n%s\nPrism:\n%s", run.err, run.stderr.String(), proxied)
	}
	var violations []string
	for _, line := range strings.Split(proxied, "\n") {
		// The walkthrough polls /healthz until its server listens: a
		// refused connection before then is no violation.
		if prismViolation.MatchString(line) && !strings.Contains(line, "ECONNREFUSED") {
			violations = append(violations, line)
		}
	}
	if len(violations) > 0 {
		t.Errorf("Prism reports violations:\n%s", strings.Join(violations, "\n"))
	}
	if n := strings.Count(proxied, "Request received"); n < 5 {
		t.Errorf("Prism saw %d requests; the walkthrough makes at least 5 through it", n)
	}
}
