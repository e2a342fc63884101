//go:build !linux

package sqlite

// fullFileSystem reports false: the cause of an I/O error is then left
// as SQLite names it.
func fullFileSystem(string) bool { return false }
