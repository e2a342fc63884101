package cli

import (
	"bufio"
	"database/sql"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"accounts/internal/config"
	"accounts/internal/keystore"
	"accounts/internal/seal"
)

// cliServer is an `accounts serve` process.
type cliServer struct {
	base string
	pid  int
	stop func()
}

// cliStartServe starts the accounts binary's serve on a free loopback
// port with only the given ACCOUNTS_ variables, and stops it (SIGTERM,
// then a kill) when the test ends or stop is called. Each of adjust may
// change the command before it starts (its arguments, its user).
func cliStartServe(t *testing.T, bin string, vars map[string]string, adjust ...func(*exec.Cmd)) *cliServer {
	t.Helper()
	cmd := exec.Command(bin, "serve", "--addr", "127.0.0.1:0")
	cmd.Env = cliEnvWith(vars)
	for _, f := range adjust {
		f(cmd)
	}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	addrCh := make(chan string, 1)
	exited := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
		for sc.Scan() {
			var l cliLogLine
			if json.Unmarshal(sc.Bytes(), &l) == nil && l.Msg == "listening" && l.Addr != "" {
				select {
				case addrCh <- l.Addr:
				default:
				}
			}
		}
		io.Copy(io.Discard, stderr)
		cmd.Wait()
		close(exited)
	}()
	stop := sync.OnceFunc(func() {
		cmd.Process.Signal(os.Interrupt)
		select {
		case <-exited:
		case <-time.After(20 * time.Second):
			cmd.Process.Kill()
			<-exited
		}
	})
	t.Cleanup(stop)
	select {
	case addr := <-addrCh:
		return &cliServer{base: "http://" + addr, pid: cmd.Process.Pid, stop: stop}
	case <-exited:
		t.Fatalf("serve exited before listening")
	case <-time.After(30 * time.Second):
		t.Fatalf("serve logged no listening line")
	}
	return nil
}

// cliDo sends a request as the client and returns the status and the
// decoded object; it never fails the test, so goroutines may use it.
func cliDo(base string, cl cliClient, method, path, body string) (int, map[string]any) {
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, base+path, rd)
	if err != nil {
		return 0, nil
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	for k, v := range cl.Headers {
		req.Header.Set(k, v)
	}
	resp, err := (&http.Client{Timeout: 20 * time.Second}).Do(req)
	if err != nil {
		return 0, nil
	}
	defer resp.Body.Close()
	var obj map[string]any
	json.NewDecoder(resp.Body).Decode(&obj)
	return resp.StatusCode, obj
}

func cliStatus(base, path string) int {
	resp, err := (&http.Client{Timeout: 20 * time.Second}).Get(base + path)
	if err != nil {
		return 0
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

const cliAddressBody = `{"street": "Rotationsgatan", "postal_code": "111 22", "city": "Stockholm", "country": "Sverige"}`

// The README's master key rotation on SQLite, run as written against two
// serve processes that use the generated key file: one command, with the
// servers up. Every request before, during and after it succeeds — also
// for a customer a server meets only after the rotation — the servers stay
// ready, a customer made afterwards works on both, and the old key opens
// nothing any more.
func TestKeysRotateMasterWhileServingSQLite(t *testing.T) {
	bin := cliBuild(t)
	db := filepath.Join(t.TempDir(), "accounts.db")
	admin := &cliEnv{t: t, vars: map[string]string{config.EnvDatabase: db}}
	customers := map[string]cliClient{}
	for _, name := range []string{"A", "B"} {
		cu := admin.customer("Rotation " + name + " AB")
		var cl cliClient
		admin.runJSON(&cl, "client", "create", "--customer", cu.ID, "--json")
		customers[name] = cl
	}
	vars := map[string]string{config.EnvDatabase: db}
	s1, s2 := cliStartServe(t, bin, vars), cliStartServe(t, bin, vars)

	// A is known to both servers; B only to the first, until after the rotation.
	addresses := map[string]string{}
	for _, name := range []string{"A", "B"} {
		status, obj := cliDo(s1.base, customers[name], "POST", "/common/address/", cliAddressBody)
		if status != http.StatusCreated {
			t.Fatalf("creating %s's address: status %d", name, status)
		}
		addresses[name] = "/common/address/" + obj["id"].(string) + "/"
	}
	if status, _ := cliDo(s2.base, customers["A"], "GET", addresses["A"], ""); status != http.StatusOK {
		t.Fatalf("A's address on the second server: status %d", status)
	}
	oldKey, err := os.ReadFile(db + ".key")
	if err != nil {
		t.Fatal(err)
	}

	// Requests go on while the key rotates.
	var failures, requests atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for _, s := range []*cliServer{s1, s2} {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				check := func(ok bool) {
					requests.Add(1)
					if !ok {
						failures.Add(1)
					}
				}
				status, _ := cliDo(s.base, customers["A"], "GET", addresses["A"], "")
				check(status == http.StatusOK)
				status, _ = cliDo(s.base, customers["A"], "POST", "/common/address/", cliAddressBody)
				check(status == http.StatusCreated)
				check(cliStatus(s.base, "/readyz") == http.StatusOK)
			}
		})
	}

	newKey := seal.GenerateMasterKey()
	newFile := filepath.Join(t.TempDir(), "new.key")
	if err := os.WriteFile(newFile, []byte(newKey+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	time.Sleep(500 * time.Millisecond)
	if _, _, err := admin.run("keys", "rotate-master", "--new-key-file", newFile); err != nil {
		t.Fatalf("keys rotate-master: %v", err)
	}
	time.Sleep(3 * time.Second)

	// B, met by the second server only now.
	if status, _ := cliDo(s2.base, customers["B"], "GET", addresses["B"], ""); status != http.StatusOK {
		t.Errorf("B's address on the second server after the rotation: status %d, want 200", status)
	}
	for _, name := range []string{"A", "B"} {
		for i, s := range []*cliServer{s1, s2} {
			if status, _ := cliDo(s.base, customers[name], "POST", "/common/address/", cliAddressBody); status != http.StatusCreated {
				t.Errorf("creating for %s on server %d after the rotation: status %d", name, i+1, status)
			}
		}
	}
	close(stop)
	wg.Wait()
	if n := failures.Load(); n > 0 {
		t.Errorf("%d of %d requests during the rotation failed", n, requests.Load())
	}

	if held, err := os.ReadFile(db + ".key"); err != nil || strings.TrimSpace(string(held)) != newKey {
		t.Errorf("the key file does not hold the new key alone (err %v)", err)
	}
	// A customer made afterwards, with the key file as it is now.
	c := admin.customer("Rotation C AB")
	var cl cliClient
	admin.runJSON(&cl, "client", "create", "--customer", c.ID, "--json")
	for i, s := range []*cliServer{s1, s2} {
		if status, _ := cliDo(s.base, cl, "POST", "/common/address/", cliAddressBody); status != http.StatusCreated {
			t.Errorf("a customer made after the rotation, on server %d: status %d", i+1, status)
		}
	}
	// The data keys rotate too, and a restarted server reads everything.
	// (Lookups during a data key rotation: TestKeysRotateDataWhileServing.)
	admin.vars[config.EnvKeySettle] = "0s"
	if _, _, err := admin.run("keys", "rotate-data"); err != nil {
		t.Errorf("keys rotate-data after the rotation: %v", err)
	}
	s2.stop()
	s3 := cliStartServe(t, bin, vars)
	for _, name := range []string{"A", "B"} {
		if status, _ := cliDo(s3.base, customers[name], "GET", addresses[name], ""); status != http.StatusOK {
			t.Errorf("%s's address on a restarted server: status %d", name, status)
		}
	}

	old, err := seal.ParseMasterKey(string(oldKey))
	if err != nil {
		t.Fatal(err)
	}
	ks, err := keystore.Open(t.Context(), db+".keys")
	if err != nil {
		t.Fatal(err)
	}
	defer ks.Close()
	all, err := ks.All(t.Context())
	if err != nil || len(all) == 0 {
		t.Fatalf("key store: %d keys (err %v)", len(all), err)
	}
	for _, w := range all {
		if _, err := old.Rewrap(w, old); err == nil {
			t.Errorf("the old master key still opens a key of customer %s", w.CustomerID)
		}
	}
}

// cliLookup lists tenants by a query and reports whether the answer (a
// 200) holds the tenant id.
func cliLookup(base string, cl cliClient, query, id string) bool {
	req, err := http.NewRequest("GET", base+"/accounts/users/customer/tenant/list/?"+query, nil)
	if err != nil {
		return false
	}
	for k, v := range cl.Headers {
		req.Header.Set(k, v)
	}
	resp, err := (&http.Client{Timeout: 20 * time.Second}).Do(req)
	if err != nil {
		return false
	}
	defer resp.Body.Close()
	var objs []struct{ ID string }
	if resp.StatusCode != http.StatusOK || json.NewDecoder(resp.Body).Decode(&objs) != nil {
		return false
	}
	for _, o := range objs {
		if o.ID == id {
			return true
		}
	}
	return false
}

// A data key rotation under a running server that keeps looking rows up by
// their personal fields: rows are re-indexed under a new index key, which
// the server, holding its keys from before, loads only when its key cache
// expires. rotate-data gives the new index key first and waits (--settle,
// by default longer than that cache) before any row is indexed under it,
// so every lookup before, during and after the rotation finds its row, by
// exact value (blind index and search tokens) and by substring. The server
// keeps writing too, and its rows end under the new data key: rotate-data
// waits again, once the data key is given, for the server to seal under it
// before it re-seals (it re-sealed at once, and said it was done while the
// server went on sealing under the old key for up to a minute).
func TestKeysRotateDataWhileServing(t *testing.T) {
	bin := cliBuild(t)
	db := filepath.Join(t.TempDir(), "accounts.db")
	admin := &cliEnv{t: t, vars: map[string]string{config.EnvDatabase: db}}
	cu := admin.customer("Rotation D AB")
	var cl cliClient
	admin.runJSON(&cl, "client", "create", "--customer", cu.ID, "--json")
	s1 := cliStartServe(t, bin, map[string]string{config.EnvDatabase: db})

	const n = 30
	ids := make([]string, n)
	for i := range ids {
		body := fmt.Sprintf(`{"first_name": "Rotera", "last_name": "Rotationsson%c%c", "email": "rotera%d@example.se"}`, 'a'+i/26, 'a'+i%26, i)
		status, obj := cliDo(s1.base, cl, "POST", "/accounts/users/customer/tenant/", body)
		if status != http.StatusCreated {
			t.Fatalf("creating tenant %d: status %d", i, status)
		}
		ids[i] = obj["id"].(string)
	}
	lookups := func(i int) []string {
		suffix := fmt.Sprintf("%c%c", 'a'+i/26, 'a'+i%26)
		return []string{
			"last_name=Rotationsson" + suffix,
			"last_name__icontains=SSON" + suffix,
			fmt.Sprintf("email=rotera%d@example.se", i),
		}
	}
	for i := range ids {
		for _, q := range lookups(i) {
			if !cliLookup(s1.base, cl, q, ids[i]) {
				t.Fatalf("before the rotation, tenant %d is not found by %s", i, strings.SplitN(q, "=", 2)[0])
			}
		}
	}

	var failures, made atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			case <-time.After(20 * time.Millisecond):
			}
			for _, q := range lookups(i % n) {
				made.Add(1)
				if !cliLookup(s1.base, cl, q, ids[i%n]) {
					failures.Add(1)
				}
			}
			if status, _ := cliDo(s1.base, cl, "POST", "/accounts/users/customer/tenant/", `{"first_name": "Rotera", "last_name": "Under"}`); status != http.StatusCreated {
				failures.Add(1)
			}
		}
	})
	start := time.Now()
	_, stderr, err := admin.run("keys", "rotate-data")
	took := time.Since(start)
	// What the server writes once the rotation is done is sealed under
	// the new key too.
	time.Sleep(2 * time.Second)
	close(stop)
	wg.Wait()
	if err != nil {
		t.Fatalf("keys rotate-data: %v", err)
	}
	if !strings.Contains(stderr, "waiting") || took < 2*seal.KeyCacheTTL {
		t.Errorf("rotate-data did not wait for the servers to load the new index key, then the data key (took %s)", took.Round(time.Second))
	}
	if f := failures.Load(); f > 0 {
		t.Errorf("%d of %d lookups and creates during the rotation failed", f, made.Load())
	}
	raw, err := sql.Open("sqlite", db)
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	rows, err := raw.Query("SELECT sealed FROM tenants")
	if err != nil {
		t.Fatal(err)
	}
	versions := map[int]int{}
	for rows.Next() {
		var sealed []byte
		if err := rows.Scan(&sealed); err != nil {
			t.Fatal(err)
		}
		v, _ := seal.Version(sealed)
		versions[v]++
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	if len(versions) != 1 {
		t.Errorf("after rotate-data said it was done, the tenants are sealed under several data key versions (version: rows): %v", versions)
	}
	for i := range ids {
		for _, q := range lookups(i) {
			if !cliLookup(s1.base, cl, q, ids[i]) {
				t.Errorf("after the rotation, tenant %d is not found by %s", i, strings.SplitN(q, "=", 2)[0])
			}
		}
	}
}
