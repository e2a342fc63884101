package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"sync/atomic"
	"time"

	"accounts/internal/servetest"
	"accounts/internal/store/storetest"
)

// scenarioNames are the scenarios in the order they run and are shown.
var scenarioNames = []string{"ceiling", "get", "list", "patch", "create", "create-1", "create-4", "bulk", "disk"}

var scenarioDoc = map[string]string{
	"ceiling":  "GET /healthz: no credentials, no database; the no-op ceiling of this machine",
	"get":      "GET a protected identity by id, of 10,000 in one customer (authenticated, decrypted, audited)",
	"list":     "GET a page of 100 identities filtered by last_name__icontains, ordered by last_name, of 10,000",
	"patch":    "PATCH one field of one of the 10,000 identities (durable, audited)",
	"create":   "POST a protected identity of a fresh tenant, one customer (durable, audited; each a 201)",
	"create-1": "create with one client: the latency-bound figure that create must not fall below",
	"create-4": "create spread over four customers (client i writes to customer i mod 4)",
	"bulk":     "POST 1,000 tenants in one bulk write (one transaction)",
	"disk":     "no HTTP: single-row INSERT + COMMIT in a loop on one connection, the store's durability settings; the ceiling for one commit per request",
}

const (
	tenantPath   = "/accounts/users/customer/tenant/"
	piPath       = "/accounts/users/customer/protectedidentity/"
	registrySize = 10_000
	bulkItems    = 1_000
	listQuery    = "list/?last_name__icontains=berg&_order_by=last_name&_page=1&_page_size=100"
)

// serveLimitFlags turn off the admission limits the harness would meet:
// its clients are one API client per customer, far above 1,000 requests a
// second, with 32 lists or bulk writes of one customer at once. The
// process-wide limits stay at their defaults (256 requests in flight,
// 256 MiB of list memory).
var serveLimitFlags = []string{"--client-rate", "0", "--customer-lists", "0", "--customer-expensive", "0", "--max-expensive", "0"}

// surnames give one in ten identities a last name containing "berg", which
// the list scenario filters on.
var surnames = []string{"Lindqvist", "Berglund", "Nilsson", "Holm", "Sjöström", "Ek", "Dahl", "Falk", "Wikström", "Åberg"}

// customer is one customer of the deployment and its API client.
type customer struct {
	header http.Header
	// tenants are tenants that no identity refers to yet: each create takes
	// one, so that every create is a 201.
	tenants tenantPool
	// identities are the ids of its protected identities (the registry's).
	identities []string
}

// tenantPool hands out fresh tenants to concurrent clients.
type tenantPool struct {
	ids  []string
	next atomic.Int64
}

func (p *tenantPool) take() (string, bool) {
	i := p.next.Add(1) - 1
	if i >= int64(len(p.ids)) {
		return "", false
	}
	return p.ids[i], true
}

func (p *tenantPool) remaining() int { return max(len(p.ids)-int(p.next.Load()), 0) }

// bench is one engine's run: a deployment, its server and its customers,
// made when a scenario first needs them.
type bench struct {
	r        *runner
	s        settings
	engine   string
	database string // the SQLite file or the schema's URL
	d        *servetest.Deployment
	srv      *servetest.Server
	hc       *http.Client
	log      io.Writer

	registry, writer, bulker *customer
	spread                   []*customer
	seq                      atomic.Int64
	// rates are the create scenarios' last rates, to size their pools.
	rates map[string]float64
	// commit and commitNote are the disk scenario's, once it has begun.
	commit     committer
	commitNote string
}

// runEngine measures the scenarios on a fresh database of one engine.
func runEngine(s settings, db, engine string, p pinning, log io.Writer) (er engineRun, err error) {
	r := &runner{}
	defer r.close()
	defer catch(&err)
	b := startBench(r, s, db, engine, p, log)
	er = engineRun{Engine: engine, LoadBefore: loadAverage()}
	before := b.sampleCPU()
	// The scenarios take turns, a slice of each at a time, so that a
	// neighbour's burst on a shared machine falls on all of them alike.
	totals := map[string]*slice{}
	sliceTime := s.Duration / time.Duration(s.Slices)
	for i := range s.Slices {
		fmt.Fprintf(log, "bench: %s: slice %d of %d, load average %s\n", engine, i+1, s.Slices, loadAverage())
		for _, name := range s.Scenarios {
			if totals[name] == nil {
				totals[name] = &slice{win: window{errors: map[string]int{}}}
			}
			totals[name].add(b.slice(name, sliceTime))
		}
	}
	for _, name := range s.Scenarios {
		res := totals[name].result(name)
		fmt.Fprintf(log, "bench: %s %s: %.0f/s, p50 %.2f ms, p99 %.2f ms, errors %d, peak RSS %.0f MB\n",
			engine, name, res.RPS, res.P50ms, res.P99ms, res.errorCount(), res.PeakRSSMB)
		er.Results = append(er.Results, res)
	}
	er.LoadAfter = loadAverage()
	er.ForeignCores = servetest.ForeignCores(before, b.sampleCPU())
	if err := b.srv.Stop(); err != nil {
		return er, fmt.Errorf("serve did not exit cleanly: %v\n%s", err, b.srv.Log())
	}
	return er, nil
}

// startBench starts serve on a fresh database of one engine, its files and
// schema removed by r's cleanups.
func startBench(r *runner, s settings, db, engine string, p pinning, log io.Writer) *bench {
	b := &bench{r: r, s: s, engine: engine, hc: newHTTPClient(s.Clients), log: log}
	if engine == "sqlite" {
		b.database = filepath.Join(r.TempDir(), "accounts.db")
	} else {
		url, drop, err := storetest.NewSchema(db)
		if err != nil {
			r.Fatalf("postgres: %v", err)
		}
		r.Cleanup(func() {
			if err := drop(); err != nil {
				fmt.Fprintf(log, "bench: %v\n", err)
			}
		})
		b.database = url
	}
	b.d = servetest.NewDeployment(r, b.database)
	opts := []servetest.Option{servetest.DeploymentEnvOnly(), servetest.Inspectable(), servetest.Flags(append(slices.Clone(serveLimitFlags), s.ServeFlags...)...)}
	if len(p.server) > 0 {
		opts = append(opts, servetest.Prefix(p.server...))
	}
	b.srv = b.d.Start(opts...)
	return b
}

// sampleCPU samples the CPU time of the machine and of the run's own
// processes: the server, this one and, on PostgreSQL, the database's
// processes that work for them.
func (b *bench) sampleCPU() servetest.CPUSample {
	pids := []string{strconv.Itoa(b.srv.PID), strconv.Itoa(os.Getpid())}
	if b.engine == "postgres" {
		pids = append(pids, ownPostgres(pids...)...)
	}
	return servetest.SampleCPU(pids...)
}

// slice is one slice of a scenario: what was measured, by how many clients,
// the server's peak memory meanwhile (0 when no server took part) and a note.
type slice struct {
	win     window
	clients int
	peakMB  float64
	note    string
}

// add adds slice s to the scenario's slices so far, t.
func (t *slice) add(s slice) {
	t.win.elapsed += s.win.elapsed
	t.win.latencies = append(t.win.latencies, s.win.latencies...)
	for k, n := range s.win.errors {
		t.win.errors[k] += n
	}
	t.win.exhausted = t.win.exhausted || s.win.exhausted
	t.win.serverCPU += s.win.serverCPU
	t.clients, t.peakMB, t.note = s.clients, max(t.peakMB, s.peakMB), s.note
}

// result is the row of a scenario's slices, added up.
func (t *slice) result(name string) result {
	res := t.win.result(name, t.clients)
	res.PeakRSSMB, res.Note = t.peakMB, t.note
	switch {
	case name == "bulk":
		res.Note = fmt.Sprintf("%.0f tenants/s", res.RPS*bulkItems)
	case t.win.exhausted:
		res.Note = fmt.Sprintf("fresh tenants ran out: measured over %.1f s", res.Seconds)
	}
	return res
}

// slice runs one slice of a scenario.
func (b *bench) slice(name string, d time.Duration) slice {
	clients := b.s.Clients
	switch name {
	case "ceiling":
		return b.measure(clients, d, func(int) (*http.Request, int) {
			return b.request(nil, "GET", "/healthz", nil), http.StatusOK
		})
	case "get":
		c := b.registryCustomer()
		return b.measure(clients, d, func(int) (*http.Request, int) {
			id := c.identities[rand.IntN(len(c.identities))]
			return b.request(c, "GET", piPath+id+"/", nil), http.StatusOK
		})
	case "list":
		c := b.registryCustomer()
		b.checkList(c)
		return b.measure(clients, d, func(int) (*http.Request, int) {
			return b.request(c, "GET", piPath+listQuery, nil), http.StatusOK
		})
	case "patch":
		c := b.registryCustomer()
		return b.measure(clients, d, func(int) (*http.Request, int) {
			id := c.identities[rand.IntN(len(c.identities))]
			body := fmt.Sprintf(`{"first_name": "Ändrad%d"}`, b.seq.Add(1))
			return b.request(c, "PATCH", piPath+id+"/", []byte(body)), http.StatusOK
		})
	case "create":
		return b.creates(name, clients, []*customer{b.writerCustomer()}, d)
	case "create-1":
		return b.creates(name, 1, []*customer{b.writerCustomer()}, d)
	case "create-4":
		return b.creates(name, clients, b.spreadCustomers(), d)
	case "bulk":
		c := b.bulkCustomer()
		body := b.tenantBatch("Bulk", bulkItems)
		return b.measure(clients, d, func(int) (*http.Request, int) {
			return b.request(c, "POST", tenantPath+"list/", body), http.StatusCreated
		})
	case "disk":
		return b.disk(d)
	}
	panic("unknown scenario " + name)
}

// measure drives clients for a warm-up and then d, after resetting the
// server's peak memory, and reads it after.
func (b *bench) measure(clients int, d time.Duration, next nextRequest) slice {
	if err := b.srv.ResetPeakRSS(); err != nil {
		b.r.Fatalf("resetting the server's peak RSS: %v", err)
	}
	win := drive(b.hc, clients, b.s.Warmup, d, next, b.srv.CPUTime)
	return slice{win: win, clients: clients, peakMB: b.peakMB()}
}

// peakMB is the server's peak resident memory since it started or since
// its last ResetPeakRSS, in MB.
func (b *bench) peakMB() float64 {
	peak, err := b.srv.PeakRSS()
	if err != nil {
		b.r.Fatalf("reading the server's peak RSS: %v\n%s", err, b.srv.Log())
	}
	return float64(peak) / 1024
}

// creates drives creates of protected identities for a slice, each of a
// fresh tenant, client w writing to customer w mod len(cs). The pools of
// fresh tenants are topped up before each slice to half again what the last
// rate would take, the first rate coming from an unmeasured run.
func (b *bench) creates(name string, clients int, cs []*customer, d time.Duration) slice {
	next := func(w int) (*http.Request, int) {
		c := cs[w%len(cs)]
		tenant, ok := c.tenants.take()
		if !ok {
			return nil, 0
		}
		n := b.seq.Add(1)
		body := fmt.Sprintf(`{"tenant": {"id": %q}, "first_name": "Skapad%d", "last_name": "Benchsson", "email": "skapad%d@example.se", "ssn": %q}`,
			tenant, n, n, ssns[n%int64(len(ssns))])
		return b.request(c, "POST", piPath, []byte(body)), http.StatusCreated
	}
	topUp := func(rate float64) {
		want := int(rate*(b.s.Warmup+d).Seconds()*1.5)/len(cs) + 10*clients
		for _, c := range cs {
			b.addTenants(c, max(0, want-c.tenants.remaining()))
		}
	}
	if b.rates == nil {
		b.rates = map[string]float64{}
	}
	if _, ok := b.rates[name]; !ok {
		topUp(50 * float64(clients))
		win := drive(b.hc, clients, 0, max(b.s.Warmup, 500*time.Millisecond), next, nil)
		b.rates[name] = float64(len(win.latencies)) / max(win.elapsed.Seconds(), 0.001)
	}
	topUp(b.rates[name])
	sl := b.measure(clients, d, next)
	b.rates[name] = max(b.rates[name], float64(len(sl.win.latencies))/max(sl.win.elapsed.Seconds(), 0.001))
	return sl
}

// request makes a request with c's client headers (none for nil).
func (b *bench) request(c *customer, method, path string, body []byte) *http.Request {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequest(method, b.srv.Base+path, rd)
	if err != nil {
		panic(err) // the harness's own paths: never
	}
	if c != nil {
		req.Header = c.header.Clone()
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	return req
}

// newCustomer registers a customer and a read_write client with the command
// line.
func (b *bench) newCustomer(name string) *customer {
	c := &customer{header: http.Header{}}
	for k, v := range b.d.Client(b.d.Customer(name), "read_write") {
		c.header.Set(k, v)
	}
	return c
}

// bulkWrite sends one bulk write that must create every item, and returns
// the ids.
func (b *bench) bulkWrite(c *customer, path string, body []byte) []string {
	resp, err := b.hc.Do(b.request(c, "POST", path+"list/", body))
	if err != nil {
		b.r.Fatalf("seeding %s: %v", path, err)
	}
	defer resp.Body.Close()
	var created []struct{ ID string }
	if resp.StatusCode != http.StatusCreated || json.NewDecoder(resp.Body).Decode(&created) != nil {
		b.r.Fatalf("seeding %s: status %d", path, resp.StatusCode)
	}
	ids := make([]string, len(created))
	for i, o := range created {
		ids[i] = o.ID
	}
	return ids
}

// tenantBatch is the body of a bulk write of n tenants with synthetic names.
func (b *bench) tenantBatch(prefix string, n int) []byte {
	items := make([]map[string]any, n)
	for i := range items {
		items[i] = map[string]any{"first_name": fmt.Sprintf("%s%04d", prefix, i), "last_name": "Benchsson"}
	}
	body, _ := json.Marshal(items)
	return body
}

// addTenants adds n fresh tenants to c's pool, in bulk writes.
func (b *bench) addTenants(c *customer, n int) {
	for n > 0 {
		batch := min(n, bulkItems)
		c.tenants.ids = append(c.tenants.ids, b.bulkWrite(c, tenantPath, b.tenantBatch("Fresh", batch))...)
		n -= batch
	}
}

// registryCustomer is the customer with 10,000 protected identities, each
// of its own tenant, with synthetic names (one in ten last names containing
// "berg"), e-mail addresses and test identity numbers.
func (b *bench) registryCustomer() *customer {
	if b.registry != nil {
		return b.registry
	}
	start := time.Now()
	c := b.newCustomer("Bench Registry AB")
	b.addTenants(c, registrySize)
	for start := 0; start < registrySize; start += bulkItems {
		items := make([]map[string]any, 0, bulkItems)
		for i := start; i < start+bulkItems; i++ {
			tenant, _ := c.tenants.take()
			items = append(items, map[string]any{
				"tenant":     map[string]any{"id": tenant},
				"first_name": fmt.Sprintf("Förnamn%05d", i),
				"last_name":  fmt.Sprintf("%s%05d", surnames[i%len(surnames)], i),
				"email":      fmt.Sprintf("registry%05d@example.se", i),
				"ssn":        ssns[i%len(ssns)],
			})
		}
		body, _ := json.Marshal(items)
		c.identities = append(c.identities, b.bulkWrite(c, piPath, body)...)
	}
	fmt.Fprintf(b.log, "bench: %s: seeded %d tenants and protected identities in %.1f s\n", b.engine, registrySize, time.Since(start).Seconds())
	b.registry = c
	return c
}

// checkList makes sure the list scenario's page is what it should be: 100
// identities (and fills the server's object cache, as the warm-up would).
func (b *bench) checkList(c *customer) {
	resp, err := b.hc.Do(b.request(c, "GET", piPath+listQuery, nil))
	if err != nil {
		b.r.Fatalf("list: %v", err)
	}
	defer resp.Body.Close()
	var page []json.RawMessage
	if resp.StatusCode != http.StatusOK || json.NewDecoder(resp.Body).Decode(&page) != nil || len(page) != 100 {
		b.r.Fatalf("list: status %d, %d objects, want 200 and 100", resp.StatusCode, len(page))
	}
}

func (b *bench) writerCustomer() *customer {
	if b.writer == nil {
		b.writer = b.newCustomer("Bench Writer AB")
	}
	return b.writer
}

func (b *bench) spreadCustomers() []*customer {
	if b.spread == nil {
		for i := range 4 {
			b.spread = append(b.spread, b.newCustomer(fmt.Sprintf("Bench Spread %d AB", i+1)))
		}
	}
	return b.spread
}

func (b *bench) bulkCustomer() *customer {
	if b.bulker == nil {
		b.bulker = b.newCustomer("Bench Bulk AB")
	}
	return b.bulker
}

// testSSNs are the distinct canonical valid numbers of
// testdata/personnummer.json (Skatteverket's published test numbers): the
// only identity numbers the harness sends.
func testSSNs(root string) ([]string, error) {
	data, err := os.ReadFile(filepath.Join(root, "testdata", "personnummer.json"))
	if err != nil {
		return nil, err
	}
	var vectors struct{ Valid []struct{ Canonical string } }
	if err := json.Unmarshal(data, &vectors); err != nil {
		return nil, fmt.Errorf("testdata/personnummer.json: %v", err)
	}
	var ssns []string
	seen := map[string]bool{}
	for _, v := range vectors.Valid {
		if !seen[v.Canonical] {
			seen[v.Canonical] = true
			ssns = append(ssns, v.Canonical)
		}
	}
	if len(ssns) == 0 {
		return nil, fmt.Errorf("testdata/personnummer.json has no valid numbers")
	}
	return ssns, nil
}
