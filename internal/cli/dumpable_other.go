//go:build !linux

package cli

// setDumpable has nothing to set where there is no prctl(2).
func setDumpable(bool) error { return nil }
