package config

import (
	"flag"
	"io"
	"strings"
	"testing"
)

func TestIsLoopback(t *testing.T) {
	cases := []struct {
		addr      string
		loopback  bool
		malformed bool
	}{
		{"127.0.0.1:8080", true, false},
		{"127.0.0.1:0", true, false},
		{"127.1.2.3:8080", true, false},
		{"[::1]:8080", true, false},
		{"localhost:8080", true, false},
		{"LocalHost:8080", true, false},
		{"[::ffff:127.0.0.1]:8080", true, false},
		{":8080", false, false},
		{"0.0.0.0:8080", false, false},
		{"[::]:8080", false, false},
		{"10.0.0.1:8080", false, false},
		{"[2001:db8::1]:8080", false, false},
		{"128.0.0.1:8080", false, false},
		{"accounts.example:8080", false, false},
		{"localhost.example:8080", false, false},
		{"127.0.0.1", false, true},
		{"", false, true},
		{"::1:8080", false, true},
		{"127.0.0.1:", false, true},
		{"127.0.0.1:http", false, true},
		{"127.0.0.1:65536", false, true},
		{"127.0.0.1:-1", false, true},
		{"127.0.0.1:010", false, true},
		{"127.0.0.1:+80", false, true},
		{"127.0.0.1:00", false, true},
	}
	for _, tc := range cases {
		got, err := IsLoopback(tc.addr)
		if (err != nil) != tc.malformed {
			t.Errorf("IsLoopback(%q): error %v, want malformed %v", tc.addr, err, tc.malformed)
			continue
		}
		if got != tc.loopback {
			t.Errorf("IsLoopback(%q) = %v, want %v", tc.addr, got, tc.loopback)
		}
	}
}

// bindServe parses args for serve with the given environment.
func bindServe(t *testing.T, env map[string]string, args ...string) (Config, error) {
	t.Helper()
	var c Config
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	c.BindServe(fs, MapEnv(env))
	if err := fs.Parse(args); err != nil {
		return c, err
	}
	return c, c.ValidateServe()
}

func TestValidateServe(t *testing.T) {
	cases := []struct {
		name string
		env  map[string]string
		args []string
		ok   bool
	}{
		{"default", nil, nil, true},
		{"TLS pair on 0.0.0.0", nil, []string{"--addr", "0.0.0.0:8443", "--tls-cert", "c", "--tls-key", "k"}, true},
		{"TLS pair from env", map[string]string{EnvTLSCert: "c", EnvTLSKey: "k", EnvAddr: ":8443"}, nil, true},
		{"only cert", nil, []string{"--tls-cert", "c"}, false},
		{"only key from env", map[string]string{EnvTLSKey: "k"}, nil, false},
		{"flag empties the env's cert", map[string]string{EnvTLSCert: "c", EnvTLSKey: "k"}, []string{"--tls-cert", ""}, false},
		{"plaintext on 0.0.0.0", nil, []string{"--addr", "0.0.0.0:8080"}, false},
		{"allowed plaintext on 0.0.0.0", nil, []string{"--addr", "0.0.0.0:8080", "--allow-plaintext-http"}, true},
		{"allowed by env", map[string]string{EnvAllowPlaintextHTTP: "true", EnvAddr: ":8080"}, nil, true},
		{"flag false beats env true", map[string]string{EnvAllowPlaintextHTTP: "true"}, []string{"--addr", ":8080", "--allow-plaintext-http=false"}, false},
		{"env not a strict bool", map[string]string{EnvAllowPlaintextHTTP: "True"}, nil, false},
		{"env empty is false", map[string]string{EnvAllowPlaintextHTTP: ""}, []string{"--addr", ":8080"}, false},
		{"flag not a strict bool", nil, []string{"--allow-plaintext-http=t"}, false},
		{"debugger allowed", nil, []string{"--allow-debugger"}, true},
		{"debugger allowed by env", map[string]string{EnvAllowDebugger: "true"}, nil, true},
		{"debugger env not a strict bool", map[string]string{EnvAllowDebugger: "1"}, nil, false},
		{"debugger flag not a strict bool", nil, []string{"--allow-debugger=yes"}, false},
		{"metrics on loopback", nil, []string{"--metrics-addr", "127.0.0.1:9090"}, true},
		{"metrics beyond loopback", map[string]string{EnvMetricsAddr: "0.0.0.0:9090"}, nil, false},
		{"metrics beyond loopback with TLS", nil, []string{"--metrics-addr", ":9090", "--tls-cert", "c", "--tls-key", "k"}, true},
		{"metrics malformed", nil, []string{"--metrics-addr", "localhost"}, false},
		{"metrics on the API's address", nil, []string{"--metrics-addr", DefaultAddr}, false},
	}
	for _, tc := range cases {
		_, err := bindServe(t, tc.env, tc.args...)
		if (err == nil) != tc.ok {
			t.Errorf("%s: error %v, want ok %v", tc.name, err, tc.ok)
		}
	}
}

func TestPlaintextOnNetwork(t *testing.T) {
	c, err := bindServe(t, nil, "--addr", "0.0.0.0:8080", "--metrics-addr", "127.0.0.1:9090", "--allow-plaintext-http")
	if err != nil {
		t.Fatal(err)
	}
	if got := c.PlaintextOnNetwork(); len(got) != 1 || got[0] != "0.0.0.0:8080" {
		t.Errorf("PlaintextOnNetwork = %v, want the API address only", got)
	}
	c, err = bindServe(t, nil, "--addr", "0.0.0.0:8443", "--tls-cert", "c", "--tls-key", "k")
	if err != nil {
		t.Fatal(err)
	}
	if got := c.PlaintextOnNetwork(); len(got) != 0 {
		t.Errorf("PlaintextOnNetwork with TLS = %v, want none", got)
	}
}

// --allow-debugger and its variable set AllowDebugger; the flag given
// false wins over the variable.
func TestAllowDebugger(t *testing.T) {
	cases := []struct {
		env  map[string]string
		args []string
		want bool
	}{
		{nil, nil, false},
		{nil, []string{"--allow-debugger"}, true},
		{map[string]string{EnvAllowDebugger: "true"}, nil, true},
		{map[string]string{EnvAllowDebugger: "true"}, []string{"--allow-debugger=false"}, false},
		{map[string]string{EnvAllowDebugger: "false"}, nil, false},
	}
	for _, tc := range cases {
		c, err := bindServe(t, tc.env, tc.args...)
		if err != nil {
			t.Fatalf("env %v args %v: %v", tc.env, tc.args, err)
		}
		if c.AllowDebugger != tc.want {
			t.Errorf("env %v args %v: AllowDebugger %v, want %v", tc.env, tc.args, c.AllowDebugger, tc.want)
		}
	}
}

// A misspelled variable is refused, naming the one it misses; the
// variables read, the names an orchestrator makes from a service's name,
// the tests' own and any other program's pass.
func TestMisspelledVariableRefused(t *testing.T) {
	for _, name := range []string{"ACCOUNTS_MASTERKEY", "accounts_database", "ACCOUNTS_TLS_CRT", "ACCOUNT_KEY_FILE",
		"ACCOUNTS_MAX_INFLIGHT", "Accounts_Key_Store", "ACCOUNTS_PREVIOUS_MASTERKEY",
		// More than two letters away: a known name with more after it, or
		// with some of its words.
		"ACCOUNTS_MASTER_KEY_FILE", "ACCOUNTS_METRICS_ADDRESS", "ACCOUNTS_DATABASE_URL", "ACCOUNTS_SETTLE",
		"ACCOUNTS_ALLOW_PLAINTEXT", "accounts_tls"} {
		err := CheckNames([]string{"PATH=/bin", name + "=x"})
		if err == nil || !strings.Contains(err.Error(), name) {
			t.Errorf("%s: %v, want a refusal naming it", name, err)
		}
	}
	ok := []string{"PATH=/bin", "HOME=/root", "ACCOUNTS_TEST_POSTGRES=postgres://x", "ACCOUNTS_TEST_ENGINE=postgres",
		"ACCOUNTS_SERVICE_HOST=10.0.0.1", "ACCOUNTS_SERVICE_PORT=8080", "ACCOUNTS_PORT=tcp://10.0.0.1:8080",
		"ACCOUNTS_PORT_8080_TCP_ADDR=10.0.0.1", "ACCOUNTS_PORT_8080_TCP_PORT=8080", "ACCOUNTS_PORT_8080_TCP_PROTO=tcp",
		"ACCOUNTS_SERVICE_PORT_HTTP=8080", "ACCOUNTS_SERVICE_PORT_METRICS=9090", "ACCOUNTS_PORT_9090_TCP=tcp://10.0.0.1:9090",
		"ACCOUNTS_TEST_DATABASE_URL=x", "ACCOUNTS_=", "ACCOUNTS=", "X_ACCOUNTS_MASTERKEY=1"}
	for _, name := range Variables() {
		ok = append(ok, name+"=v")
	}
	if err := CheckNames(ok); err != nil {
		t.Errorf("%v", err)
	}
}
