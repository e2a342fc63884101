package sqlite

import (
	"os"
	"path/filepath"
	"syscall"
)

// fullFileSystem reports whether the file system holding the database at
// path has less than fullBelow bytes left for this process (root may also
// write into the blocks reserved for it).
func fullFileSystem(path string) bool {
	var st syscall.Statfs_t
	if syscall.Statfs(filepath.Dir(path), &st) != nil {
		return false
	}
	free := st.Bavail
	if os.Geteuid() == 0 {
		free = st.Bfree
	}
	return free*uint64(st.Bsize) < fullBelow
}
