package openfiles_test

import (
	"os"
	"path/filepath"
	"testing"

	"accounts/internal/openfiles"
	"accounts/internal/openfiles/openfilestest"
)

// A set of files noted at open fails its check while one of them is away
// or replaced, and passes again once it is back.
func TestCheckSeesAFileReplaced(t *testing.T) {
	dir := t.TempDir()
	paths := []string{filepath.Join(dir, "a.db"), filepath.Join(dir, "a.db-wal")}
	for _, p := range paths {
		if err := os.WriteFile(p, []byte("stand-in"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	set, err := openfiles.Note(paths...)
	if err != nil {
		t.Fatal(err)
	}
	if err := set.Check(); err != nil {
		t.Fatalf("Check just after Note: %v", err)
	}
	for _, p := range paths {
		openfilestest.Replacements(t, p, set.Check)
	}
	if _, err := openfiles.Note(filepath.Join(dir, "absent")); err == nil {
		t.Error("Note of a file that is not there: nil")
	}
}
