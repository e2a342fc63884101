package readmetest

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"accounts/internal/servetest"
)

// walkthroughHeading is the README section whose first sh block is run.
const walkthroughHeading = "## Walkthrough"

// readmeWalkthrough is the walkthrough block of the module's README.md.
func readmeWalkthrough(t *testing.T) string {
	t.Helper()
	readme, err := os.ReadFile(filepath.Join(servetest.RepoRoot(t), "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	return walkthroughBlock(t, string(readme))
}

// walkthroughBlock returns the first ```sh block under the walkthrough's
// heading in README.md.
func walkthroughBlock(t *testing.T, readme string) string {
	t.Helper()
	var block []string
	state := 0 // 0: before the heading, 1: in the section, 2: in the block
	sc := bufio.NewScanner(strings.NewReader(readme))
	for sc.Scan() {
		line := sc.Text()
		switch {
		case state == 0 && strings.HasPrefix(line, walkthroughHeading):
			state = 1
		case state == 1 && strings.HasPrefix(line, "## "):
			t.Fatalf("README.md: the walkthrough section has no sh block")
		case state == 1 && line == "```sh":
			state = 2
		case state == 2 && line == "```":
			return strings.Join(block, "\n") + "\n"
		case state == 2:
			block = append(block, line)
		}
	}
	t.Fatalf("README.md: no %q section with a closed sh block", walkthroughHeading)
	return ""
}

// The README's walkthrough, run as written with bash -euo pipefail in a
// folder of its own (beside links to the module's code, so its go build
// builds this tree), on a free port: every step succeeds, it prints the
// identity it created, keeps the secret and personal values out of its
// output and the server's log, and stops the server when it ends.
func TestREADMEWalkthrough(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the command and runs a server")
	}
	for _, tool := range []string{"bash", "curl", "jq", "go"} {
		servetest.NeedTool(t, tool, "the README walkthrough needs it: apt-get install "+tool)
	}
	block := readmeWalkthrough(t)
	// What the walkthrough must keep: no JSON picked apart by sed, one
	// place for the port, curl that fails on an HTTP error.
	if regexp.MustCompile(`\bsed\b`).MatchString(block) {
		t.Errorf("the walkthrough uses sed")
	}
	if n := strings.Count(block, "8080"); n > 1 {
		t.Errorf("the walkthrough names port 8080 in %d places", n)
	}
	for _, line := range strings.Split(block, "\n") {
		if regexp.MustCompile(`\bcurl -`).MatchString(line) && !strings.Contains(line, "curl -fs") {
			t.Errorf("a walkthrough curl lacks -f: %q", line)
		}
	}

	port := servetest.FreePort(t)
	run := runWalkthrough(t, block, port)
	stdout, stderr := &run.stdout, &run.stderr
	dir, serverLog, runErr := run.dir, run.serverLog, run.err
	if runErr != nil {
		// stdout holds the identity: never printed. stderr holds the steps'
		// errors; the server's log holds no personal value by design.
		t.Fatalf("the walkthrough failed: %v\nstderr:\n%s\nserver log:\n%s", runErr, stderr.String(), serverLog)
	}

	// The last line is the identity read back.
	lines := strings.Split(strings.TrimSpace(stdout.String()), "\n")
	var pi struct {
		ID        string `json:"id"`
		FirstName string `json:"first_name"`
		LastName  string `json:"last_name"`
		SSN       string `json:"ssn"`
		Email     string `json:"email"`
		Tenant    struct {
			ID string `json:"id"`
		} `json:"tenant"`
	}
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), &pi); err != nil {
		t.Fatalf("the walkthrough's last line is not a JSON object: %v", err)
	}
	uuidRE := regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$`)
	if !uuidRE.MatchString(pi.ID) || !uuidRE.MatchString(pi.Tenant.ID) {
		t.Errorf("the identity read back lacks its id or its tenant's")
	}
	if pi.FirstName != "Tolvan" || pi.LastName != "Tolvansson" || pi.Email != "tolvan@example.se" {
		t.Errorf("the identity read back does not have the names and e-mail sent")
	}
	if pi.SSN != "191212121212" {
		t.Errorf("the ssn read back is not the 12-digit form of the one sent")
	}

	curlConfig := filepath.Join(dir, "data", "pigello.curl")
	info, err := os.Stat(curlConfig)
	if err != nil {
		t.Fatalf("no curl config: %v", err)
	}
	if perm := info.Mode().Perm(); perm != 0o600 {
		t.Errorf("curl config mode %o, want 600", perm)
	}
	config, _ := os.ReadFile(curlConfig)
	secret := regexp.MustCompile(`(?m)^header = "X-PIGELLO-CLIENT-SECRET: ([^"]+)"$`).FindSubmatch(config)
	if secret == nil {
		t.Fatalf("the curl config has no secret header")
	}
	output := stdout.String() + stderr.String() + string(serverLog)
	if bytes.Contains([]byte(output), secret[1]) {
		t.Errorf("the client secret is in the output or the server's log")
	}
	for _, v := range []string{"Tolvan", "19121212", "tolvan@"} {
		if strings.Contains(stderr.String()+string(serverLog), v) {
			t.Errorf("a personal value is on stderr or in the server's log")
		}
	}
	if !strings.Contains(string(serverLog), `"msg":"listening"`) {
		t.Errorf("the server's log is not in data/server.log")
	}

	// The server stopped with the script (it drains first).
	addr := "127.0.0.1:" + strconv.Itoa(port)
	for deadline := time.Now().Add(35 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		conn, err := net.DialTimeout("tcp", addr, time.Second)
		if err != nil {
			var op *net.OpError
			if !errors.As(err, &op) {
				t.Logf("dial: %v", err)
			}
			break
		}
		conn.Close()
		if time.Now().After(deadline) {
			t.Fatalf("the server still listens after the walkthrough ended")
		}
	}
}

// walkthroughRun is what one run of the walkthrough left.
type walkthroughRun struct {
	dir            string // the folder it ran in
	stdout, stderr bytes.Buffer
	serverLog      []byte
	err            error
}

// runWalkthrough runs the walkthrough block as written with bash -euo
// pipefail in a folder of its own (beside links to the module's code, so
// its go build builds this tree), its server on port, with env added to
// the environment (less the test process's ACCOUNTS_* and PORT).
func runWalkthrough(t *testing.T, block string, port int, env ...string) *walkthroughRun {
	t.Helper()
	root := servetest.RepoRoot(t)
	run := &walkthroughRun{dir: t.TempDir()}
	dir := run.dir
	for _, name := range []string{"go.mod", "go.sum", "cmd", "internal"} {
		if err := os.Symlink(filepath.Join(root, name), filepath.Join(dir, name)); err != nil {
			t.Fatal(err)
		}
	}
	script := filepath.Join(dir, "walkthrough.sh")
	if err := os.WriteFile(script, []byte(block), 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "bash", "-euo", "pipefail", script)
	cmd.Dir = dir
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "ACCOUNTS_") && !strings.HasPrefix(kv, "PORT=") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	cmd.Env = append(append(cmd.Env, "PORT="+strconv.Itoa(port)), env...)
	// Its own process group: on a timeout the server goes with the script.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 30 * time.Second
	cmd.Stdout, cmd.Stderr = &run.stdout, &run.stderr
	run.err = cmd.Run()
	t.Cleanup(func() {
		if cmd.Process != nil {
			syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		}
	})
	run.serverLog, _ = os.ReadFile(filepath.Join(dir, "data", "server.log"))
	return run
}
