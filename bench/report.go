package main

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"time"
)

// result is one scenario's row.
type result struct {
	Scenario string  `json:"scenario"`
	Clients  int     `json:"clients"`
	Requests int     `json:"requests"`
	Seconds  float64 `json:"seconds"`
	RPS      float64 `json:"rps"`
	P50ms    float64 `json:"p50_ms"`
	P99ms    float64 `json:"p99_ms"`
	// Errors counts answers other than the expected status, by status
	// ("429"), and requests without a whole answer ("transport").
	Errors map[string]int `json:"errors,omitempty"`
	// PeakRSSMB is the server's peak resident memory (VmHWM) during the
	// scenario's slices, warm-ups included, reset before each to what the
	// server then held; 0 for disk, which has no server.
	PeakRSSMB float64 `json:"peak_rss_mb,omitempty"`
	// ServerCPUus is the server's CPU time (user and system, all threads)
	// over the measured time per request completed in it, in µs; 0 for
	// disk. With serve pinned to one CPU it bounds the rate:
	// req/s ≤ 1e6 / ServerCPUus, so it tells a CPU-bound scenario from one
	// that waits.
	ServerCPUus float64 `json:"server_cpu_us_per_req,omitempty"`
	Note        string  `json:"note,omitempty"`
}

func (r result) errorCount() int {
	n := 0
	for _, c := range r.Errors {
		n += c
	}
	return n
}

// engineRun is one run of the scenarios on one engine.
type engineRun struct {
	Engine     string `json:"engine"`
	LoadBefore string `json:"load_before"`
	LoadAfter  string `json:"load_after"`
	// ForeignCores is how many processors other processes than the run's
	// own kept busy on average during the scenarios.
	ForeignCores float64  `json:"foreign_cores"`
	Results      []result `json:"results"`
}

func (er engineRun) find(scenario string) (result, bool) {
	for _, r := range er.Results {
		if r.Scenario == scenario {
			return r, true
		}
	}
	return result{}, false
}

// report is everything a harness invocation measured.
type report struct {
	Machine  machine  `json:"machine"`
	Settings settings `json:"settings"`
	// Runs holds every run; Runs[i] has one engineRun per engine, in the
	// order of --database.
	Runs [][]engineRun `json:"runs"`
	// Medians are per engine the median of each column over the runs
	// (errors: summed over the runs).
	Medians []engineRun `json:"medians"`
	// Metrics are the targets' figures: per run, then the median.
	Metrics []metric `json:"metrics"`
	// Check holds the metrics to the baseline (with --check).
	Check   *verdict `json:"check,omitempty"`
	Elapsed string   `json:"elapsed"`

	started time.Time
	pinning pinning
}

// ssns are the identity numbers the harness sends (testSSNs).
var ssns []string

// newReport describes the machine and pins this process (see pin).
func newReport(s settings, log io.Writer) (*report, error) {
	root, err := moduleRoot()
	if err != nil {
		return nil, err
	}
	if ssns, err = testSSNs(root); err != nil {
		return nil, err
	}
	rep := &report{Settings: s, Machine: describeMachine(os.TempDir()), started: time.Now()}
	rep.pinning = pin(s.Pin)
	rep.Machine.Pinning = rep.pinning.desc
	fmt.Fprintf(log, "bench: pinning: %s\n", rep.pinning.desc)
	return rep, nil
}

// measure runs everything runs times more (each engine once per run, in
// turn) and sums the report up again.
func (rep *report) measure(runs int, log io.Writer) error {
	s := rep.Settings
	for range runs {
		var run []engineRun
		for i, db := range s.Databases {
			fmt.Fprintf(log, "bench: run %d, %s, load average %s\n", len(rep.Runs)+1, s.Engines[i], loadAverage())
			er, err := runEngine(s, db, s.Engines[i], rep.pinning, log)
			if err != nil {
				return fmt.Errorf("%s: %w", s.Engines[i], err)
			}
			run = append(run, er)
		}
		rep.Runs = append(rep.Runs, run)
	}
	rep.Settings.Runs = len(rep.Runs)
	rep.Medians = medians(rep.Runs)
	rep.Metrics = evaluate(rep.Runs, s.Clients)
	rep.Elapsed = time.Since(rep.started).Round(time.Second).String()
	return nil
}

// failedRequests lists the scenarios of any run with requests not answered
// as expected ("sqlite get: 3 (503: 3)"); "" when there are none.
func (rep *report) failedRequests() string {
	var failed []string
	for _, er := range rep.Medians {
		for _, r := range er.Results {
			if r.errorCount() > 0 {
				failed = append(failed, fmt.Sprintf("%s %s: %s", er.Engine, r.Scenario, errorsCell(r.Errors)))
			}
		}
	}
	return strings.Join(failed, "; ")
}

// moduleRoot is the directory of the module's go.mod, at or above the
// working directory.
func moduleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if data, err := os.ReadFile(filepath.Join(dir, "go.mod")); err == nil && strings.HasPrefix(string(data), "module accounts\n") {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("run bench inside the accounts module (go run ./bench)")
		}
		dir = parent
	}
}

// median is the middle value (the mean of the two middle ones for an even
// count); 0 for none.
func median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// medians folds the runs into one engineRun per engine: each column's
// median, errors summed, load averages of the first and last run, the
// median of the foreign load.
func medians(runs [][]engineRun) []engineRun {
	if len(runs) == 0 {
		return nil
	}
	var out []engineRun
	for e, first := range runs[0] {
		m := engineRun{Engine: first.Engine, LoadBefore: first.LoadBefore, LoadAfter: runs[len(runs)-1][e].LoadAfter}
		var foreign []float64
		for _, run := range runs {
			foreign = append(foreign, run[e].ForeignCores)
		}
		m.ForeignCores = median(foreign)
		for _, r0 := range first.Results {
			var rps, p50, p99, rss, secs, reqs, cpu []float64
			row := result{Scenario: r0.Scenario, Clients: r0.Clients, Note: r0.Note}
			for _, run := range runs {
				r, ok := run[e].find(r0.Scenario)
				if !ok {
					continue
				}
				rps, p50, p99 = append(rps, r.RPS), append(p50, r.P50ms), append(p99, r.P99ms)
				rss, secs, reqs = append(rss, r.PeakRSSMB), append(secs, r.Seconds), append(reqs, float64(r.Requests))
				cpu = append(cpu, r.ServerCPUus)
				for k, v := range r.Errors {
					if row.Errors == nil {
						row.Errors = map[string]int{}
					}
					row.Errors[k] += v
				}
			}
			row.RPS, row.P50ms, row.P99ms = median(rps), median(p50), median(p99)
			row.PeakRSSMB, row.Seconds, row.Requests = median(rss), median(secs), int(median(reqs))
			row.ServerCPUus = median(cpu)
			if r0.Scenario == "bulk" {
				row.Note = fmt.Sprintf("%.0f tenants/s", row.RPS*bulkItems)
			}
			m.Results = append(m.Results, row)
		}
		out = append(out, m)
	}
	return out
}

// markdown renders the report: per engine its table, then the targets.
func (rep *report) markdown() string {
	var b strings.Builder
	s := rep.Settings
	runs := "one run"
	if s.Runs > 1 {
		runs = fmt.Sprintf("median of %d runs (errors: total)", s.Runs)
	}
	fmt.Fprintf(&b, "Machine: %d CPUs (%s), %s, %s, Go %s; disk %s.\n", rep.Machine.CPUs, rep.Machine.CPU, rep.Machine.Memory, rep.Machine.Kernel, strings.TrimPrefix(rep.Machine.Go, "go"), rep.Machine.Disk)
	fmt.Fprintf(&b, "Pinning: %s.\n", rep.Machine.Pinning)
	fmt.Fprintf(&b, "Server limits: %s (the rest at their defaults).\n", strings.Join(append(slices.Clone(serveLimitFlags), s.ServeFlags...), " "))
	fmt.Fprintf(&b, "Each scenario: %d clients (create-1: one) for %s in %d slices, each after %s of warm-up, the scenarios taking turns; %s. Took %s.\n",
		s.Clients, s.Duration, s.Slices, s.Warmup, runs, rep.Elapsed)
	for _, er := range rep.Medians {
		fmt.Fprintf(&b, "\n### %s\n\n", er.Engine)
		b.WriteString(table(er.Results))
		fmt.Fprintf(&b, "\nLoad average (1, 5, 15 min) before: %s; after: %s. Other processes kept %.2f CPUs busy on average.\n", er.LoadBefore, er.LoadAfter, er.ForeignCores)
	}
	if len(rep.Metrics) > 0 {
		b.WriteString("\n### Targets (issue 10)\n\n")
		b.WriteString(metricsTable(rep.Metrics, s.Runs))
	}
	return b.String()
}

// table renders results as a Markdown table.
func table(results []result) string {
	var b strings.Builder
	b.WriteString("| scenario | clients | req/s | p50 ms | p99 ms | errors | server peak RSS MB | server CPU µs/req | note |\n")
	b.WriteString("|---|---:|---:|---:|---:|---:|---:|---:|---|\n")
	for _, r := range results {
		rss, cpu := "—", "—"
		if r.PeakRSSMB > 0 {
			rss = fmt.Sprintf("%.0f", r.PeakRSSMB)
		}
		if r.ServerCPUus > 0 {
			cpu = figure(r.ServerCPUus)
		}
		fmt.Fprintf(&b, "| %s | %d | %s | %s | %s | %s | %s | %s | %s |\n",
			r.Scenario, r.Clients, figure(r.RPS), figure(r.P50ms), figure(r.P99ms), errorsCell(r.Errors), rss, cpu, r.Note)
	}
	return b.String()
}

// figure shows a number with three significant figures at most, whole
// from 100 up: a rate, a latency in milliseconds, a ratio.
func figure(v float64) string {
	switch {
	case v >= 100:
		return fmt.Sprintf("%.0f", v)
	case v >= 10:
		return fmt.Sprintf("%.1f", v)
	}
	return fmt.Sprintf("%.2f", v)
}

// errorsCell is "0", or the total and its kinds: "12 (429: 10, transport: 2)".
func errorsCell(errs map[string]int) string {
	total := 0
	kinds := make([]string, 0, len(errs))
	for k, n := range errs {
		total += n
		kinds = append(kinds, k)
	}
	if total == 0 {
		return "0"
	}
	sort.Strings(kinds)
	parts := make([]string, len(kinds))
	for i, k := range kinds {
		parts[i] = fmt.Sprintf("%s: %d", k, errs[k])
	}
	return fmt.Sprintf("%d (%s)", total, strings.Join(parts, ", "))
}
