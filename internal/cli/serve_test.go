package cli

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"maps"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"accounts/internal/config"
)

// serveLog is serve's stderr: written by the server's goroutines, read by
// the test.
type serveLog struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *serveLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

// events returns the JSON log lines written so far.
func (l *serveLog) events() []map[string]any {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []map[string]any
	for line := range strings.Lines(l.buf.String()) {
		var ev map[string]any
		if json.Unmarshal([]byte(line), &ev) == nil {
			out = append(out, ev)
		}
	}
	return out
}

// count returns how many log lines have the msg.
func (l *serveLog) count(msg string) int {
	n := 0
	for _, ev := range l.events() {
		if ev["msg"] == msg {
			n++
		}
	}
	return n
}

// servedCLI is a serve command running in-process.
type servedCLI struct {
	addr        string // from the "listening" line
	metricsAddr string // from the "metrics listening" line, if any
	log         *serveLog
	// stop cancels serve's context (as SIGTERM does) and returns what Run
	// returned.
	stop func() error
}

// serve runs `accounts serve args...` in-process until it logs its
// listening line, and stops it when the test ends.
func (c *cliEnv) serve(args ...string) *servedCLI {
	c.t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	log := &serveLog{}
	done := make(chan error, 1)
	go func() {
		done <- Run(ctx, append([]string{"serve"}, args...), IO{Env: c.env, Stdout: io.Discard, Stderr: log})
	}()
	s := &servedCLI{log: log, stop: sync.OnceValue(func() error {
		cancel()
		select {
		case err := <-done:
			return err
		case <-time.After(30 * time.Second):
			return errors.New("serve did not return within 30 s of cancellation")
		}
	})}
	c.t.Cleanup(func() { s.stop() })
	deadline := time.After(30 * time.Second)
	for {
		for _, ev := range log.events() {
			addr, _ := ev["addr"].(string)
			switch ev["msg"] {
			case "metrics listening":
				s.metricsAddr = addr
			case "listening":
				s.addr = addr
			}
		}
		if s.addr != "" {
			return s
		}
		select {
		case err := <-done:
			c.t.Fatalf("serve returned before listening: %v", err)
		case <-deadline:
			c.t.Fatalf("serve logged no listening line within 30 s")
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// stopCleanly stops the server and checks that Run returned nil and that
// no address in addrs accepts connections any more.
func (s *servedCLI) stopCleanly(t *testing.T, addrs ...string) {
	t.Helper()
	if err := s.stop(); err != nil {
		t.Errorf("serve returned %v after cancellation, want nil", err)
	}
	if s.log.count("stopped") != 1 {
		t.Errorf("serve logged no stopped line")
	}
	for _, a := range addrs {
		if conn, err := net.DialTimeout("tcp", a, time.Second); err == nil {
			conn.Close()
			t.Errorf("%s still accepts connections after serve returned", a)
		}
	}
}

// cliSelfSigned writes a self-signed ECDSA P-256 certificate for 127.0.0.1
// and its key to PEM files, and returns them with a pool that trusts it.
func cliSelfSigned(t *testing.T) (certFile, keyFile string, pool *x509.CertPool) {
	t.Helper()
	return cliCertificate(t, time.Now().Add(-time.Hour), time.Now().Add(time.Hour))
}

// cliCertificate is cliSelfSigned with the given validity.
func cliCertificate(t *testing.T, notBefore, notAfter time.Time) (certFile, keyFile string, pool *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 64))
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: "accounts test"},
		NotBefore:             notBefore,
		NotAfter:              notAfter,
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1)},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pool = x509.NewCertPool()
	pool.AddCert(cert)
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	certFile = filepath.Join(dir, "cert.pem")
	keyFile = filepath.Join(dir, "key.pem")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), 0o600); err != nil {
		t.Fatal(err)
	}
	return certFile, keyFile, pool
}

// cliHTTPSClient trusts pool and speaks only TLS versions min to max (0:
// Go's default).
func cliHTTPSClient(t *testing.T, pool *x509.CertPool, min, max uint16) *http.Client {
	tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: min, MaxVersion: max}}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Timeout: 5 * time.Second, Transport: tr}
}

// cliGet returns the status and body of GET url, or the error.
func cliGet(c *http.Client, url string) (int, string, error) {
	resp, err := c.Get(url)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body), err
}

// Every configuration serve must refuse: a usage error of one line (exit
// code 2 from the command), before anything is opened or bound.
func TestServeRefusesBadConfiguration(t *testing.T) {
	certFile, keyFile, _ := cliSelfSigned(t)
	otherCert, otherKey, _ := cliSelfSigned(t)
	expiredCert, expiredKey, _ := cliCertificate(t, time.Now().Add(-48*time.Hour), time.Now().Add(-time.Hour))
	futureCert, futureKey, _ := cliCertificate(t, time.Now().Add(time.Hour), time.Now().Add(48*time.Hour))
	garbage := filepath.Join(t.TempDir(), "garbage.pem")
	if err := os.WriteFile(garbage, []byte("not a PEM file\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	missing := filepath.Join(t.TempDir(), "missing.pem")
	unreadable := filepath.Join(t.TempDir(), "unreadable.pem")
	if err := os.Mkdir(unreadable, 0o700); err != nil { // a directory can't be read as a file
		t.Fatal(err)
	}
	// The key of certFile open to others, and to its group's writes.
	keyReadable, keyGroupWritable := filepath.Join(t.TempDir(), "key.pem"), filepath.Join(t.TempDir(), "key.pem")
	for file, mode := range map[string]os.FileMode{keyReadable: 0o644, keyGroupWritable: 0o660} {
		raw, err := os.ReadFile(keyFile)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(file, raw, 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(file, mode); err != nil {
			t.Fatal(err)
		}
	}
	loop := "127.0.0.1:0"
	// A port free a moment ago, for the two spellings of one address.
	probe, err := net.Listen("tcp", loop)
	if err != nil {
		t.Fatal(err)
	}
	port := strconv.Itoa(probe.Addr().(*net.TCPAddr).Port)
	probe.Close()
	// Paths that name no file: refused before anything named after them
	// (a folder, a key file, a key store) is made.
	slashDB := filepath.Join(t.TempDir(), "slash.db") + "/"
	slashStore := filepath.Join(t.TempDir(), "slash.keys") + "/"
	spacedDB := filepath.Join(t.TempDir(), "spaced.db") + " "
	cases := []struct {
		name string
		env  map[string]string
		args []string
	}{
		{"only --tls-cert", nil, []string{"--addr", loop, "--tls-cert", certFile}},
		{"only --tls-key", nil, []string{"--addr", loop, "--tls-key", keyFile}},
		{"only the cert env", map[string]string{config.EnvTLSCert: certFile}, []string{"--addr", loop}},
		{"only the key env", map[string]string{config.EnvTLSKey: keyFile}, []string{"--addr", loop}},
		{"missing cert", nil, []string{"--addr", loop, "--tls-cert", missing, "--tls-key", keyFile}},
		{"missing key", nil, []string{"--addr", loop, "--tls-cert", certFile, "--tls-key", missing}},
		{"unreadable cert", nil, []string{"--addr", loop, "--tls-cert", unreadable, "--tls-key", keyFile}},
		{"expired cert", nil, []string{"--addr", loop, "--tls-cert", expiredCert, "--tls-key", expiredKey}},
		{"cert not yet valid", nil, []string{"--addr", loop, "--tls-cert", futureCert, "--tls-key", futureKey}},
		{"cert not PEM", nil, []string{"--addr", loop, "--tls-cert", garbage, "--tls-key", keyFile}},
		{"key not PEM", nil, []string{"--addr", loop, "--tls-cert", certFile, "--tls-key", garbage}},
		{"cert and key not a pair", nil, []string{"--addr", loop, "--tls-cert", certFile, "--tls-key", otherKey}},
		{"key given as cert", nil, []string{"--addr", loop, "--tls-cert", otherKey, "--tls-key", otherCert}},
		{"plaintext on 0.0.0.0", nil, []string{"--addr", "0.0.0.0:0"}},
		{"plaintext on an empty host", nil, []string{"--addr", ":0"}},
		{"plaintext on ::", nil, []string{"--addr", "[::]:0"}},
		{"plaintext on another IP", nil, []string{"--addr", "192.0.2.1:8080"}},
		{"plaintext on a hostname", nil, []string{"--addr", "accounts.example:8080"}},
		{"plaintext from the addr env", map[string]string{config.EnvAddr: "0.0.0.0:0"}, nil},
		{"allow env not exactly true", map[string]string{config.EnvAllowPlaintextHTTP: "1"}, []string{"--addr", "0.0.0.0:0"}},
		{"allow env TRUE", map[string]string{config.EnvAllowPlaintextHTTP: "TRUE"}, []string{"--addr", "0.0.0.0:0"}},
		{"allow env yes on loopback", map[string]string{config.EnvAllowPlaintextHTTP: "yes"}, []string{"--addr", loop}},
		{"allow flag not exactly true", nil, []string{"--addr", "0.0.0.0:0", "--allow-plaintext-http=1"}},
		{"addr without port", nil, []string{"--addr", "127.0.0.1"}},
		{"addr not host:port", nil, []string{"--addr", "not an address"}},
		{"addr port out of range", nil, []string{"--addr", "127.0.0.1:65536"}},
		{"addr port not a number", nil, []string{"--addr", "127.0.0.1:http"}},
		{"empty addr", nil, []string{"--addr", ""}},
		{"plaintext metrics on 0.0.0.0", nil, []string{"--addr", loop, "--metrics-addr", "0.0.0.0:0"}},
		{"plaintext metrics from env", map[string]string{config.EnvMetricsAddr: ":9090"}, []string{"--addr", loop}},
		{"malformed metrics addr", nil, []string{"--addr", loop, "--metrics-addr", "9090"}},
		{"metrics addr same as addr", nil, []string{"--addr", "127.0.0.1:18080", "--metrics-addr", "127.0.0.1:18080"}},
		{"metrics addr the same, spelled otherwise", nil, []string{"--addr", "127.0.0.1:" + port, "--metrics-addr", "127.0.0.1:0" + port}},
		{"request timeout 0", nil, []string{"--addr", loop, "--request-timeout", "0"}},
		{"auth window 0", nil, []string{"--addr", loop, "--auth-window", "0"}},
		{"request timeout under a second", nil, []string{"--addr", loop, "--request-timeout", "1ns"}},
		{"request timeout over an hour", nil, []string{"--addr", loop, "--request-timeout", "2h"}},
		{"auth window under a second", nil, []string{"--addr", loop, "--auth-window", "999ms"}},
		{"max connections past the open-file limit", nil, []string{"--addr", loop, "--max-connections", "2000000000"}},
		{"client burst 0 under a rate", nil, []string{"--addr", loop, "--client-burst", "0"}},
		{"auth window over a day", nil, []string{"--addr", loop, "--auth-window", "2000000h"}},
		{"auth window 0 from env", map[string]string{"ACCOUNTS_AUTH_WINDOW": "0s"}, []string{"--addr", loop}},
		{"negative auth window", nil, []string{"--addr", loop, "--auth-window", "-1m"}},
		{"negative client rate", nil, []string{"--addr", loop, "--client-rate", "-1"}},
		{"sort rows not a number", nil, []string{"--addr", loop, "--sort-rows", "many"}},
		{"TLS key open to others", nil, []string{"--addr", loop, "--tls-cert", certFile, "--tls-key", keyReadable}},
		{"TLS key its group may write", nil, []string{"--addr", loop, "--tls-cert", certFile, "--tls-key", keyGroupWritable}},
		{"plaintext allowed with TLS", nil, []string{"--addr", loop, "--tls-cert", certFile, "--tls-key", keyFile, "--allow-plaintext-http"}},
		{"plaintext allowed by env with TLS", map[string]string{config.EnvAllowPlaintextHTTP: "true"},
			[]string{"--addr", loop, "--tls-cert", certFile, "--tls-key", keyFile}},
		{"addr given twice", nil, []string{"--addr", loop, "--addr", "127.0.0.1:1"}},
		{"a limit given twice", nil, []string{"--addr", loop, "--max-in-flight", "10", "--max-in-flight=20"}},
		{"a switch given twice", nil, []string{"--addr", "0.0.0.0:0", "--allow-plaintext-http=false", "--allow-plaintext-http"}},
		// With --database, so that a server that did start would not
		// make ./data in the package's folder.
		{"empty database env", map[string]string{config.EnvDatabase: ""}, []string{"--addr", loop, "--database", filepath.Join(t.TempDir(), "a.db")}},
		{"empty master key env", map[string]string{config.EnvMasterKey: ""}, []string{"--addr", loop}},
		{"empty addr env", map[string]string{config.EnvAddr: ""}, nil},
		{"empty TLS cert env", map[string]string{config.EnvTLSCert: ""}, []string{"--addr", loop}},
		{"empty key store env", map[string]string{config.EnvKeyStore: ""}, []string{"--addr", loop}},
		{"empty allow env", map[string]string{config.EnvAllowPlaintextHTTP: ""}, []string{"--addr", loop}},
		{"empty limit env", map[string]string{"ACCOUNTS_MAX_IN_FLIGHT": ""}, []string{"--addr", loop}},
		{"misspelled master key env", map[string]string{"ACCOUNTS_MASTERKEY": "x"}, []string{"--addr", loop}},
		{"misspelled limit env", map[string]string{"ACCOUNTS_MAX_INFLIGHT": "10"}, []string{"--addr", loop}},
		{"database ending in a slash", nil, []string{"--addr", loop, "--database", slashDB}},
		{"key store ending in a slash", nil, []string{"--addr", loop, "--key-store", slashStore}},
		{"database env with a trailing space", map[string]string{config.EnvDatabase: spacedDB}, []string{"--addr", loop}},
		// An empty flag is no value: not "not given", which means a
		// default (a generated key file, metrics on the API's address,
		// TLS off).
		{"empty --key-file", nil, []string{"--addr", loop, "--key-file="}},
		{"empty --key-store", nil, []string{"--addr", loop, "--key-store", ""}},
		{"empty --metrics-addr", nil, []string{"--addr", loop, "--metrics-addr", ""}},
		{"empty --tls-cert and --tls-key", nil, []string{"--addr", "0.0.0.0:0", "--tls-cert=", "--tls-key=", "--allow-plaintext-http"}},
		{"empty limit flag", nil, []string{"--addr", loop, "--max-in-flight", ""}},
	}
	bin := cliBuild(t)
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := newCLIEnv(t)
			maps.Copy(c.vars, tc.env)
			db := c.vars[config.EnvDatabase]

			// In-process: a usage error, returned at once.
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			log := &serveLog{}
			err := Run(ctx, append([]string{"serve"}, tc.args...), IO{Env: c.env, Environ: c.environ, Stdout: io.Discard, Stderr: log})
			if ctx.Err() != nil {
				t.Fatalf("serve started (it returned only when its context ended)")
			}
			cliUsage(t, "serve", err)
			if n := log.count("listening"); n != 0 {
				t.Errorf("serve logged a listening line before refusing")
			}
			if _, err := os.Stat(db); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("serve opened the database before refusing")
			}

			// The command: exit code 2 and one line on stderr.
			cmd := exec.Command(bin, append([]string{"serve"}, tc.args...)...)
			cmd.Env = cliEnvWith(c.vars)
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			done := make(chan error, 1)
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			go func() { done <- cmd.Wait() }()
			select {
			case err = <-done:
			case <-time.After(20 * time.Second):
				cmd.Process.Kill()
				<-done
				t.Fatalf("the serve command started")
			}
			var ee *exec.ExitError
			if !errors.As(err, &ee) || ee.ExitCode() != 2 {
				t.Errorf("exit: %v, want exit code 2", err)
			}
			if line := strings.TrimSuffix(stderr.String(), "\n"); line == "" || strings.Contains(line, "\n") {
				t.Errorf("stderr is not one line: %q", stderr.String())
			}
			if _, err := os.Stat(db); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("the serve command opened the database before refusing")
			}
			for _, made := range []string{slashDB, strings.TrimSuffix(slashDB, "/") + ".key", strings.TrimSuffix(slashDB, "/") + ".keys",
				slashStore, spacedDB, spacedDB + ".key", spacedDB + ".keys"} {
				if _, err := os.Stat(made); !errors.Is(err, os.ErrNotExist) {
					t.Errorf("%s was made before the refusal", filepath.Base(strings.TrimSuffix(made, "/")))
				}
			}
		})
	}
}

// With a certificate and key, serve speaks HTTPS only: TLS 1.3 by
// default, TLS 1.2 still, TLS 1.1 refused, plaintext HTTP not answered.
func TestServeHTTPS(t *testing.T) {
	certFile, keyFile, pool := cliSelfSigned(t)
	c := newCLIEnv(t)
	s := c.serve("--addr", "127.0.0.1:0", "--tls-cert", certFile, "--tls-key", keyFile)
	base := "https://" + s.addr

	client := cliHTTPSClient(t, pool, 0, 0)
	resp, err := client.Get(base + "/healthz")
	if err != nil {
		t.Fatalf("HTTPS /healthz: %v", err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("HTTPS /healthz: status %d, want 200", resp.StatusCode)
	}
	if resp.TLS == nil || resp.TLS.Version != tls.VersionTLS13 {
		t.Errorf("a default client did not get TLS 1.3")
	}
	if status, _, err := cliGet(client, base+"/metrics"); err != nil || status != http.StatusOK {
		t.Errorf("HTTPS /metrics without --metrics-addr: status %d, err %v; want 200", status, err)
	}

	// TLS 1.2 is the floor: a 1.2-only client is served (which also shows
	// the 1.1 client below fails for its version, not for its setup).
	if status, _, err := cliGet(cliHTTPSClient(t, pool, tls.VersionTLS12, tls.VersionTLS12), base+"/healthz"); err != nil || status != http.StatusOK {
		t.Errorf("TLS 1.2 client: status %d, err %v; want 200", status, err)
	}
	_, _, err = cliGet(cliHTTPSClient(t, pool, tls.VersionTLS10, tls.VersionTLS11), base+"/healthz")
	var alert *net.OpError
	if !errors.As(err, &alert) || alert.Op != "remote error" {
		t.Errorf("a TLS 1.1 client: %v, want the server's alert", err)
	}
	// The certificate served is the one given.
	if _, _, err := cliGet(cliHTTPSClient(t, x509.NewCertPool(), 0, 0), base+"/healthz"); err == nil {
		t.Errorf("a client that does not trust the test certificate was served")
	}
	// Plaintext HTTP to the TLS port gets no API answer.
	status, body, err := cliGet(&http.Client{Timeout: 5 * time.Second}, "http://"+s.addr+"/healthz")
	if err == nil && (status == http.StatusOK || strings.Contains(body, `"status"`)) {
		t.Errorf("plaintext HTTP to the TLS port: status %d with an API body", status)
	}
	if s.log.count(msgPlaintextOnNetwork) != 0 {
		t.Errorf("serve warned of plaintext with TLS on")
	}
	s.stopCleanly(t, s.addr)
}

// --metrics-addr moves /metrics to its own listener, plaintext on loopback
// or with the API's certificate; the API answers 404 there; SIGTERM (here:
// the context) closes both.
func TestServeMetricsAddr(t *testing.T) {
	certFile, keyFile, pool := cliSelfSigned(t)
	cases := []struct {
		name   string
		env    map[string]string
		scheme string
		client *http.Client
	}{
		{"plaintext on loopback", nil, "http", &http.Client{Timeout: 5 * time.Second}},
		{"TLS from the environment", map[string]string{
			config.EnvTLSCert:     certFile,
			config.EnvTLSKey:      keyFile,
			config.EnvMetricsAddr: "127.0.0.1:0",
		}, "https", cliHTTPSClient(t, pool, 0, 0)},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := newCLIEnv(t)
			maps.Copy(c.vars, tc.env)
			args := []string{"--addr", "127.0.0.1:0"}
			if tc.env[config.EnvMetricsAddr] == "" {
				args = append(args, "--metrics-addr", "127.0.0.1:0")
			}
			s := c.serve(args...)
			if s.metricsAddr == "" || s.metricsAddr == s.addr {
				t.Fatalf("no metrics listening line with an address of its own (%q, API %q)", s.metricsAddr, s.addr)
			}
			api, metrics := tc.scheme+"://"+s.addr, tc.scheme+"://"+s.metricsAddr

			if status, _, err := cliGet(tc.client, api+"/healthz"); err != nil || status != http.StatusOK {
				t.Fatalf("API /healthz: status %d, err %v; want 200", status, err)
			}
			status, body, err := cliGet(tc.client, metrics+"/metrics")
			if err != nil || status != http.StatusOK {
				t.Fatalf("metrics /metrics: status %d, err %v; want 200", status, err)
			}
			if !strings.Contains(body, "accounts_http_requests_total") {
				t.Errorf("metrics /metrics lacks the API's request counter")
			}
			if status, _, err := cliGet(tc.client, api+"/metrics"); err != nil || status != http.StatusNotFound {
				t.Errorf("API /metrics: status %d, err %v; want 404", status, err)
			}
			if status, _, err := cliGet(tc.client, metrics+"/healthz"); err != nil || status != http.StatusNotFound {
				t.Errorf("metrics /healthz: status %d, err %v; want 404", status, err)
			}
			if tc.scheme == "https" {
				status, body, err := cliGet(&http.Client{Timeout: 5 * time.Second}, "http://"+s.metricsAddr+"/metrics")
				if err == nil && (status == http.StatusOK || strings.Contains(body, "accounts_")) {
					t.Errorf("plaintext HTTP to the TLS metrics port got the metrics")
				}
			}
			s.stopCleanly(t, s.addr, s.metricsAddr)
		})
	}
}

// --allow-plaintext-http (or its environment variable) lets serve listen
// without TLS beyond loopback, with one warning; on loopback there is none.
func TestServeAllowPlaintextHTTP(t *testing.T) {
	cases := []struct {
		name     string
		env      map[string]string
		args     []string
		warnings int
	}{
		{"flag on 0.0.0.0", nil, []string{"--addr", "0.0.0.0:0", "--allow-plaintext-http"}, 1},
		{"env on 0.0.0.0", map[string]string{config.EnvAllowPlaintextHTTP: "true"}, []string{"--addr", "0.0.0.0:0"}, 1},
		{"flag on 0.0.0.0 with metrics there too", nil, []string{"--addr", "0.0.0.0:0", "--metrics-addr", "0.0.0.0:0", "--allow-plaintext-http=true"}, 1},
		{"loopback", nil, []string{"--addr", "127.0.0.1:0"}, 0},
		{"env false on loopback", map[string]string{config.EnvAllowPlaintextHTTP: "false"}, []string{"--addr", "127.0.0.1:0"}, 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := newCLIEnv(t)
			maps.Copy(c.vars, tc.env)
			s := c.serve(tc.args...)
			_, port, err := net.SplitHostPort(s.addr)
			if err != nil {
				t.Fatalf("listening addr %q: %v", s.addr, err)
			}
			if status, _, err := cliGet(&http.Client{Timeout: 5 * time.Second}, "http://127.0.0.1:"+port+"/healthz"); err != nil || status != http.StatusOK {
				t.Errorf("/healthz: status %d, err %v; want 200", status, err)
			}
			if n := s.log.count(msgPlaintextOnNetwork); n != tc.warnings {
				t.Errorf("%d plaintext warnings, want %d", n, tc.warnings)
			}
			for _, ev := range s.log.events() {
				if ev["msg"] == msgPlaintextOnNetwork && ev["level"] != "WARN" {
					t.Errorf("the plaintext warning has level %v", ev["level"])
				}
			}
			s.stopCleanly(t, s.addr)
		})
	}
}

// serve's log is buffered (logsink), and a clean shutdown loses none of
// it: every request served has its access log line once serve returns.
func TestServeLogsEveryRequestByShutdown(t *testing.T) {
	c := newCLIEnv(t)
	s := c.serve("--addr", "127.0.0.1:0")
	client := &http.Client{Timeout: 5 * time.Second}
	const requests = 200
	for range requests {
		if status, _, err := cliGet(client, "http://"+s.addr+"/healthz"); err != nil || status != http.StatusOK {
			t.Fatalf("/healthz: status %d, err %v", status, err)
		}
	}
	s.stopCleanly(t, s.addr)
	if got := s.log.count("request"); got != requests {
		t.Errorf("%d request lines after shutdown, want %d", got, requests)
	}
}

// A request still in flight when the drain time runs out (here one whose
// body never arrives) is cut, and the stop is still a clean one: serve
// returns nil (the process exits 0), with the cut request logged.
func TestServeCutsWhatOutlastsTheDrain(t *testing.T) {
	defer func(d time.Duration) { drainTimeout = d }(drainTimeout)
	drainTimeout = time.Second
	c := newCLIEnv(t)
	cu := c.customer("Drained AB")
	var cl cliClient
	c.runJSON(&cl, "client", "create", "--customer", cu.ID, "--json")
	s := c.serve("--addr", "127.0.0.1:0")
	conn, err := net.Dial("tcp", s.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	var head strings.Builder
	head.WriteString("POST /sales/organization/ HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\nContent-Length: 100\r\n")
	for k, v := range cl.Headers {
		head.WriteString(k + ": " + v + "\r\n")
	}
	if _, err := conn.Write([]byte(head.String() + "\r\n" + `{"name": `)); err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond)
	start := time.Now()
	s.stopCleanly(t)
	if took := time.Since(start); took > drainTimeout+cutGrace {
		t.Errorf("the stop took %v", took)
	}
	if n := s.log.count("request") + s.log.count("request aborted"); n != 1 {
		t.Errorf("%d request lines for the request that was cut, want 1", n)
	}
}

// serve raises GOMAXPROCS to two when the process may use one CPU, and
// leaves it as the operator set it.
func TestAtLeastTwoProcs(t *testing.T) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(0))
	for _, c := range []struct {
		env        string
		start, got int
	}{{"", 1, 2}, {"", 3, 3}, {"1", 1, 1}} {
		runtime.GOMAXPROCS(c.start)
		env := map[string]string{}
		if c.env != "" {
			env["GOMAXPROCS"] = c.env
		}
		atLeastTwoProcs(IO{Env: config.MapEnv(env)})
		if got := runtime.GOMAXPROCS(0); got != c.got {
			t.Errorf("GOMAXPROCS=%q, starting at %d: %d, want %d", c.env, c.start, got, c.got)
		}
	}
}

// gogcNow reads the GOGC the runtime applies.
func gogcNow() int {
	s := []metrics.Sample{{Name: "/gc/gogc:percent"}}
	metrics.Read(s)
	return int(s[0].Value.Uint64())
}

// serve paces the collector by the live heap (gcpace) while it runs,
// unless GOGC is set, and leaves GOGC as it found it.
func TestServePacesTheCollectorUnlessGOGCIsSet(t *testing.T) {
	const found = 137
	defer debug.SetGCPercent(debug.SetGCPercent(found))
	// paced collects until GOGC changes, for at most within.
	paced := func(within time.Duration) bool {
		for deadline := time.Now().Add(within); time.Now().Before(deadline); {
			runtime.GC()
			time.Sleep(gcPacePoll + 50*time.Millisecond)
			if gogcNow() != found {
				return true
			}
		}
		return false
	}

	c := newCLIEnv(t)
	s := c.serve("--addr", "127.0.0.1:0")
	if !paced(5 * time.Second) {
		t.Errorf("GOGC stayed %d while serving", found)
	}
	s.stopCleanly(t, s.addr)
	if got := gogcNow(); got != found {
		t.Errorf("GOGC after serve = %d, want the %d it found", got, found)
	}

	c = newCLIEnv(t)
	c.vars["GOGC"] = "137"
	s = c.serve("--addr", "127.0.0.1:0")
	if paced(time.Second) {
		t.Errorf("GOGC became %d while serving with GOGC set", gogcNow())
	}
	s.stopCleanly(t, s.addr)
}

// The request line and headers may take maxHeaderBytes (64 KiB, README's
// limits; net/http reads 4 KiB more before it refuses): a request under it
// is served, one well past it refused by the HTTP server with 431.
func TestServeHeaderLimit(t *testing.T) {
	c := newCLIEnv(t)
	s := c.serve("--addr", "127.0.0.1:0")
	client := &http.Client{Timeout: 5 * time.Second}
	for _, tc := range []struct {
		filler int
		want   int
	}{{maxHeaderBytes - 4<<10, http.StatusOK}, {maxHeaderBytes + 16<<10, http.StatusRequestHeaderFieldsTooLarge}} {
		req, err := http.NewRequest(http.MethodGet, "http://"+s.addr+"/healthz", nil)
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("X-Filler", strings.Repeat("a", tc.filler))
		resp, err := client.Do(req)
		if err != nil {
			t.Fatalf("%d bytes of header: %v", tc.filler, err)
		}
		resp.Body.Close()
		if resp.StatusCode != tc.want {
			t.Errorf("%d bytes of header: status %d, want %d", tc.filler, resp.StatusCode, tc.want)
		}
	}
	s.stopCleanly(t, s.addr)
}

// "OPTIONS *" is answered by the service, as any path that is not the
// API's (a JSON 404 with X-Request-ID), not by Go's bare 200.
func TestServeOptionsStarIsTheServicesAnswer(t *testing.T) {
	c := newCLIEnv(t)
	s := c.serve("--addr", "127.0.0.1:0")
	conn, err := net.DialTimeout("tcp", s.addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := conn.Write([]byte("OPTIONS * HTTP/1.1\r\nHost: test\r\n\r\n")); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), &http.Request{Method: "OPTIONS"})
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	var detail map[string]any
	if resp.StatusCode != http.StatusNotFound || json.Unmarshal(body, &detail) != nil || detail["detail"] == nil {
		t.Errorf("OPTIONS *: status %d, body a JSON detail %v; want a JSON 404", resp.StatusCode, detail["detail"] != nil)
	}
	if resp.Header.Get("X-Request-ID") == "" {
		t.Error("OPTIONS *: no X-Request-ID")
	}
	s.stopCleanly(t, s.addr)
}

// An address in use fails the start before anything is made: no database,
// key file or key store for a new deployment, whether the API's address or
// the metrics one is taken.
func TestServeBusyAddressCreatesNothing(t *testing.T) {
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	busy := taken.Addr().String()
	for name, args := range map[string][]string{
		"addr":         {"--addr", busy},
		"metrics addr": {"--addr", "127.0.0.1:0", "--metrics-addr", busy},
	} {
		t.Run(name, func(t *testing.T) {
			c := newCLIEnv(t)
			db := c.vars[config.EnvDatabase]
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			err := Run(ctx, append([]string{"serve"}, args...), IO{Env: c.env, Stdout: io.Discard, Stderr: &serveLog{}})
			if err == nil || ctx.Err() != nil {
				t.Fatalf("serve on a busy address: %v (context: %v), want an error at once", err, ctx.Err())
			}
			matches, err := filepath.Glob(db + "*")
			if err != nil {
				t.Fatal(err)
			}
			if len(matches) > 0 {
				t.Errorf("serve on a busy address left %d files of the deployment, want none", len(matches))
			}
		})
	}
}

// serve and the administrative commands keep their memory to themselves:
// they run with a core file limit of zero, soft and hard, and are not
// dumpable, so that no core dump is made of them (not even by a core
// handler that core_pattern pipes to, which ignores the limit) and no
// other process of their user may attach a debugger or read their memory
// or environment: it holds decrypted values and unwrapped keys. keys
// rotate-data is looked at while it waits for its new index keys to
// settle. serve with --allow-debugger stays dumpable.
func TestCommandsKeepTheirMemoryToThemselves(t *testing.T) {
	c := newCLIEnv(t)
	c.customer("Core Dump AB") // the deployment's files, made by the command line
	bin, uid, asUser := unprivileged(t, cliBuild(t), filepath.Dir(c.vars[config.EnvDatabase]))
	s := cliStartServe(t, bin, c.vars, asUser)
	coreLimitOff(t, "serve", s.pid)
	if dumpable(t, s.pid, uid) {
		t.Error("serve is dumpable")
	}
	s.stop()
	s = cliStartServe(t, bin, c.vars, asUser, func(cmd *exec.Cmd) { cmd.Args = append(cmd.Args, "--allow-debugger") })
	coreLimitOff(t, "serve --allow-debugger", s.pid)
	if !dumpable(t, s.pid, uid) {
		t.Error("serve --allow-debugger is not dumpable")
	}
	s.stop()

	cmd := exec.Command(bin, "keys", "rotate-data", "--settle", "1m")
	cmd.Env = cliEnvWith(c.vars)
	asUser(cmd)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Wait()
	defer cmd.Process.Kill()
	lines := bufio.NewScanner(stderr)
	for lines.Scan() && !strings.Contains(lines.Text(), "waiting") {
	}
	coreLimitOff(t, "keys rotate-data", cmd.Process.Pid)
	if dumpable(t, cmd.Process.Pid, uid) {
		t.Error("keys rotate-data is dumpable")
	}
}

// unprivileged returns how to run the accounts binary bin as a user other
// than root, on the deployment in dir: the test's own user, or nobody when
// the test runs as root, for whom dir and its files are handed over (and
// the folders above it in the temporary directory opened to be passed
// through), and bin copied where nobody may run it. It returns the binary
// to run, the user's id, and what makes a command run as that user.
func unprivileged(t *testing.T, bin, dir string) (string, uint32, func(*exec.Cmd)) {
	t.Helper()
	if os.Geteuid() != 0 {
		return bin, uint32(os.Geteuid()), func(*exec.Cmd) {}
	}
	const nobody = 65534
	exe, err := os.ReadFile(bin)
	if err != nil {
		t.Fatal(err)
	}
	copied := filepath.Join(dir, "accounts")
	if err := os.WriteFile(copied, exe, 0o755); err != nil {
		t.Fatal(err)
	}
	err = filepath.WalkDir(dir, func(path string, _ os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		return os.Lchown(path, nobody, nobody)
	})
	if err != nil {
		t.Fatal(err)
	}
	for up := filepath.Dir(dir); strings.HasPrefix(up, os.TempDir()+string(filepath.Separator)); up = filepath.Dir(up) {
		info, err := os.Stat(up)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(up, info.Mode().Perm()|0o001); err != nil {
			t.Fatal(err)
		}
	}
	return copied, nobody, func(cmd *exec.Cmd) {
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: nobody, Gid: nobody}}
	}
}

// dumpable reports whether process pid, which runs as user uid (not
// root), is dumpable: the kernel makes the /proc files of a process that
// is not root's.
func dumpable(t *testing.T, pid int, uid uint32) bool {
	t.Helper()
	info, err := os.Stat(fmt.Sprintf("/proc/%d/environ", pid))
	if err != nil {
		t.Fatal(err)
	}
	owner := info.Sys().(*syscall.Stat_t).Uid
	if owner != uid && owner != 0 {
		t.Fatalf("/proc/%d/environ belongs to user %d, neither the process's (%d) nor root", pid, owner, uid)
	}
	return owner == uid
}

// coreLimitOff checks the core file limit of process pid.
func coreLimitOff(t *testing.T, name string, pid int) {
	t.Helper()
	limits, err := os.ReadFile(fmt.Sprintf("/proc/%d/limits", pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(limits), "\n") {
		if strings.HasPrefix(line, "Max core file size") {
			if f := strings.Fields(strings.TrimPrefix(line, "Max core file size")); len(f) < 2 || f[0] != "0" || f[1] != "0" {
				t.Errorf("%s's core file limit: %q, want 0 and 0", name, strings.TrimSpace(line))
			}
			return
		}
	}
	t.Fatalf("%s: no core file limit in /proc/PID/limits", name)
}

// Past --connections-per-address, a new connection is closed before a
// byte of it is read, while that address's others, and another address's,
// are still served: one source can't take every descriptor.
func TestServeCapsConnectionsPerAddress(t *testing.T) {
	c := newCLIEnv(t)
	s := c.serve("--addr", "127.0.0.1:0", "--connections-per-address", "2")
	dial := func(from string) net.Conn {
		d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(from)}, Timeout: 5 * time.Second}
		conn, err := d.Dial("tcp", s.addr)
		if err != nil {
			t.Fatalf("dialing from %s: %v", from, err)
		}
		t.Cleanup(func() { conn.Close() })
		return conn
	}
	healthz := func(conn net.Conn) (int, error) {
		conn.SetDeadline(time.Now().Add(5 * time.Second))
		if _, err := io.WriteString(conn, "GET /healthz HTTP/1.1\r\nHost: accounts\r\n\r\n"); err != nil {
			return 0, err
		}
		resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
		if err != nil {
			return 0, err
		}
		resp.Body.Close()
		return resp.StatusCode, nil
	}
	held := []net.Conn{dial("127.0.0.1"), dial("127.0.0.1")}
	for i, conn := range held {
		if status, err := healthz(conn); err != nil || status != http.StatusOK {
			t.Fatalf("connection %d of the address: status %d, err %v; want 200", i, status, err)
		}
	}
	if status, err := healthz(dial("127.0.0.1")); err == nil {
		t.Errorf("a third connection of the address was answered %d, want it closed", status)
	}
	if status, err := healthz(dial("127.0.0.2")); err != nil || status != http.StatusOK {
		t.Errorf("another address: status %d, err %v; want 200", status, err)
	}
	for i, conn := range held {
		if status, err := healthz(conn); err != nil || status != http.StatusOK {
			t.Errorf("connection %d of the address, again: status %d, err %v; want 200", i, status, err)
		}
	}
	s.stopCleanly(t, s.addr)
}

// A --database file that is not an SQLite database (another file named by
// mistake) is a refusal to start, with nothing made beside it and the
// file as it was, where it was a failure (exit 1) that a unit restarting
// on failure would loop on.
func TestServeRefusesAFileThatIsNotADatabase(t *testing.T) {
	c := newCLIEnv(t)
	delete(c.vars, config.EnvMasterKey) // a new deployment's key file would be generated
	db := c.vars[config.EnvDatabase]
	garbage := bytes.Repeat([]byte("not a database "), 512)
	if err := os.WriteFile(db, garbage, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{{"serve", "--addr", "127.0.0.1:0"}, {"migrate"}} {
		_, _, err := c.run(args...)
		cliUsage(t, args[0]+" on a file that is not a database", err)
		if got, _ := os.ReadFile(db); !bytes.Equal(got, garbage) {
			t.Errorf("%s changed the file", args[0])
		}
		if entries, _ := os.ReadDir(filepath.Dir(db)); len(entries) != 1 {
			t.Errorf("%s left %d files beside it, want none", args[0], len(entries)-1)
		}
	}
}

// A --database whose folder can't be made (here: under /proc, which takes
// no new folder) is a refusal to start, not a failure (exit 1) that a unit
// restarting on failure would loop on: with the key given or to be
// generated alike.
func TestServeRefusesADatabaseFolderThatCantBeMade(t *testing.T) {
	for _, generated := range []bool{false, true} {
		c := newCLIEnv(t)
		c.vars[config.EnvDatabase] = "/proc/accounts-no-such-folder/data/accounts.db"
		if generated {
			delete(c.vars, config.EnvMasterKey)
		}
		_, _, err := c.run("serve", "--addr", "127.0.0.1:0")
		cliUsage(t, fmt.Sprintf("serve with a folder that can't be made (key generated: %v)", generated), err)
	}
}
