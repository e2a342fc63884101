// Package openfiles tells whether the files a process opened by path are
// still the ones at those paths. A SQLite database removed, renamed or
// replaced under a running process goes on being read and written through
// the files the process has open: what it writes there is lost if the
// process ends without closing them (a crash, SIGKILL), or was never in the
// file now at the path. Only a restart mends it, so readiness says so.
package openfiles

import (
	"fmt"
	"os"
)

// Set is files as the process found them just after opening them.
type Set []file

type file struct {
	path string
	info os.FileInfo
}

// Note records the files at paths, which the process has just opened.
func Note(paths ...string) (Set, error) {
	var s Set
	for _, p := range paths {
		info, err := os.Stat(p)
		if err != nil {
			return nil, err
		}
		s = append(s, file{p, info})
	}
	return s, nil
}

// Check returns an error naming the first file of s that is no longer at
// its path: removed, renamed, or replaced by another file of that name.
func (s Set) Check() error {
	for _, f := range s {
		if info, err := os.Stat(f.path); err != nil || !os.SameFile(f.info, info) {
			return fmt.Errorf("%s was removed or replaced after this process opened it; stop the process cleanly (SIGTERM) and start it again", f.path)
		}
	}
	return nil
}
