//go:build unix

package cli

import "syscall"

// noCoreDumps sets the process's core file limit to zero, soft and hard:
// a core dump of serve or of an administrative command would hold
// decrypted personal values and unwrapped customer keys, written to disk
// where the keys' separation from the data no longer protects them. The
// Go runtime dumps core only under GOTRACEBACK=crash, but the limit makes
// sure of it, whatever the environment; lowering a limit needs no
// privilege.
func noCoreDumps() error {
	return syscall.Setrlimit(syscall.RLIMIT_CORE, &syscall.Rlimit{Cur: 0, Max: 0})
}
