package main

import (
	"math"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

func TestQuantile(t *testing.T) {
	ms := func(ns ...int) []time.Duration {
		out := make([]time.Duration, len(ns))
		for i, n := range ns {
			out[i] = time.Duration(n) * time.Millisecond
		}
		return out
	}
	hundred := make([]time.Duration, 100)
	for i := range hundred {
		hundred[i] = time.Duration(i+1) * time.Millisecond
	}
	for _, c := range []struct {
		sorted []time.Duration
		q      float64
		want   time.Duration
	}{
		{nil, 0.5, 0},
		{ms(7), 0.99, 7 * time.Millisecond},
		{ms(1, 2, 3, 4), 0.5, 2 * time.Millisecond},
		{ms(1, 2, 3, 4, 5), 0.5, 3 * time.Millisecond},
		{hundred, 0.5, 50 * time.Millisecond},
		{hundred, 0.99, 99 * time.Millisecond},
		{hundred, 1, 100 * time.Millisecond},
	} {
		if got := quantile(c.sorted, c.q); got != c.want {
			t.Errorf("quantile(%v, %v) = %v, want %v", c.sorted, c.q, got, c.want)
		}
	}
}

func TestMedian(t *testing.T) {
	for _, c := range []struct {
		xs   []float64
		want float64
	}{{nil, 0}, {[]float64{3}, 3}, {[]float64{5, 1, 3}, 3}, {[]float64{4, 1, 3, 2}, 2.5}} {
		if got := median(c.xs); got != c.want {
			t.Errorf("median(%v) = %v, want %v", c.xs, got, c.want)
		}
	}
}

// A window's row: requests completed over the measured time, latencies by
// nearest rank, errors only when there are some.
func TestWindowResult(t *testing.T) {
	win := window{elapsed: 2 * time.Second, errors: map[string]int{}, serverCPU: 15 * time.Millisecond}
	for i := 1; i <= 100; i++ {
		win.latencies = append(win.latencies, time.Duration(101-i)*time.Millisecond)
	}
	r := win.result("get", 32)
	if r.Requests != 100 || r.RPS != 50 || r.P50ms != 50 || r.P99ms != 99 || r.Errors != nil || r.Clients != 32 || r.ServerCPUus != 150 {
		t.Errorf("result = %+v", r)
	}
}

func run1(engine string, rows ...result) engineRun { return engineRun{Engine: engine, Results: rows} }

func row(scenario string, rps, p99, rss float64) result {
	return result{Scenario: scenario, Clients: 32, Requests: 1000, RPS: rps, P99ms: p99, PeakRSSMB: rss}
}

// Medians take each column's median over the runs and sum the errors.
func TestMedians(t *testing.T) {
	runs := [][]engineRun{
		{run1("sqlite", result{Scenario: "get", RPS: 100, P99ms: 10, PeakRSSMB: 40, ServerCPUus: 90})},
		{run1("sqlite", result{Scenario: "get", RPS: 300, P99ms: 30, PeakRSSMB: 60, ServerCPUus: 70, Errors: map[string]int{"429": 2}})},
		{run1("sqlite", result{Scenario: "get", RPS: 200, P99ms: 20, PeakRSSMB: 50, ServerCPUus: 80, Errors: map[string]int{"429": 1, "transport": 1}})},
	}
	m := medians(runs)
	if len(m) != 1 || len(m[0].Results) != 1 {
		t.Fatalf("medians = %+v", m)
	}
	got := m[0].Results[0]
	if got.RPS != 200 || got.P99ms != 20 || got.PeakRSSMB != 50 || got.ServerCPUus != 80 || got.Errors["429"] != 3 || got.Errors["transport"] != 1 {
		t.Errorf("median row = %+v", got)
	}
}

func metricByKey(t *testing.T, ms []metric, key string) metric {
	t.Helper()
	for _, m := range ms {
		if m.Key == key {
			return m
		}
	}
	t.Fatalf("no metric %q in %+v", key, ms)
	return metric{}
}

// Every target is computed from the runs it has the scenarios for: per
// engine, PostgreSQL only, and PostgreSQL against SQLite.
func TestEvaluate(t *testing.T) {
	lite := run1("sqlite", row("ceiling", 10000, 1, 20), row("get", 3000, 40, 45), row("create", 1000, 60, 70),
		row("disk", 5000, 1, 0), row("list", 500, 45, 160))
	pg := run1("postgres", row("ceiling", 10000, 1, 20), row("get", 2400, 20, 30), row("create", 900, 40, 60),
		row("create-1", 1000, 2, 60), row("create-4", 1000, 30, 60), row("disk", 300, 2, 0), row("list", 600, 70, 100))
	lite.Results[0].ServerCPUus, lite.Results[2].ServerCPUus, lite.Results[4].ServerCPUus = 30, 360, 270
	ms := evaluate([][]engineRun{{lite, pg}}, 32)
	// The CPU guard needs both scenarios' CPU: PostgreSQL's rows have none.
	if m := metricByKey(t, ms, "sqlite create CPU/ceiling CPU"); m.Value != 12 || m.Met || !m.Guard || m.met() != "—" {
		t.Errorf("sqlite create CPU/ceiling CPU = %+v", m)
	}
	if m := metricByKey(t, ms, "sqlite list CPU/ceiling CPU"); m.Value != 9 || m.Met || !m.Guard {
		t.Errorf("sqlite list CPU/ceiling CPU = %+v", m)
	}
	for _, m := range ms {
		if m.Key == "postgres create CPU/ceiling CPU" {
			t.Errorf("a guard without CPU figures: %+v", m)
		}
	}
	for key, want := range map[string]struct {
		value float64
		met   bool
	}{
		"sqlite get/ceiling":       {0.3, false},
		"sqlite create/disk":       {0.2, false},
		"sqlite create p99 ms":     {60, false},
		"sqlite list p99 ms":       {45, true},
		"sqlite peak RSS MB":       {160, false},
		"postgres get/ceiling":     {0.24, false},
		"postgres create/disk":     {3, true},
		"postgres create p99 ms":   {40, true},
		"postgres create/create-4": {0.9, true},
		"postgres create/create-1": {0.9, false},
		"get postgres/sqlite":      {0.8, true},
		"postgres peak RSS MB":     {100, true},
	} {
		m := metricByKey(t, ms, key)
		if diff := m.Value - want.value; diff > 1e-9 || diff < -1e-9 || m.Met != want.met {
			t.Errorf("%s = %v (met %v), want %v (met %v)", key, m.Value, m.Met, want.value, want.met)
		}
	}
	// Without PostgreSQL, no PostgreSQL figure and no comparison.
	for _, m := range evaluate([][]engineRun{{lite}}, 32) {
		if strings.Contains(m.Key, "postgres") {
			t.Errorf("a SQLite-only run has %s", m.Key)
		}
	}
}

// The figure of several runs is their median; the spread is relative.
func TestEvaluateRuns(t *testing.T) {
	var runs [][]engineRun
	for _, get := range []float64{1000, 3000, 2000} {
		runs = append(runs, []engineRun{run1("sqlite", row("ceiling", 10000, 1, 20), row("get", get, 1, 20))})
	}
	m := metricByKey(t, evaluate(runs, 32), "sqlite get/ceiling")
	if m.Value != 0.2 || len(m.Runs) != 3 || math.Abs(m.spread()-1) > 1e-9 {
		t.Errorf("metric = %+v, spread %v", m, m.spread())
	}
}

// The check holds at-least figures to min(target, baseline) less the margin,
// at-most ones to max(target, baseline) plus the margin; a figure without a
// baseline is not checked.
func TestCheck(t *testing.T) {
	b := &baseline{Figures: map[string]figured{
		"a": {Value: 0.2, Margin: 0.25}, "b": {Value: 0.8, Margin: 0.25},
		"c": {Value: 400, Margin: 1}, "d": {Value: 100, Margin: 0.2},
	}}
	ms := []metric{
		// below target: held to baseline 0.2 less 25%: fails under 0.15
		{Key: "a", Kind: kindRatio, AtLeast: true, Target: 0.4, Value: 0.16},
		{Key: "a", Kind: kindRatio, AtLeast: true, Target: 0.4, Value: 0.14},
		// baseline above target: held to the target, 0.4 less 25%
		{Key: "b", Kind: kindRatio, AtLeast: true, Target: 0.4, Value: 0.31},
		{Key: "b", Kind: kindRatio, AtLeast: true, Target: 0.4, Value: 0.29},
		// latency over target: held to baseline 400 plus 100%
		{Key: "c", Kind: kindLatency, Target: 50, Value: 790},
		{Key: "c", Kind: kindLatency, Target: 50, Value: 810},
		// memory under target: held to the target 150 plus 20%
		{Key: "d", Kind: kindMemory, Target: 150, Value: 179},
		{Key: "d", Kind: kindMemory, Target: 150, Value: 181},
		{Key: "new", Kind: kindRatio, AtLeast: true, Target: 1, Value: 0},
		// a guard: held to its baseline 10 plus 20%, whatever its target
		{Key: "e", Kind: kindRatio, Guard: true, Value: 11.9},
		{Key: "e", Kind: kindRatio, Guard: true, Value: 12.1},
		// unchecked: never judged, even with a baseline it misses by far
		{Key: "a", Kind: kindRatio, AtLeast: true, Target: 3, Value: 0.01, Unchecked: "why"},
	}
	b.Figures["e"] = figured{Value: 10, Margin: 0.2}
	cs := b.check(ms)
	want := []bool{false, true, false, true, false, true, false, true, false, false, true, false}
	for i, c := range cs {
		if c.Regressed != want[i] {
			t.Errorf("%s = %v: regressed %v, want %v (limit %v)", c.Key, c.Value, c.Regressed, want[i], c.Limit)
		}
	}
	if cs[8].HasBaseline || cs[11].HasBaseline {
		t.Error("a figure without a baseline, or unchecked, is checked")
	}
	if n := regressions(cs); n != 5 {
		t.Errorf("regressions = %d, want 5", n)
	}
	out := checkMarkdown(&baseline{Figures: map[string]figured{"a": b.Figures["a"], "gone": {Value: 1}}},
		verdict{Checks: append(cs[:2:2], cs[9], cs[11]), Judged: []int{1}}, [][]engineRun{{{Engine: "sqlite", ForeignCores: 0.1}}}, settings{Clients: 32})
	for _, want := range []string{"| a | 0.16 | no | 0.20 | 25% | < 0.15 | ok |", "**REGRESSION**", "gone", "FAIL: 1 figure",
		"Run 1: other processes kept sqlite 0.10 CPUs busy: quiet", "| e | 11.9 | — | 10.0 | 20% | > 12.0 | ok |", "| a | 0.01 | no | — | — | — | not checked: why |"} {
		if !strings.Contains(out, want) {
			t.Errorf("check table lacks %q:\n%s", want, out)
		}
	}
}

// A written baseline holds every checked figure with its runs and margin,
// and the settings a check measures with; an unchecked figure stays out.
func TestWriteBaseline(t *testing.T) {
	path := filepath.Join(t.TempDir(), "baseline.json")
	rep := &report{
		Settings: settings{Clients: 32, Duration: 3 * time.Second, Warmup: 300 * time.Millisecond, Slices: 3, Scenarios: []string{"ceiling", "create"}, Runs: 2},
		Metrics: []metric{
			{Key: "sqlite create CPU/ceiling CPU", Kind: kindRatio, Guard: true, Value: 11, Runs: []float64{10, 12}},
			{Key: "sqlite create/disk", Kind: kindRatio, AtLeast: true, Target: 3, Value: 0.5, Runs: []float64{0.5, 0.5}, Unchecked: "why"},
		},
	}
	if err := writeBaselineFile(path, rep, 1); err != nil {
		t.Fatal(err)
	}
	b, err := readBaseline(path)
	if err != nil {
		t.Fatal(err)
	}
	guard, ok := b.Figures["sqlite create CPU/ceiling CPU"]
	if !ok || guard.Value != 11 || len(guard.Runs) != 2 || guard.Margin != 0.3 {
		t.Errorf("guard = %+v (present %v)", guard, ok)
	}
	if _, ok := b.Figures["sqlite create/disk"]; ok || len(b.Figures) != 1 {
		t.Errorf("figures = %+v: an unchecked figure was written", b.Figures)
	}
	if s := b.Settings; s.Scenarios != "ceiling,create" || s.Clients != 32 || s.Duration != "3s" || s.Slices != 3 || s.Runs != 1 || s.MeasuredRuns != 2 {
		t.Errorf("settings = %+v", s)
	}
}

// The check judges the runs that other processes left alone; when there are
// none, all of them, and a regression then is inconclusive, not a failure.
func TestJudge(t *testing.T) {
	b := &baseline{Figures: map[string]figured{"sqlite get/ceiling": {Value: 0.3, Margin: 0.3}}}
	run := func(get, foreign float64) []engineRun {
		return []engineRun{{Engine: "sqlite", ForeignCores: foreign, Results: []result{row("ceiling", 1000, 1, 20), row("get", get, 1, 20)}}}
	}
	v := b.judge([][]engineRun{run(100, 0.9), run(300, 0.1), run(290, 0)}, 32)
	if len(v.Judged) != 2 || v.Judged[0] != 2 || v.failed() || v.Inconclusive {
		t.Errorf("a disturbed bad run among quiet good ones: %+v", v)
	}
	v = b.judge([][]engineRun{run(100, 0.9), run(300, 0.1), run(100, 0)}, 32)
	if !v.failed() {
		t.Errorf("quiet runs that regressed (median 0.2 < 0.21) do not fail: %+v", v)
	}
	v = b.judge([][]engineRun{run(100, 0.9), run(120, 0.5)}, 32)
	if len(v.Judged) != 2 || !v.Inconclusive || v.failed() {
		t.Errorf("only disturbed runs that regressed: %+v", v)
	}
	if v = b.judge([][]engineRun{run(300, 0.9)}, 32); v.Inconclusive || v.failed() {
		t.Errorf("a disturbed run that did not regress: %+v", v)
	}
}

// A figure's margin is twice its runs' farthest harmful deviation from their
// median, at least its kind's floor, rounded up to 5%, under 90% for an
// at-least figure.
func TestMargin(t *testing.T) {
	for _, c := range []struct {
		m    metric
		want float64
	}{
		{metric{Kind: kindRatio, AtLeast: true, Value: 1, Runs: []float64{1}}, 0.3},
		{metric{Kind: kindRatio, AtLeast: true, Value: 1, Runs: []float64{0.84, 1, 3}}, 0.35},
		{metric{Kind: kindRatio, AtLeast: true, Value: 1, Runs: []float64{0.2, 1, 1}}, 0.9},
		{metric{Kind: kindLatency, Value: 100, Runs: []float64{10, 100, 120}}, 0.5},
		{metric{Kind: kindLatency, Value: 100, Runs: []float64{100, 100, 600}}, 10},
		{metric{Kind: kindMemory, Value: 100, Runs: []float64{100, 110}}, 0.2},
	} {
		if got := c.m.margin(1); math.Abs(got-c.want) > 1e-9 {
			t.Errorf("margin of %+v = %v, want %v", c.m, got, c.want)
		}
	}
}

// With groups, the margin comes from the medians of consecutive groups of
// runs: one wild run in a group of three does not widen it.
func TestMarginGroups(t *testing.T) {
	m := metric{Kind: kindRatio, AtLeast: true, Value: 1, Runs: []float64{1, 0.1, 1, 0.9, 1, 1.1, 0.95, 1, 1}}
	if got := m.margin(3); math.Abs(got-0.3) > 1e-9 {
		t.Errorf("margin(3) = %v, want the floor 0.3", got)
	}
	if got := m.margin(1); math.Abs(got-0.9) > 1e-9 {
		t.Errorf("margin(1) = %v, want 0.9", got)
	}
	if got := m.margin(5); math.Abs(got-0.9) > 1e-9 { // fewer than two groups: the runs
		t.Errorf("margin(5) = %v, want 0.9", got)
	}
}

func TestTable(t *testing.T) {
	got := table([]result{
		{Scenario: "get", Clients: 32, RPS: 2632.4, P50ms: 9.333, P99ms: 146.7, PeakRSSMB: 42.2, ServerCPUus: 92.43},
		{Scenario: "bulk", Clients: 32, RPS: 23, P50ms: 604, P99ms: 2121, PeakRSSMB: 190, ServerCPUus: 41234.4, Errors: map[string]int{"transport": 1, "503": 2}, Note: "23000 tenants/s"},
		{Scenario: "disk", Clients: 1, RPS: 7784, P50ms: 0.123, P99ms: 0.3, Note: "synchronous=FULL"},
	})
	want := `| scenario | clients | req/s | p50 ms | p99 ms | errors | server peak RSS MB | server CPU µs/req | note |
|---|---:|---:|---:|---:|---:|---:|---:|---|
| get | 32 | 2632 | 9.33 | 147 | 0 | 42 | 92.4 |  |
| bulk | 32 | 23.0 | 604 | 2121 | 3 (503: 2, transport: 1) | 190 | 41234 | 23000 tenants/s |
| disk | 1 | 7784 | 0.12 | 0.30 | 0 | — | — | synchronous=FULL |
`
	if got != want {
		t.Errorf("table:\n%s\nwant:\n%s", got, want)
	}
}

// drive counts what completes in the measured time at fixed concurrency,
// errors by status, and stops early when the work runs out.
func TestDrive(t *testing.T) {
	var n atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if n.Add(1)%10 == 0 {
			w.WriteHeader(http.StatusTooManyRequests)
		}
	}))
	defer srv.Close()
	hc := newHTTPClient(4)
	next := func(int) (*http.Request, int) {
		req, _ := http.NewRequest("GET", srv.URL, nil)
		return req, http.StatusOK
	}
	// The server's CPU clock is read when the measured time begins (1 s)
	// and when it ends (3 s): 2 s over the requests measured.
	var readings []time.Time
	clock := func() time.Duration {
		readings = append(readings, time.Now())
		return time.Duration(2*len(readings)-1) * time.Second
	}
	start := time.Now()
	win := drive(hc, 4, 50*time.Millisecond, 200*time.Millisecond, next, clock)
	r := win.result("x", 4)
	if r.Requests == 0 || r.Errors["429"] == 0 || len(r.Errors) != 1 || win.exhausted || r.Seconds < 0.19 || r.Seconds > 0.21 {
		t.Errorf("result %+v, exhausted %v", r, win.exhausted)
	}
	if len(readings) != 2 || readings[0].Sub(start) < 50*time.Millisecond || readings[1].Sub(start) < 250*time.Millisecond {
		t.Errorf("the server's CPU clock was read at %v after the start, want once at the end of the warm-up and once at the end", readings)
	} else if want := 2e6 / float64(r.Requests); math.Abs(r.ServerCPUus-want) > 1e-6 {
		t.Errorf("server CPU %v µs/req, want %v (2 s over %d requests)", r.ServerCPUus, want, r.Requests)
	}
	var left atomic.Int64
	left.Store(20)
	limited := func(w int) (*http.Request, int) {
		if left.Add(-1) < 0 {
			return nil, 0
		}
		return next(w)
	}
	win = drive(hc, 4, 0, 10*time.Second, limited, nil)
	if !win.exhausted || win.elapsed > 5*time.Second || len(win.latencies) > 20 {
		t.Errorf("with 20 requests of work: exhausted %v after %v, %d answers", win.exhausted, win.elapsed, len(win.latencies))
	}
}

// A scenario's slices add up to one row: answers over the time of all the
// slices, the highest peak memory, errors summed.
func TestSlicesAddUp(t *testing.T) {
	total := &slice{win: window{errors: map[string]int{}}}
	total.add(slice{win: window{elapsed: time.Second, latencies: []time.Duration{time.Millisecond, 3 * time.Millisecond}, serverCPU: 100 * time.Microsecond}, clients: 32, peakMB: 50})
	total.add(slice{win: window{elapsed: time.Second, latencies: []time.Duration{2 * time.Millisecond}, errors: map[string]int{"503": 1}, serverCPU: 200 * time.Microsecond}, clients: 32, peakMB: 40})
	r := total.result("get")
	if r.Requests != 3 || r.RPS != 1.5 || r.P50ms != 2 || r.PeakRSSMB != 50 || r.Errors["503"] != 1 || r.Note != "" || r.ServerCPUus != 100 {
		t.Errorf("result = %+v", r)
	}
	total.win.exhausted = true
	if r := total.result("create"); !strings.Contains(r.Note, "ran out") {
		t.Errorf("an exhausted create has the note %q", r.Note)
	}
}

// The ports of a process's TCP sockets are found from its descriptors.
func TestTCPPorts(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	port := strconv.Itoa(ln.Addr().(*net.TCPAddr).Port)
	if !tcpPorts([]string{strconv.Itoa(os.Getpid())})[port] {
		t.Errorf("port %s of this process's listener not found", port)
	}
	if tcpPorts([]string{"1"})[port] {
		t.Errorf("port %s found among process 1's sockets", port)
	}
}

// TestSpellNamesApart: the scale mode's names tell every identity apart, so
// that a lookup by a whole name matches exactly one.
func TestSpellNamesApart(t *testing.T) {
	seen := make(map[string]int, 1<<20)
	for i := range 1 << 20 {
		name := spell(i)
		if j, dup := seen[name]; dup {
			t.Fatalf("spell(%d) == spell(%d)", i, j)
		}
		seen[name] = i
	}
}

func TestScaleSizes(t *testing.T) {
	for _, tc := range []struct {
		list string
		want []int
	}{
		{"1000,100000,1000000", []int{1000, 100000, 1000000}},
		{"5000", []int{5000}},
		{"999", nil},
		{"1000,1000", nil},
		{"2000,1000", nil},
		{"1000,", nil},
		{"1e6", nil},
	} {
		got, ok := scaleSizes(tc.list)
		if ok != (tc.want != nil) || !slices.Equal(got, tc.want) {
			t.Errorf("scaleSizes(%q) = %v, %v; want %v", tc.list, got, ok, tc.want)
		}
	}
}
