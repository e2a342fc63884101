package config

import (
	"fmt"
	"slices"
	"strings"
)

// Variables are the names of every environment variable the commands
// read.
func Variables() []string {
	names := []string{
		EnvDatabase, EnvAddr, EnvKeyFile, EnvMasterKey, EnvKeyStore, EnvKeySettle, EnvNewMasterKey,
		EnvPreviousMasterKey, EnvTLSCert, EnvTLSKey, EnvAllowPlaintextHTTP, EnvMetricsAddr, EnvAllowDebugger,
	}
	for _, lf := range limitFlags {
		names = append(names, lf.env)
	}
	return names
}

// nearMiss is the most edits (a letter added, dropped or changed) that
// make a name a misspelling of one of Variables.
const nearMiss = 2

// CheckNames refuses an environment (NAME=value lines, as os.Environ)
// holding a misspelling of a variable the commands read: ACCOUNTS_MASTERKEY,
// accounts_database, ACCOUNT_TLS_CERT. Its value would be ignored, and the
// default taken instead (a generated key file, a database in ./data, no
// TLS) without a word. Other names that begin with ACCOUNTS_ pass: an
// orchestrator makes its own from a service's name (Kubernetes gives every
// pod ACCOUNTS_SERVICE_HOST and ACCOUNTS_PORT for a service named
// accounts), and the test suite reads ACCOUNTS_TEST_*.
func CheckNames(environ []string) error {
	known := Variables()
	for _, kv := range environ {
		name, _, _ := strings.Cut(kv, "=")
		upper := strings.ToUpper(name)
		if !strings.HasPrefix(upper, "ACCOUNT") || slices.Contains(known, name) || strings.HasPrefix(upper, "ACCOUNTS_TEST_") {
			continue
		}
		for _, k := range known {
			if editDistance(upper, k) <= nearMiss || nearName(upper, k) {
				return fmt.Errorf("%s is not a variable accounts reads: did you mean %s?", name, k)
			}
		}
	}
	return nil
}

// nearName reports whether name, upper case, is known with more after it
// (ACCOUNTS_MASTER_KEY_FILE, ACCOUNTS_METRICS_ADDRESS) or with only some
// of its words (ACCOUNTS_SETTLE for ACCOUNTS_KEY_SETTLE,
// ACCOUNTS_ALLOW_PLAINTEXT): misspellings more than nearMiss letters
// away. A name with words the known one lacks passes: Kubernetes makes
// ACCOUNTS_PORT_8080_TCP_ADDR.
func nearName(name, known string) bool {
	if strings.HasPrefix(name, known) {
		return true
	}
	words, ok := strings.CutPrefix(name, "ACCOUNTS_")
	if !ok || words == "" {
		return false
	}
	knownWords := strings.Split(strings.TrimPrefix(known, "ACCOUNTS_"), "_")
	for _, w := range strings.Split(words, "_") {
		if !slices.Contains(knownWords, w) {
			return false
		}
	}
	return true
}

// editDistance is the Levenshtein distance of a and b, in bytes.
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			change := prev[j-1]
			if a[i-1] != b[j-1] {
				change++
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, change)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
