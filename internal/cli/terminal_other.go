//go:build !linux

package cli

import "os"

// fileIsTerminal takes a character device for a terminal where there is no
// TCGETS to ask (/dev/null is one too; reading it gives no answer, so a
// question asked there is still refused).
func fileIsTerminal(f *os.File) bool {
	info, err := f.Stat()
	return err == nil && info.Mode()&os.ModeCharDevice != 0
}
