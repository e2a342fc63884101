package servetest

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"accounts/internal/config"
	"accounts/internal/store/storetest"
)

func TestMain(m *testing.M) { os.Exit(RunTests(m)) }

// get sends a GET with the headers and returns its status.
func get(t *testing.T, url string, headers map[string]string) int {
	t.Helper()
	req, err := http.NewRequest("GET", url, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// A client made with the command line is served by the process started on
// the same SQLite deployment, whose memory can be read, and which exits 0
// when stopped, having logged to its file.
func TestSQLiteServer(t *testing.T) {
	d := NewSQLiteDeployment(t)
	headers := d.Client(d.Customer("Servetest AB"), "read")
	if len(headers) != 7 {
		t.Fatalf("client create printed %d headers, want 7", len(headers))
	}
	s := d.Start(Inspectable())
	if got := get(t, s.Base+"/accounts/users/customer/tenant/", headers); got != http.StatusOK {
		t.Errorf("listing tenants: status %d", got)
	}
	if err := s.ResetPeakRSS(); err != nil {
		t.Fatalf("ResetPeakRSS: %v", err)
	}
	rss, err := s.RSS()
	if err != nil || rss <= 0 {
		t.Errorf("RSS: %d KiB, err %v", rss, err)
	}
	peak, err := s.PeakRSS()
	if err != nil || peak <= 0 {
		t.Errorf("PeakRSS: %d KiB, err %v", peak, err)
	}
	if err := s.Stop(); err != nil {
		t.Errorf("Stop: %v\n%s", err, s.Log())
	}
	if !strings.Contains(s.Log(), `"msg":"listening"`) {
		t.Errorf("the log has no listening line:\n%s", s.Log())
	}
}

// A killed server is gone when Kill returns, and did not exit 0.
func TestKill(t *testing.T) {
	s := NewSQLiteDeployment(t).Start()
	s.Kill()
	if _, err := http.Get(s.Base + "/healthz"); err == nil {
		t.Error("the killed server still answers")
	}
	if err := s.Stop(); err == nil {
		t.Error("Stop after Kill reports a clean exit")
	}
}

// With DeploymentEnvOnly the server sees none of the test process's
// ACCOUNTS_* variables: one that would stop it from starting (a TLS
// certificate without its key) does not.
func TestDeploymentEnvOnly(t *testing.T) {
	t.Setenv(config.EnvTLSCert, "missing.pem")
	d := NewSQLiteDeployment(t)
	if env := d.environ(false); !slices.Contains(env, config.EnvTLSCert+"=missing.pem") {
		t.Errorf("the server's environment lacks the test's %s", config.EnvTLSCert)
	}
	for _, kv := range d.environ(true) {
		if strings.HasPrefix(kv, config.EnvTLSCert+"=") {
			t.Errorf("DeploymentEnvOnly: the server's environment has %s", config.EnvTLSCert)
		}
	}
	s := d.Start(DeploymentEnvOnly())
	if got := get(t, s.Base+"/healthz", nil); got != http.StatusOK {
		t.Errorf("/healthz: status %d", got)
	}
}

// On PostgreSQL the key store is a file, and the server is ready.
func TestPostgresServer(t *testing.T) {
	d := NewDeployment(t, storetest.PostgresURL(t))
	if d.Env[config.EnvKeyStore] == "" {
		t.Fatalf("a PostgreSQL deployment without %s", config.EnvKeyStore)
	}
	headers := d.Client(d.Customer("Servetest PG AB"), "read_write")
	s := d.Start()
	if got := get(t, s.Base+"/readyz", nil); got != http.StatusOK {
		t.Errorf("/readyz: status %d", got)
	}
	if got := get(t, s.Base+"/accounts/users/customer/tenant/", headers); got != http.StatusOK {
		t.Errorf("listing tenants: status %d", got)
	}
}

// Flags reach serve's command line, and a Prefix that execs serve keeps its
// process id: the limit set by flag is the one in force, and the memory
// read is the server's.
func TestFlagsAndPrefix(t *testing.T) {
	s := NewSQLiteDeployment(t).Start(Flags("--client-rate", "0"), Prefix("env"))
	resp, err := http.Get(s.Base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(body), `accounts_limit{limit="client_rate"} 0`) {
		t.Errorf("/metrics does not show the client rate turned off by --client-rate 0")
	}
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/comm", s.PID))
	if err != nil || strings.TrimSpace(string(status)) != "accounts" {
		t.Errorf("process %d is %q (err %v), want the server, accounts", s.PID, status, err)
	}
}

// Foreign work is the machine's less the sampled processes': a process
// sampled at the end only counts from its start, one sampled at the start
// only is left out.
func TestForeignCores(t *testing.T) {
	at := time.Now()
	a := CPUSample{at: at, busy: 1000, procs: map[string]int64{"1": 100, "2": 50, "gone": 30}}
	b := CPUSample{at: at.Add(2 * time.Second), busy: 1400, procs: map[string]int64{"1": 200, "2": 50, "new": 60}}
	// 400 ticks of work, 100 of process 1 and 60 of the new one: 240 ticks
	// in 2 s at 100 a second.
	if got := ForeignCores(a, b); got < 1.2-1e-9 || got > 1.2+1e-9 {
		t.Errorf("ForeignCores = %v, want 1.2", got)
	}
	s := SampleCPU("self")
	if _, ok := s.procs[strconv.Itoa(os.Getpid())]; !ok || s.busy <= 0 {
		t.Errorf("SampleCPU(self) = %+v", s)
	}
}

// A hang-up (the terminal closed, or an operator's HUP) and an interrupt
// stop the server as SIGTERM does: it drains, logs that it stopped, and
// exits 0, where the default action of SIGHUP killed it mid-request.
func TestStopSignals(t *testing.T) {
	d := NewSQLiteDeployment(t)
	for _, sig := range []os.Signal{syscall.SIGHUP, os.Interrupt} {
		s := d.Start()
		if err := s.StopWith(sig); err != nil {
			t.Errorf("%v: serve exited with %v, want status 0", sig, err)
		}
		if !strings.Contains(s.Log(), `"msg":"stopped"`) {
			t.Errorf("%v: serve did not log that it stopped", sig)
		}
	}
}
