// Package openfilestest puts a check of open files (package openfiles)
// through the ways a file is replaced under a process that holds it open,
// for the tests of every store whose readiness relies on one.
package openfilestest

import (
	"os"
	"path/filepath"
	"testing"
)

// Replacements moves the file at path away, puts a copy of it in its
// place, and then puts it back, calling check after each step: check must
// fail while the file is away and while the copy is there, and pass once
// the file is back.
func Replacements(t testing.TB, path string, check func() error) {
	t.Helper()
	moved := filepath.Join(filepath.Dir(path), "moved")
	if err := os.Rename(path, moved); err != nil {
		t.Fatal(err)
	}
	if check() == nil {
		t.Errorf("check: nil with %s moved away", filepath.Base(path))
	}
	// A file of the same name, but not the one the process has open.
	data, err := os.ReadFile(moved)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	if check() == nil {
		t.Errorf("check: nil with %s replaced by a copy", filepath.Base(path))
	}
	if err := os.Rename(moved, path); err != nil {
		t.Fatal(err)
	}
	if err := check(); err != nil {
		t.Errorf("check with %s back in place: %v", filepath.Base(path), err)
	}
}
