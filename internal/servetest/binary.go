// Package servetest runs the real service for tests: the accounts binary
// built once per test process, a deployment made with the real command
// line, and `accounts serve` as a child process. Tests import it, and the
// benchmark harness (bench/), which runs its work under Run.
//
// The binary is built with plain `go build`, whatever the test process is
// built with: under `go test -race` only the test process is instrumented,
// and the server works at the speed it has in production, so that timings,
// memory and the moment a kill lands mean what they mean in production.
package servetest

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
)

// TB is what the helpers need of their caller: a test's testing.TB has it,
// and a program that runs servers (the benchmark harness) provides it too.
// Fatal and Fatalf must not return.
type TB interface {
	Helper()
	Fatal(args ...any)
	Fatalf(format string, args ...any)
	TempDir() string
	Cleanup(func())
}

// running is set while RunTests (or Run) runs: only then is someone there
// to remove what Binary builds.
var running atomic.Bool

// builds holds the binaries built in this process, by their build tags.
var builds struct {
	sync.Mutex
	dir    string
	byTags map[string]build
}

type build struct {
	path string
	err  error
}

// RunTests runs the package's tests (m.Run) and then removes the binaries
// Binary built for them, which outlive any one test. The TestMain of a
// package that calls Binary or Start calls it in place of m.Run.
func RunTests(m *testing.M) int { return Run(m.Run) }

// Run runs main and then removes the binaries Binary built while it ran: a
// program that starts servers with these helpers runs its work under it, as
// tests run under RunTests.
func Run(main func() int) int {
	running.Store(true)
	code := main()
	running.Store(false)
	builds.Lock()
	defer builds.Unlock()
	if builds.dir != "" {
		os.RemoveAll(builds.dir)
	}
	return code
}

// Binary returns the path of cmd/accounts built with the build tags, built
// the first time a test of the process asks for it. A build that fails
// fails every test that asks.
func Binary(t TB, tags ...string) string {
	t.Helper()
	if !running.Load() {
		t.Fatal("servetest: TestMain must run the tests with servetest.RunTests (a program: its work with servetest.Run), which removes the binaries they build")
	}
	builds.Lock()
	defer builds.Unlock()
	key := strings.Join(tags, ",")
	b, ok := builds.byTags[key]
	if !ok {
		b = buildAccounts(tags)
		if builds.byTags == nil {
			builds.byTags = map[string]build{}
		}
		builds.byTags[key] = b
	}
	if b.err != nil {
		t.Fatalf("building accounts: %v", b.err)
	}
	return b.path
}

// buildAccounts builds cmd/accounts into builds.dir, which it makes on first
// use; builds must be locked.
func buildAccounts(tags []string) build {
	if builds.dir == "" {
		dir, err := os.MkdirTemp("", "servetest-")
		if err != nil {
			return build{err: err}
		}
		builds.dir = dir
	}
	name := "accounts"
	args := []string{"build"}
	if len(tags) > 0 {
		name += "-" + strings.Join(tags, "-")
		args = append(args, "-tags", strings.Join(tags, ","))
	}
	path := filepath.Join(builds.dir, name)
	args = append(args, "-o", path, "accounts/cmd/accounts")
	if out, err := exec.Command("go", args...).CombinedOutput(); err != nil {
		return build{err: fmt.Errorf("%v\n%s", err, out)}
	}
	return build{path: path}
}
