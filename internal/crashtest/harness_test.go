package crashtest

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"accounts/internal/cli"
)

const (
	tenantPath = "/accounts/users/customer/tenant/"
	piPath     = "/accounts/users/customer/protectedidentity/"
)

// deployment is a database, its keys, and a customer with a read_write
// client, made with the real command line, as an operator would.
type deployment struct {
	t        testing.TB
	vars     map[string]string // the ACCOUNTS_* environment of every command
	customer string
	headers  map[string]string // the client's seven X-PIGELLO-* headers
}

func newDeployment(t testing.TB, vars map[string]string) *deployment {
	t.Helper()
	d := &deployment{t: t, vars: vars}
	var customer struct{ ID string }
	d.runJSON(&customer, "customer", "create", "--name", "Crash AB", "--json")
	var client struct{ Headers map[string]string }
	d.runJSON(&client, "client", "create", "--customer", customer.ID, "--scope", "read_write", "--json")
	if len(client.Headers) != 7 {
		t.Fatalf("client create printed %d headers, want 7", len(client.Headers))
	}
	d.customer, d.headers = customer.ID, client.Headers
	return d
}

func (d *deployment) run(args ...string) (string, error) {
	var out, errOut bytes.Buffer
	err := cli.Run(context.Background(), args, cli.IO{Env: func(k string) string { return d.vars[k] }, Stdout: &out, Stderr: &errOut})
	return out.String(), err
}

func (d *deployment) runJSON(v any, args ...string) {
	d.t.Helper()
	out, err := d.run(args...)
	if err != nil {
		d.t.Fatalf("accounts %s %s: %v", args[0], args[1], err)
	}
	if err := json.Unmarshal([]byte(out), v); err != nil {
		d.t.Fatalf("accounts %s %s printed no JSON: %v", args[0], args[1], err)
	}
}

// buildBinary builds cmd/accounts without the race detector, whatever the
// test process runs with: the server must write at its normal speed, or the
// kills would land in a far wider window than production ever has.
func buildBinary(t testing.TB) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "accounts")
	if out, err := exec.Command("go", "build", "-o", bin, "accounts/cmd/accounts").CombinedOutput(); err != nil {
		t.Fatalf("building accounts: %v\n%s", err, out)
	}
	return bin
}

// server is one `accounts serve` child process.
type server struct {
	t      testing.TB
	cmd    *exec.Cmd
	base   string
	client *http.Client
	log    *logLines
	exited chan struct{} // closed when the process has been waited for
	err    error         // Wait's result, set before exited closes
}

// start starts `accounts serve` on a free port and waits for its
// "listening" log line, which carries the address.
func (d *deployment) start(bin string) *server {
	d.t.Helper()
	s := &server{t: d.t, log: &logLines{addr: make(chan string, 1)}, exited: make(chan struct{})}
	s.cmd = exec.Command(bin, "serve", "--addr", "127.0.0.1:0")
	s.cmd.Env = os.Environ()
	for k, v := range d.vars {
		s.cmd.Env = append(s.cmd.Env, k+"="+v) // the last of duplicate keys wins
	}
	s.cmd.Stdout, s.cmd.Stderr = s.log, s.log
	if err := s.cmd.Start(); err != nil {
		d.t.Fatal(err)
	}
	go func() { s.err = s.cmd.Wait(); close(s.exited) }()
	d.t.Cleanup(func() { s.cmd.Process.Kill(); <-s.exited })
	select {
	case addr := <-s.log.addr:
		s.base = "http://" + addr
	case <-s.exited:
		d.t.Fatalf("serve exited before listening: %v\n%s", s.err, s.log.String())
	case <-time.After(30 * time.Second):
		d.t.Fatalf("serve did not listen within 30 s\n%s", s.log.String())
	}
	s.client = &http.Client{Timeout: 15 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 16}}
	return s
}

// kill ends the process with SIGKILL: no drain, no deferred close, no
// checkpoint, exactly as a power cut ends it (but the OS keeps what it has
// been given, so this tests the service's commits, not the disk's).
func (s *server) kill() {
	s.cmd.Process.Signal(syscall.SIGKILL)
	<-s.exited
	s.client.CloseIdleConnections()
}

// stop asks the process to drain and exit, as an operator does; it must
// exit 0.
func (s *server) stop() {
	s.t.Helper()
	s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.exited:
		if s.err != nil {
			s.t.Errorf("serve after SIGTERM: %v\n%s", s.err, s.log.String())
		}
	case <-time.After(30 * time.Second):
		s.t.Errorf("serve did not exit within 30 s of SIGTERM")
	}
	s.client.CloseIdleConnections()
}

// do sends one request with the client's headers and reads the whole
// answer. A transport error or a body cut short is an error: the request's
// fate is then unknown. It never calls t.Fatal, so goroutines may use it.
func (s *server) do(headers map[string]string, method, path string, body any) (int, []byte, error) {
	var rd io.Reader
	if body != nil {
		data, err := json.Marshal(body)
		if err != nil {
			return 0, nil, err
		}
		rd = bytes.NewReader(data)
	}
	req, err := http.NewRequest(method, s.base+path, rd)
	if err != nil {
		return 0, nil, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	resp, err := s.client.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		return 0, nil, err
	}
	return resp.StatusCode, data, nil
}

// throttled reports a status that acknowledges nothing and changes
// nothing: the request limits' answers.
func throttled(status int) bool {
	return status == http.StatusTooManyRequests || status == http.StatusServiceUnavailable
}

// read sends a GET, again while the request limits answer 429 or 503 (for
// up to 30 s): the checks read much faster than any client of the API.
func (s *server) read(headers map[string]string, path string) (int, []byte, error) {
	deadline := time.Now().Add(30 * time.Second)
	for {
		status, data, err := s.do(headers, "GET", path, nil)
		if err != nil || !throttled(status) || time.Now().After(deadline) {
			return status, data, err
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// logLines collects a child's output (the service logs no personal value,
// so it may be shown when the child fails) and finds the listening line.
type logLines struct {
	mu      sync.Mutex
	buf     bytes.Buffer
	partial []byte
	addr    chan string
	found   bool
}

func (l *logLines) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.buf.Len() < 1<<20 {
		l.buf.Write(p)
	}
	if l.found {
		return len(p), nil
	}
	l.partial = append(l.partial, p...)
	for {
		i := bytes.IndexByte(l.partial, '\n')
		if i < 0 {
			break
		}
		var line struct{ Msg, Addr string }
		if json.Unmarshal(l.partial[:i], &line) == nil && line.Msg == "listening" && line.Addr != "" {
			l.found = true
			l.addr <- line.Addr
			l.partial = nil
			break
		}
		l.partial = l.partial[i+1:]
	}
	return len(p), nil
}

func (l *logLines) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.TrimSpace(l.buf.String())
}
