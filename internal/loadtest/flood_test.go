package loadtest

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"accounts/internal/servetest"
)

// Sizes and durations of the flood.
const (
	floodRows    = 60_000
	floodWorkers = 24
	floodTime    = 15 * time.Second
	baselineTime = 3 * time.Second
	// probeP99 is the bound on the other customer's GET-by-id p99.
	probeP99 = 100 * time.Millisecond
	// requestLimit is serve's default request time limit
	// (config.DefaultRequestTimeout), and limitSlack what an answer may take
	// beyond it to be written and read.
	requestLimit = 30 * time.Second
	limitSlack   = 5 * time.Second
	// politePause is how long a polite flood client waits after a 429 or a
	// 503 before its next request; a hostile one does not wait.
	politePause = 100 * time.Millisecond
)

var digitWords = [10]string{"Zero", "One", "Two", "Three", "Four", "Five", "Six", "Seven", "Eight", "Nine"}

// spell writes n's last width digits as words: 372 → "ThreeSevenTwo".
func spell(n, width int) string {
	digits := fmt.Sprintf("%0*d", width, n)
	var b strings.Builder
	for _, c := range digits[len(digits)-width:] {
		b.WriteString(digitWords[c-'0'])
	}
	return b.String()
}

// floodNames are the synthetic names of the flooding customer's identities.
func floodNames(i int) (first, last string) {
	return "Floodie" + spell(i*37%1000, 3), "Flood" + spell(i, 5)
}

// floodKind is one kind of heavy list the flood sends. Every one of them
// reads and decrypts all of the customer's identities: none can be
// narrowed by the database.
type floodKind struct {
	name  string
	query func(term int) string
	// want checks a 200 body; nil when the kind must never be 200.
	want func(term int, objs []map[string]any) error
}

// floodTerms are the search terms, as numbers to spell: three digits for
// _search (180 to 280 matches), four for last_name__icontains (16), so
// that answers are small and the work is the server's, not this raced
// process's.
var floodTerms = []int{972, 118, 305, 640, 457, 889, 231, 766}

func floodKinds(searchHits, containsHits map[int]int) []floodKind {
	count := func(want map[int]int) func(int, []map[string]any) error {
		return func(term int, objs []map[string]any) error {
			if len(objs) != want[term] {
				return fmt.Errorf("%d objects, want %d", len(objs), want[term])
			}
			return everyHasID(objs)
		}
	}
	return []floodKind{
		{"search", func(term int) string { return "?_search=" + spell(term, 3) }, count(searchHits)},
		{"order_paged", func(int) string { return "?_order_by=last_name&_page=1&_page_size=100" },
			func(_ int, objs []map[string]any) error {
				if len(objs) != 100 {
					return fmt.Errorf("%d objects, want 100", len(objs))
				}
				return everyHasID(objs)
			}},
		// Past the sort cap: a 400 naming _order_by, unless refused first.
		{"order_unpaged", func(int) string { return "?_order_by=last_name" }, nil},
		{"icontains", func(term int) string { return "?last_name__icontains=" + strings.ToLower(spell(term, 4)) }, count(containsHits)},
	}
}

func everyHasID(objs []map[string]any) error {
	for _, o := range objs {
		if id, _ := o["id"].(string); id == "" {
			return fmt.Errorf("an object without id")
		}
	}
	return nil
}

// floodResult is what a flood client saw of one request.
type floodResult struct {
	kind   string
	status int
	// problem says why the answer is not a complete, allowed one; "" when
	// it is.
	problem string
	dur     time.Duration
}

// check judges one flood answer: a 200 parsed whole with the expected
// objects, a 400 naming _order_by (only for the unpaged order), or a 429 or
// 503 with the fixed body and a Retry-After.
func (k floodKind) check(term int, r response) string {
	if r.err != nil {
		// Not the *url.Error itself: its text would carry the query.
		err := r.err
		if ue, ok := err.(*url.Error); ok {
			err = ue.Err
		}
		return "not answered whole: " + err.Error()
	}
	switch r.status {
	case http.StatusOK:
		if k.want == nil {
			return "200 where a 400 was due"
		}
		var objs []map[string]any
		if err := json.Unmarshal(r.body, &objs); err != nil {
			return "200 body does not parse: " + err.Error()
		}
		if err := k.want(term, objs); err != nil {
			return "200 body: " + err.Error()
		}
	case http.StatusBadRequest:
		var fields map[string]any
		if err := json.Unmarshal(r.body, &fields); err != nil {
			return "400 body does not parse: " + err.Error()
		}
		if _, ok := fields["_order_by"]; k.want != nil || !ok || len(fields) != 1 {
			return "400 other than the sort cap's"
		}
	case http.StatusTooManyRequests, http.StatusServiceUnavailable:
		var body map[string]any
		if err := json.Unmarshal(r.body, &body); err != nil || body["detail"] == nil {
			return fmt.Sprintf("%d body is not the fixed refusal", r.status)
		}
		if secs, err := strconv.Atoi(r.header.Get("Retry-After")); err != nil || secs < 1 {
			return fmt.Sprintf("%d without a Retry-After of whole seconds", r.status)
		}
	default:
		return fmt.Sprintf("status %d", r.status)
	}
	return ""
}

// runFlood runs floodWorkers clients of the read client c, each sending the
// heavy kinds in turn until the phase ends, and returns what they saw once
// every request in progress has its answer. A polite client pauses after a
// refusal; a hostile one comes straight back.
func runFlood(c *apiClient, kinds []floodKind, until time.Time, polite bool) []floodResult {
	perWorker := make([][]floodResult, floodWorkers)
	var wg sync.WaitGroup
	for w := range floodWorkers {
		wg.Go(func() {
			for i := 0; time.Now().Before(until); i++ {
				k := kinds[(w+i)%len(kinds)]
				term := floodTerms[(w*7+i)%len(floodTerms)]
				r := c.do("GET", piPath+k.query(term), nil)
				perWorker[w] = append(perWorker[w], floodResult{kind: k.name, status: r.status, problem: k.check(term, r), dur: r.dur})
				refused := r.status == http.StatusTooManyRequests || r.status == http.StatusServiceUnavailable
				if polite && refused {
					time.Sleep(politePause)
				}
			}
		})
	}
	wg.Wait()
	var all []floodResult
	for _, rs := range perWorker {
		all = append(all, rs...)
	}
	return all
}

// seedFlood creates floodRows identities, each with its own tenant, by bulk
// writes of 1,000 from two writers at once (a nightly sync's shape), and
// returns how long it took.
func seedFlood(t *testing.T, c *apiClient) time.Duration {
	start := time.Now()
	const chunk = 1000
	chunks := make(chan int, floodRows/chunk)
	for i := 0; i < floodRows; i += chunk {
		chunks <- i
	}
	close(chunks)
	errs := make(chan error, 2)
	var wg sync.WaitGroup
	for range 2 {
		wg.Go(func() {
			for from := range chunks {
				if err := seedChunk(c, from, chunk); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("seeding: %v", err)
	}
	return time.Since(start)
}

func seedChunk(c *apiClient, from, n int) error {
	tenants := make([]map[string]any, n)
	for i := range tenants {
		tenants[i] = map[string]any{"first_name": "Floodtenant", "custom_id": strconv.Itoa(from + i)}
	}
	var created []struct{ ID string }
	if err := bulk(c, tenantPath, tenants, &created); err != nil {
		return fmt.Errorf("tenants from %d: %w", from, err)
	}
	if len(created) != n {
		return fmt.Errorf("tenants from %d: %d created, want %d", from, len(created), n)
	}
	identities := make([]map[string]any, n)
	for i := range identities {
		first, last := floodNames(from + i)
		identities[i] = map[string]any{"tenant": map[string]any{"id": created[i].ID}, "first_name": first, "last_name": last}
	}
	if err := bulk(c, piPath, identities, nil); err != nil {
		return fmt.Errorf("identities from %d: %w", from, err)
	}
	return nil
}

// bulk posts items to the resource's bulk route, coming back after a
// refusal as its Retry-After says.
func bulk(c *apiClient, path string, items []map[string]any, out any) error {
	body, err := json.Marshal(items)
	if err != nil {
		return err
	}
	for attempt := 0; ; attempt++ {
		r := c.do("POST", path+"list/", body)
		if r.err != nil {
			return r.err
		}
		if r.status == http.StatusTooManyRequests && attempt < 10 {
			secs, _ := strconv.Atoi(r.header.Get("Retry-After"))
			time.Sleep(time.Duration(max(secs, 1)) * time.Second)
			continue
		}
		if r.status != http.StatusCreated {
			return fmt.Errorf("status %d", r.status)
		}
		if out == nil {
			return nil
		}
		return json.Unmarshal(r.body, out)
	}
}

// expectedHits counts, for each term, the identities _search finds (first
// or last name) and those last_name__icontains finds, as the service
// compares: case-insensitively.
func expectedHits() (search, contains map[int]int) {
	search, contains = map[int]int{}, map[int]int{}
	for i := range floodRows {
		first, last := floodNames(i)
		first, last = strings.ToLower(first), strings.ToLower(last)
		for _, term := range floodTerms {
			s3, s4 := strings.ToLower(spell(term, 3)), strings.ToLower(spell(term, 4))
			if strings.Contains(first, s3) || strings.Contains(last, s3) {
				search[term]++
			}
			if strings.Contains(last, s4) {
				contains[term]++
			}
		}
	}
	return search, contains
}

// One customer floods the service with heavy lists — 24 clients at once,
// each list reading and decrypting all of its 60,000 protected identities —
// while another customer reads one identity by id over and over. The other
// customer's p99 stays under 100 ms, first against flooding clients that
// pause briefly after a refusal, then against hostile ones that come
// straight back; and every flood request gets a complete answer (200, the
// sort cap's 400, 429 or 503, with Retry-After on a refusal): none cut, none
// waiting past the request time limit. The flooding customer still has some
// of its heavy lists served.
//
// A phase whose p99 misses the bound is measured again (up to three times
// in all) only when other processes on the machine kept at least a quarter
// of a processor busy meanwhile; on a quiet machine a miss fails at once.
func TestFloodFairShare(t *testing.T) {
	d := servetest.NewSQLiteDeployment(t)
	custA := d.Customer("Flood A AB")
	writerA := d.Client(custA, "read_write")
	readerA := d.Client(custA, "read")
	custB := d.Customer("Probe B AB")
	writerB := d.Client(custB, "read_write")
	sp := startServe(d)
	pid := sp.PID

	seedTime := seedFlood(t, newAPIClient(sp.Base, writerA, 4))
	t.Logf("seeding: %d identities (and as many tenants) in %v", floodRows, seedTime.Round(time.Millisecond))

	b := newAPIClient(sp.Base, writerB, 4)
	var probeID string
	for i := range 5 {
		tenant := create(t, b, tenantPath, map[string]any{"first_name": "Probetenant", "custom_id": strconv.Itoa(i)})
		probeID = create(t, b, piPath, map[string]any{"tenant": map[string]any{"id": tenant}, "first_name": "Probeie", "last_name": "Probesson" + spell(i, 1)})
	}
	searchHits, containsHits := expectedHits()
	kinds := floodKinds(searchHits, containsHits)

	// Warm up (connections, the server's caches of keys and statements),
	// then measure the probe alone.
	probeFor(t, b, piPath, probeID, time.Second)
	before := sampleCPU(pid)
	baseline := probeFor(t, b, piPath, probeID, baselineTime)
	t.Logf("probe baseline: %v; other processes kept %.2f cores busy", baseline, servetest.ForeignCores(before, sampleCPU(pid)))

	rssBefore, err := sp.RSS()
	if err != nil {
		t.Fatal(err)
	}
	if err := sp.ResetPeakRSS(); err != nil {
		t.Fatalf("resetting peak memory: %v", err)
	}
	flood := newAPIClient(sp.Base, readerA, floodWorkers)
	for _, polite := range []bool{true, false} {
		name := map[bool]string{true: "polite", false: "hostile"}[polite]
		for attempt := 1; ; attempt++ {
			lat, results, foreign := floodPhase(t, sp, custB, flood, b, kinds, probeID, polite)
			p99 := lat.quantile(0.99)
			t.Logf("%s flood, attempt %d: probe %v; other processes kept %.2f cores busy", name, attempt, lat, foreign)
			checkFloodResults(t, name, results)
			if p99 < probeP99 {
				break
			}
			if !measureAgain(foreign, attempt) {
				t.Errorf("%s flood: the other customer's GET p99 is %v, want < %v (baseline p99 %v)", name, ms(p99), probeP99, ms(baseline.quantile(0.99)))
				break
			}
			t.Logf("%s flood: p99 %v missed %v: measuring again", name, ms(p99), probeP99)
		}
	}
	peak, err := sp.PeakRSS()
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("serve memory: VmRSS %d MiB before the flood, peak (VmHWM) %d MiB during it", rssBefore>>10, peak>>10)
	byMsg, byReason := sp.logSummary()
	t.Logf("serve log: %d requests complete, %d aborted, %d failed; refusals by reason %v",
		byMsg["request"], byMsg["request aborted"], byMsg["request failed"], byReason)
	if byMsg["request aborted"] > 0 || byMsg["request failed"] > 0 || byMsg["panic recovered"] > 0 {
		t.Errorf("serve logged %d aborted responses, %d failed requests and %d panics; want none",
			byMsg["request aborted"], byMsg["request failed"], byMsg["panic recovered"])
	}
}

// floodPhase floods for floodTime while probing with the other customer's
// client, and returns the probe's latencies, what the flood saw once every
// request of it has its answer, and how many cores other processes kept
// busy meanwhile.
func floodPhase(t *testing.T, sp *serveProc, probeCustomer string, flood, b *apiClient, kinds []floodKind, probeID string, polite bool) (latencies, []floodResult, float64) {
	pid := sp.PID
	until := time.Now().Add(floodTime)
	var results []floodResult
	floodDone := make(chan struct{})
	go func() {
		results = runFlood(flood, kinds, until, polite)
		close(floodDone)
	}()
	// Let the flood reach its stride before measuring.
	time.Sleep(time.Second)
	before := sampleCPU(pid)
	probing := time.Now()
	lat := probeFor(t, b, piPath, probeID, time.Until(until))
	foreign := servetest.ForeignCores(before, sampleCPU(pid))
	<-floodDone
	t.Logf("%d flood requests; the last answered %v after the flood's end", len(results), time.Since(until).Round(time.Millisecond))
	t.Logf("the probe's requests as the server timed them: %v", sp.serverLatencies(probeCustomer, probing, time.Now()))
	return lat, results, foreign
}

// checkFloodResults asserts that every flood answer was complete and
// allowed and came within the time limit, and logs counts by kind and
// status.
func checkFloodResults(t *testing.T, phase string, results []floodResult) {
	t.Helper()
	counts := map[string]map[int]int{}
	longest := map[string]time.Duration{}
	problems := map[string]int{}
	for _, r := range results {
		if counts[r.kind] == nil {
			counts[r.kind] = map[int]int{}
		}
		counts[r.kind][r.status]++
		longest[r.kind] = max(longest[r.kind], r.dur)
		if r.problem != "" {
			problems[r.kind+": "+r.problem]++
		}
		if r.dur > requestLimit+limitSlack {
			problems[fmt.Sprintf("%s: took longer than %v", r.kind, requestLimit+limitSlack)]++
		}
	}
	for _, k := range []string{"search", "order_paged", "order_unpaged", "icontains"} {
		t.Logf("%s flood: %-13s statuses %v, longest %v", phase, k, counts[k], ms(longest[k]))
	}
	for p, n := range problems {
		t.Errorf("%s flood: %d requests: %s", phase, n, p)
	}
	// The flooding customer still gets its share: its heavy lists are
	// refused beyond it, not all of them.
	if served := counts["search"][http.StatusOK] + counts["order_paged"][http.StatusOK] + counts["icontains"][http.StatusOK]; served == 0 {
		t.Errorf("%s flood: none of the flooding customer's heavy lists was served", phase)
	}
}
