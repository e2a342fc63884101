package clustertest

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"accounts/internal/cli"
	"accounts/internal/config"
	"accounts/internal/servetest"
	"accounts/internal/store/storetest"

	"github.com/jackc/pgx/v5"
)

const (
	tenantPath = "/accounts/users/customer/tenant/"
	piPath     = "/accounts/users/customer/protectedidentity/"
	orgPath    = "/sales/organization/"
)

func TestMain(m *testing.M) { os.Exit(servetest.RunTests(m)) }

// deployment is a database and its keys with a customer and a client of
// it, made with the real CLI.
type deployment struct {
	*servetest.Deployment
	headers map[string]string
}

func newDeployment(t testing.TB, database string) *deployment {
	t.Helper()
	d := servetest.NewDeployment(t, database)
	return &deployment{Deployment: d, headers: d.Client(d.Customer("Cluster AB"), "read_write")}
}

// httpClient keeps connections to the servers open between requests, as
// many as the load benchmark's clients, and never waits forever.
var httpClient = &http.Client{Timeout: 20 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 64}}

// do sends one request with the client's headers; it never calls t.Fatal,
// so goroutines may use it.
func (d *deployment) do(base, method, path string, body any) (int, map[string]any, error) {
	status, _, obj, err := d.exchange(base, method, path, body)
	return status, obj, err
}

// exchange is do with the answer's headers.
func (d *deployment) exchange(base, method, path string, body any) (int, http.Header, map[string]any, error) {
	var rd io.Reader
	if body != nil {
		data, _ := json.Marshal(body)
		rd = bytes.NewReader(data)
	}
	req, err := http.NewRequest(method, base+path, rd)
	if err != nil {
		return 0, nil, nil, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	for k, v := range d.headers {
		req.Header.Set(k, v)
	}
	resp, err := httpClient.Do(req)
	if err != nil {
		return 0, nil, nil, err
	}
	defer resp.Body.Close()
	var obj map[string]any
	json.NewDecoder(resp.Body).Decode(&obj)
	return resp.StatusCode, resp.Header, obj, nil
}

// Two serve processes on one database, 40 concurrent creates of an identity
// for one tenant spread over both: the database's unique constraint lets
// exactly one through, and every other answer is the field error.
func TestTwoProcessesOneTenant(t *testing.T) {
	d := newDeployment(t, storetest.PostgresURL(t))
	bases := []string{d.Start().Base, d.Start().Base}

	status, tenant, err := d.do(bases[0], "POST", tenantPath, map[string]any{"first_name": "Cluster-Tenant-Probe"})
	if err != nil || status != http.StatusCreated {
		t.Fatalf("creating the tenant: status %d, err %v", status, err)
	}
	const n = 40
	statuses := make([]int, n)
	bodies := make([]map[string]any, n)
	errs := make([]error, n)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			statuses[i], bodies[i], errs[i] = d.do(bases[i%2], "POST", piPath, map[string]any{
				"tenant": map[string]any{"id": tenant["id"]}, "first_name": "Cluster-Identity-Probe",
			})
		}()
	}
	close(start)
	wg.Wait()
	created := 0
	for i := range n {
		switch {
		case errs[i] != nil:
			t.Errorf("request %d: %v", i, errs[i])
		case statuses[i] == http.StatusCreated:
			created++
		case statuses[i] == http.StatusBadRequest:
			if _, ok := bodies[i]["tenant"]; !ok || len(bodies[i]) != 1 {
				t.Errorf("request %d: 400 without exactly the tenant error key", i)
			}
		default:
			t.Errorf("request %d: status %d", i, statuses[i])
		}
	}
	if created != 1 {
		t.Errorf("%d identities created, want exactly 1", created)
	}
	// Both processes see the one identity.
	for _, base := range bases {
		status, _, err := d.do(base, "GET", piPath+"?tenant="+tenant["id"].(string)+"&_statistics=true", nil)
		if err != nil || status != http.StatusOK {
			t.Errorf("listing through %s: status %d, err %v", base, status, err)
		}
	}
}

// serveThroughProxy serves a deployment on a fresh PostgreSQL schema that
// the app reaches through a TCP proxy the test can cut or stall; the app
// and its server close when the test ends.
func serveThroughProxy(t *testing.T) (*tcpProxy, *deployment, *httptest.Server) {
	t.Helper()
	u, err := url.Parse(storetest.PostgresURL(t))
	if err != nil {
		t.Fatal(err)
	}
	proxy := newTCPProxy(t, u.Host)
	u.Host = proxy.addr
	d := newDeployment(t, u.String())
	app, err := cli.OpenApp(context.Background(), config.Config{Database: d.Env[config.EnvDatabase],
		MasterKey: d.Env[config.EnvMasterKey], KeyStore: d.Env[config.EnvKeyStore]},
		slog.New(slog.NewJSONHandler(io.Discard, nil)))
	if err != nil {
		t.Fatalf("opening the app: %v", err)
	}
	t.Cleanup(func() { app.Close() })
	srv := httptest.NewServer(app.Handler)
	t.Cleanup(srv.Close)
	return proxy, d, srv
}

// When PostgreSQL goes away, readiness fails and requests fail fast with
// 503 and Retry-After (they changed nothing, and may be sent again); when
// it comes back, the same process serves again.
func TestOutageAndRecovery(t *testing.T) {
	proxy, d, srv := serveThroughProxy(t)
	status, tenant, err := d.do(srv.URL, "POST", tenantPath, map[string]any{"first_name": "Outage-Tenant-Probe"})
	if err != nil || status != http.StatusCreated {
		t.Fatalf("before the outage: status %d, err %v", status, err)
	}
	tenantPathID := tenantPath + tenant["id"].(string) + "/"

	proxy.cut()
	if got := readyz(t, srv.URL); got != http.StatusServiceUnavailable {
		t.Errorf("/readyz during the outage: %d, want 503", got)
	}
	for _, req := range []struct{ method, path string }{{"GET", tenantPathID}, {"GET", tenantPath}, {"POST", tenantPath}} {
		var body any
		if req.method == "POST" {
			body = map[string]any{"first_name": "Outage-Write-Probe"}
		}
		status, header, obj, err := d.exchange(srv.URL, req.method, req.path, body)
		if err != nil {
			t.Fatalf("%s %s during the outage: %v (it must answer, not hang)", req.method, req.path, err)
		}
		retry, _ := strconv.Atoi(header.Get("Retry-After"))
		if status != http.StatusServiceUnavailable || retry < 1 || obj["detail"] == nil || len(obj) != 1 {
			t.Errorf("%s %s during the outage: status %d, Retry-After %d, keys %d; want 503 with Retry-After and the detail body", req.method, req.path, status, retry, len(obj))
		}
	}

	proxy.restore()
	awaitReady(t, srv.URL)
	if status, obj, err := d.do(srv.URL, "GET", tenantPathID, nil); err != nil || status != http.StatusOK || obj["first_name"] != "Outage-Tenant-Probe" {
		t.Errorf("after the outage: status %d, err %v", status, err)
	}
}

// When the network to PostgreSQL goes silent (nothing refused, nothing
// answered), /readyz still answers 503 within its time limit, however many
// connections the pool held, and 200 once bytes flow again.
func TestStalledDatabaseReadiness(t *testing.T) {
	proxy, _, srv := serveThroughProxy(t)
	if got := readyz(t, srv.URL); got != http.StatusOK {
		t.Fatalf("/readyz before the stall: %d", got)
	}

	proxy.stall()
	for range 3 {
		start := time.Now()
		got := readyz(t, srv.URL)
		if took := time.Since(start); got != http.StatusServiceUnavailable || took > 5*time.Second {
			t.Errorf("/readyz while the network is silent: %d after %v, want 503 within 5 s", got, took.Round(time.Millisecond))
		}
	}
	proxy.unstall()
	awaitReady(t, srv.URL)
}

// awaitReady waits for /readyz to answer 200 again, at most 30 s.
func awaitReady(t *testing.T, base string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for readyz(t, base) != http.StatusOK {
		if time.Now().After(deadline) {
			t.Fatal("/readyz did not recover within 30 s of the database's return")
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func readyz(t *testing.T, base string) int {
	t.Helper()
	client := &http.Client{Timeout: 20 * time.Second}
	resp, err := client.Get(base + "/readyz")
	if err != nil {
		t.Fatalf("/readyz: %v (it must answer, not hang)", err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// With PostgreSQL there is no generated key file: a master key must be
// given, and the error says so.
func TestPostgresNeedsExplicitMasterKey(t *testing.T) {
	database := storetest.PostgresURL(t)
	var out, errOut bytes.Buffer
	err := cli.Run(context.Background(), []string{"customer", "create", "--name", "Keyless AB"}, cli.IO{
		Env:    config.MapEnv(map[string]string{config.EnvDatabase: database}),
		Stdout: &out, Stderr: &errOut,
	})
	if err == nil || !strings.Contains(err.Error(), config.EnvMasterKey) {
		t.Fatalf("customer create without a key on PostgreSQL: err %v, want an error naming %s", err, config.EnvMasterKey)
	}
	if out.Len() != 0 {
		t.Error("customer create printed a customer although it failed")
	}
}

// `accounts migrate` from two processes at once: both succeed (the
// migrations run under an advisory lock) and serve finds the schema current.
func TestConcurrentMigrate(t *testing.T) {
	database := storetest.PostgresURL(t)
	bin := servetest.Binary(t)
	cmds := make([]*exec.Cmd, 2)
	outs := make([]bytes.Buffer, 2)
	for i := range cmds {
		cmds[i] = exec.Command(bin, "migrate", "--database", database)
		cmds[i].Stderr = &outs[i]
		if err := cmds[i].Start(); err != nil {
			t.Fatal(err)
		}
	}
	for i, c := range cmds {
		if err := c.Wait(); err != nil {
			t.Errorf("migrate %d: %v", i, err)
		}
	}
	d := newDeployment(t, database)
	if got := readyz(t, d.Start().Base); got != http.StatusOK {
		t.Errorf("/readyz after migrate: %d", got)
	}
}

// When the server ends the service's connections (a restart, a failover,
// pg_terminate_backend), the requests after it are served: what failed on a
// connection found gone, having committed nothing, runs again on another.
func TestConnectionsEndedByTheServer(t *testing.T) {
	u, err := url.Parse(storetest.PostgresURL(t))
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	name := "accounts_ended_" + strings.ReplaceAll(q.Get("search_path"), "-", "")
	q.Set("application_name", name)
	u.RawQuery = q.Encode()
	d := newDeployment(t, u.String())
	srv := d.Start()
	base := srv.Base
	defer func() {
		if t.Failed() {
			log, _ := os.ReadFile(srv.LogPath)
			for _, line := range strings.Split(string(log), "\n") {
				if strings.Contains(line, `"level":"ERROR"`) {
					t.Log(line)
				}
			}
		}
	}()
	status, org, err := d.do(base, "POST", orgPath, map[string]any{"name": "Ended Org"})
	if err != nil || status != http.StatusCreated {
		t.Fatalf("creating an organization: status %d, err %v", status, err)
	}
	orgPathID := orgPath + org["id"].(string) + "/"
	var wg sync.WaitGroup
	for range 16 { // the pool's connections, busy at once, then idle
		wg.Go(func() { d.do(base, "GET", orgPath+"?_page=1&_page_size=5", nil) })
	}
	wg.Wait()
	admin, err := pgx.Connect(context.Background(), storetest.PostgresURL(t))
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close(context.Background())
	end := func() {
		t.Helper()
		var ended int
		err := admin.QueryRow(context.Background(), `SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
			WHERE application_name = $1`, name).Scan(&ended)
		if err != nil || ended < 2 {
			t.Fatalf("ended %d of the service's connections (err %v), want several", ended, err)
		}
		time.Sleep(100 * time.Millisecond) // the ending has reached them
	}
	end()
	for i := range 14 {
		if status, _, err := d.do(base, "GET", orgPathID, nil); err != nil || status != http.StatusOK {
			t.Errorf("GET %d after the server ended the connections: status %d, err %v", i, status, err)
		}
	}
	for range 16 {
		wg.Go(func() { d.do(base, "GET", orgPath+"?_page=1&_page_size=5", nil) })
	}
	wg.Wait()
	end()
	for i := range 8 {
		if status, _, err := d.do(base, "POST", orgPath, map[string]any{"name": fmt.Sprintf("Ended Org %d", i)}); err != nil || status != http.StatusCreated {
			t.Errorf("POST %d after the server ended the connections: status %d, err %v", i, status, err)
		}
	}
}
