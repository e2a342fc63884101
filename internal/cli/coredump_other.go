//go:build !unix

package cli

// noCoreDumps has nothing to do where there is no core file limit.
func noCoreDumps() error { return nil }
