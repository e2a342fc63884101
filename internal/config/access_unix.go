//go:build unix

package config

import "syscall"

// Access modes of accessible, as access(2) takes them.
const (
	accessRead   = 0x4
	accessWrite  = 0x2
	accessSearch = 0x1
)

// accessible reports whether this process may access path in mode, as the
// kernel would decide for its real user: so a path it could not open is
// refused before anything is opened.
func accessible(path string, mode uint32) bool {
	return syscall.Access(path, mode) == nil
}
