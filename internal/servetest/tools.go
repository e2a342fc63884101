package servetest

import (
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// RepoRoot is the module's root: the nearest folder, from the test's own
// upwards, that holds go.mod.
func RepoRoot(t testing.TB) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("no go.mod above the test's folder")
		}
		dir = parent
	}
}

// Missing skips the test for a tool it lacks, with msg saying how to
// install it; in CI (CI set) it fails instead, so that CI never passes by
// skipping a test.
func Missing(t testing.TB, msg string) {
	t.Helper()
	if os.Getenv("CI") != "" {
		t.Fatal(msg)
	}
	t.Skip(msg)
}

// NeedTool returns the path of a program on PATH; without it the test
// skips or, in CI, fails (see Missing), naming install as the remedy.
func NeedTool(t testing.TB, name, install string) string {
	t.Helper()
	path, err := exec.LookPath(name)
	if err != nil {
		Missing(t, "this test needs "+name+" ("+install+")")
	}
	return path
}

// FreePort is a loopback TCP port nothing listens on now.
func FreePort(t testing.TB) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// NodeTool returns the path of a program of the Node packages of
// tools/npm; without them (npm ci --prefix tools/npm) or without node, the
// test skips or, in CI, fails.
func NodeTool(t testing.TB, name string) string {
	t.Helper()
	NeedTool(t, "node", "apt-get install nodejs npm")
	path := filepath.Join(RepoRoot(t), "tools", "npm", "node_modules", ".bin", name)
	if _, err := os.Stat(path); err != nil {
		Missing(t, "this test needs "+name+" from tools/npm (npm ci --prefix tools/npm)")
	}
	return path
}
