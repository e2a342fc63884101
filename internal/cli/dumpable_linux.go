package cli

import "syscall"

// prSetDumpable is prctl(2)'s PR_SET_DUMPABLE.
const prSetDumpable = 4

// setDumpable sets whether the process is dumpable. Not dumpable, its
// /proc/PID files other than the few that are public (status, stat,
// cmdline, limits) become root's, so that a process of the same user can't
// attach a debugger (ptrace), read its memory (/proc/PID/mem) or its
// environment (/proc/PID/environ, where the master key is on PostgreSQL),
// and no core dump is made of it, not even by a core handler that a pipe
// in core_pattern starts, which the core file limit does not stop.
// serve's memory holds decrypted personal values and unwrapped keys, as
// do the administrative commands'.
func setDumpable(on bool) error {
	v := uintptr(0)
	if on {
		v = 1
	}
	if _, _, errno := syscall.RawSyscall(syscall.SYS_PRCTL, prSetDumpable, v, 0); errno != 0 {
		return errno
	}
	return nil
}
