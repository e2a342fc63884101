package crashtest

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"testing"
	"time"

	"accounts/internal/servetest"
)

const (
	tenantPath = "/accounts/users/customer/tenant/"
	piPath     = "/accounts/users/customer/protectedidentity/"
)

func TestMain(m *testing.M) { os.Exit(servetest.RunTests(m)) }

// server is one `accounts serve` process with connections of its own,
// closed when it ends.
type server struct {
	*servetest.Server
	t      testing.TB
	client *http.Client
}

func start(t testing.TB, d *servetest.Deployment) *server {
	t.Helper()
	return &server{Server: d.Start(), t: t, client: &http.Client{Timeout: 15 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 16}}}
}

// kill ends the process with SIGKILL, as a power cut ends it (but the OS
// keeps what it has been given, so this tests the service's commits, not
// the disk's).
func (s *server) kill() {
	s.Kill()
	s.client.CloseIdleConnections()
}

// stop asks the process to drain and exit, as an operator does; it must
// exit 0.
func (s *server) stop() {
	s.t.Helper()
	if err := s.Stop(); err != nil {
		s.t.Errorf("serve after SIGTERM: %v\n%s", err, s.Log())
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
	req, err := http.NewRequest(method, s.Base+path, rd)
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
