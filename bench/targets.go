package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"math"
	"os"
	"slices"
	"strconv"
	"strings"
)

// Kinds of figure, each with its own margin in the baseline: ratios of two
// rates measured in the same run, latencies and memory.
const (
	kindRatio   = "ratio"
	kindLatency = "latency"
	kindMemory  = "memory"
)

// targetSpec is one of issue 10's targets.
type targetSpec struct {
	name string
	// engine is the engine it applies to: "" for each engine, "postgres"
	// for PostgreSQL only, "cross" for PostgreSQL against SQLite.
	engine  string
	goal    string
	kind    string
	atLeast bool
	target  float64
	// guard marks a figure that is no target of the issue: the check holds
	// it to its baseline alone, to see regressions that a target's figure
	// can't (see cpuRatio).
	guard bool
	// unchecked, when set, says why the check does not hold the figure: it
	// is reported with the targets, never judged, and not written into the
	// baseline.
	unchecked string
	// value computes the figure from one run's results by engine.
	value func(byEngine map[string]engineRun, engine string) (float64, bool)
}

var targets = []targetSpec{
	{name: "get/ceiling", goal: "get ≥ 40% of ceiling", kind: kindRatio, atLeast: true, target: 0.40,
		value: func(r map[string]engineRun, e string) (float64, bool) { return rpsRatio(r[e], "get", r[e], "ceiling") }},
	{name: "create/disk", goal: "create ≥ 3× disk", kind: kindRatio, atLeast: true, target: 3, unchecked: uncheckedCreateDisk,
		value: func(r map[string]engineRun, e string) (float64, bool) { return rpsRatio(r[e], "create", r[e], "disk") }},
	{name: "create CPU/ceiling CPU", goal: "no target: guards create/disk", kind: kindRatio, guard: true,
		value: func(r map[string]engineRun, e string) (float64, bool) { return cpuRatio(r[e], "create", "ceiling") }},
	{name: "list CPU/ceiling CPU", goal: "no target: guards list p99", kind: kindRatio, guard: true,
		value: func(r map[string]engineRun, e string) (float64, bool) { return cpuRatio(r[e], "list", "ceiling") }},
	{name: "create p99 ms", goal: "create p99 ≤ 50 ms at 32 clients", kind: kindLatency, target: 50,
		value: func(r map[string]engineRun, e string) (float64, bool) { return p99(r[e], "create") }},
	{name: "list p99 ms", goal: "list p99 ≤ 50 ms at 32 clients", kind: kindLatency, target: 50,
		value: func(r map[string]engineRun, e string) (float64, bool) { return p99(r[e], "list") }},
	{name: "create/create-4", engine: "postgres", goal: "PostgreSQL: create (one customer) ≥ 80% of create-4", kind: kindRatio, atLeast: true, target: 0.80,
		value: func(r map[string]engineRun, e string) (float64, bool) {
			return rpsRatio(r[e], "create", r[e], "create-4")
		}},
	{name: "create/create-1", engine: "postgres", goal: "PostgreSQL: create (32 clients) not below create-1 (1 client)", kind: kindRatio, atLeast: true, target: 1,
		value: func(r map[string]engineRun, e string) (float64, bool) {
			return rpsRatio(r[e], "create", r[e], "create-1")
		}},
	{name: "get postgres/sqlite", engine: "cross", goal: "PostgreSQL get ≥ 60% of SQLite get", kind: kindRatio, atLeast: true, target: 0.60,
		value: func(r map[string]engineRun, _ string) (float64, bool) {
			pg, ok1 := r["postgres"]
			lite, ok2 := r["sqlite"]
			if !ok1 || !ok2 {
				return 0, false
			}
			return rpsRatio(pg, "get", lite, "get")
		}},
	{name: "peak RSS MB", goal: "server peak RSS ≤ 150 MB across all scenarios", kind: kindMemory, target: 150,
		value: func(r map[string]engineRun, e string) (float64, bool) {
			peak := 0.0
			for _, res := range r[e].Results {
				peak = max(peak, res.PeakRSSMB)
			}
			return peak, peak > 0
		}},
}

func rpsRatio(a engineRun, sa string, b engineRun, sb string) (float64, bool) {
	ra, ok1 := a.find(sa)
	rb, ok2 := b.find(sb)
	if !ok1 || !ok2 || rb.RPS == 0 {
		return 0, false
	}
	return ra.RPS / rb.RPS, true
}

// uncheckedCreateDisk is why the check does not hold create/disk: create is
// bound by the server's CPU and disk by the disk's cache, and the two drift
// apart from one day to the next (docs/benchmarks.md measured SQLite's disk
// at 4,066 commits/s one day and 9,198 the next, on a CPU 1.4 times
// slower, the code unchanged: the ratio went from 0.67 to 0.20). The check
// holds "create CPU/ceiling CPU" in its place.
const uncheckedCreateDisk = "bound by the disk's cache, which drifts apart from the CPU day to day; create CPU/ceiling CPU is held instead"

// cpuRatio is the server's CPU time per request of scenario sa in requests
// of sb, both measured in the same run on the same pinned CPU: what a
// scenario's work costs, whatever the speed of the machine that day and of
// its disk. Held to the baseline, it sees the regressions of create's own
// work that create/disk can no longer be held to, and of list's work that
// list p99 sees only when they double it (its margin must allow for the
// p99's spread).
func cpuRatio(er engineRun, sa, sb string) (float64, bool) {
	ra, ok1 := er.find(sa)
	rb, ok2 := er.find(sb)
	if !ok1 || !ok2 || ra.ServerCPUus == 0 || rb.ServerCPUus == 0 {
		return 0, false
	}
	return ra.ServerCPUus / rb.ServerCPUus, true
}

func p99(er engineRun, scenario string) (float64, bool) {
	r, ok := er.find(scenario)
	return r.P99ms, ok && r.Requests > 0
}

// metric is one target's figure.
type metric struct {
	// Key names the figure in the baseline: "sqlite get/ceiling".
	Key     string  `json:"key"`
	Goal    string  `json:"goal"`
	Kind    string  `json:"kind"`
	AtLeast bool    `json:"at_least"`
	Target  float64 `json:"target"`
	// Guard and Unchecked are the target's guard and unchecked.
	Guard     bool   `json:"guard,omitempty"`
	Unchecked string `json:"unchecked,omitempty"`
	// Value is the median of Runs, the figure of each run.
	Value float64   `json:"value"`
	Runs  []float64 `json:"runs"`
	Met   bool      `json:"met"`
}

func (m metric) meets(v float64) bool {
	if m.AtLeast {
		return v >= m.Target
	}
	return v <= m.Target
}

// evaluate computes every target's figure that the runs have the scenarios
// for, per run and their median.
func evaluate(runs [][]engineRun, clients int) []metric {
	var out []metric
	for _, t := range targets {
		var engines []string
		switch t.engine {
		case "":
			engines = []string{"sqlite", "postgres"}
		default:
			engines = []string{t.engine}
		}
		for _, e := range engines {
			m := metric{Key: e + " " + t.name, Goal: t.goal, Kind: t.kind, AtLeast: t.atLeast, Target: t.target, Guard: t.guard, Unchecked: t.unchecked}
			if t.engine == "cross" {
				m.Key = t.name
			}
			if t.kind == kindLatency && clients != 32 {
				m.Goal += fmt.Sprintf(" (measured at %d)", clients)
			}
			for _, run := range runs {
				byEngine := map[string]engineRun{}
				for _, er := range run {
					byEngine[er.Engine] = er
				}
				if v, ok := t.value(byEngine, e); ok {
					m.Runs = append(m.Runs, v)
				}
			}
			if len(m.Runs) == 0 {
				continue
			}
			m.Value = median(m.Runs)
			m.Met = !m.Guard && m.meets(m.Value)
			out = append(out, m)
		}
	}
	return out
}

// spread is how far a metric's runs lie apart, relative to their median:
// (max − min) / median.
func (m metric) spread() float64 {
	if len(m.Runs) < 2 || m.Value == 0 {
		return 0
	}
	return (slices.Max(m.Runs) - slices.Min(m.Runs)) / m.Value
}

// metricsTable shows each target, the figure and whether it is met; with
// several runs, every run's figure and their spread too.
func metricsTable(metrics []metric, runs int) string {
	var b strings.Builder
	if runs > 1 {
		b.WriteString("| figure | target | median | met | runs | spread (max−min)/median |\n|---|---|---:|---|---|---:|\n")
	} else {
		b.WriteString("| figure | target | value | met |\n|---|---|---:|---|\n")
	}
	for _, m := range metrics {
		fmt.Fprintf(&b, "| %s | %s | %s | %s |", m.Key, m.Goal, figure(m.Value), m.met())
		if runs > 1 {
			vals := make([]string, len(m.Runs))
			for i, v := range m.Runs {
				vals[i] = figure(v)
			}
			fmt.Fprintf(&b, " %s | %.0f%% |", strings.Join(vals, ", "), 100*m.spread())
		}
		b.WriteString("\n")
	}
	return b.String()
}

// met says whether the figure meets its target: "—" for a guard, which has
// none.
func (m metric) met() string {
	if m.Guard {
		return "—"
	}
	return yesNo(m.Met)
}

func yesNo(ok bool) string {
	if ok {
		return "yes"
	}
	return "no"
}

// baseline is the committed figures that --check holds a run to, each with
// the margin it may fall short by.
type baseline struct {
	About    string             `json:"about"`
	Settings baselineSettings   `json:"settings"`
	Figures  map[string]figured `json:"figures"`
}

// figured is one figure of the baseline.
type figured struct {
	// Value is the median of Runs.
	Value float64 `json:"value"`
	// Margin is the fraction by which a run may fall short of the figure
	// (see margin).
	Margin float64   `json:"margin"`
	Runs   []float64 `json:"runs"`
}

// baselineSettings are the settings the figures were measured with, and a
// check measures with: ratios and latencies depend on them.
type baselineSettings struct {
	Scenarios string `json:"scenarios"`
	Clients   int    `json:"clients"`
	Duration  string `json:"duration"`
	Warmup    string `json:"warmup"`
	Slices    int    `json:"slices"`
	// Runs is how many runs the check takes the median of; MeasuredRuns how
	// many the figures are the median of.
	Runs         int `json:"runs"`
	MeasuredRuns int `json:"measured_runs"`
}

// marginFloors are the least margins, by kind of figure, above the worst
// run-to-run deviation from the median that sliced runs showed on the
// shared 2-CPU machine of docs/benchmarks.md (ratios 11% in a quiet hour,
// 26% in a busy one; latencies 40%; memory 6%).
var marginFloors = map[string]float64{kindRatio: 0.30, kindLatency: 0.50, kindMemory: 0.15}

// margin is a figure's margin: twice the farthest that one of its samples
// lay from the median of all its runs in the harmful direction (below for
// at-least figures, above for at-most ones), and at least its kind's floor,
// rounded up to 5%. The samples are the medians of consecutive groups of
// group runs — a check judges the median of that many runs — or the runs
// themselves when there are fewer than two groups. A handful of samples sees
// less than the worst a machine does: twice what they saw, or the floor,
// covers it. An at-least margin stays under 90%, so that it still fails a
// figure that falls to a tenth.
func (m metric) margin(group int) float64 {
	samples := m.Runs
	if group > 1 && len(m.Runs) >= 2*group {
		samples = nil
		for i := 0; i+group <= len(m.Runs); i += group {
			samples = append(samples, median(m.Runs[i:i+group]))
		}
	}
	worst := 0.0
	if m.Value > 0 {
		for _, v := range samples {
			if m.AtLeast {
				worst = max(worst, (m.Value-v)/m.Value)
			} else {
				worst = max(worst, (v-m.Value)/m.Value)
			}
		}
	}
	margin := math.Ceil(max(marginFloors[m.Kind], 2*worst)*20-1e-9) / 20
	if m.AtLeast {
		margin = min(margin, 0.9)
	}
	return margin
}

const baselineAbout = "Figures of issue 10's targets as the service stands: medians of the runs of `go run ./bench --write-baseline` (with the settings below), and each figure's margin, from the spread of medians of `runs` runs, as many as a check takes (docs/benchmarks.md). `go run ./bench --check` fails when a figure falls below min(target, value) × (1 − margin) (at-least targets) or rises above max(target, value) × (1 + margin) (at-most ones); a guard, which has no target, past value × (1 ± margin). create/disk is reported, not checked (docs/benchmarks.md). Write it again when the service improves."

func readBaseline(path string) (*baseline, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var b baseline
	if err := json.Unmarshal(data, &b); err != nil {
		return nil, fmt.Errorf("%s: %v", path, err)
	}
	for key, f := range b.Figures {
		if f.Margin < 0 || f.Margin >= 100 {
			return nil, fmt.Errorf("%s: the margin of %q must be a fraction from 0 to 100", path, key)
		}
	}
	return &b, nil
}

// apply sets the flags of fs that the command line did not set to the
// baseline's settings.
func (bs baselineSettings) apply(fs *flag.FlagSet) error {
	given := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { given[f.Name] = true })
	for name, value := range map[string]string{
		"scenarios": bs.Scenarios, "clients": strconv.Itoa(bs.Clients), "duration": bs.Duration,
		"warmup": bs.Warmup, "slices": strconv.Itoa(bs.Slices), "runs": strconv.Itoa(bs.Runs),
	} {
		if !given[name] && value != "" && value != "0" {
			if err := fs.Set(name, value); err != nil {
				return fmt.Errorf("settings.%s: %v", name, err)
			}
		}
	}
	return nil
}

// writeBaselineFile writes the report's figures as the baseline of a check
// that takes the median of group runs.
func writeBaselineFile(path string, rep *report, group int) error {
	b := baseline{
		About: baselineAbout,
		Settings: baselineSettings{Scenarios: strings.Join(rep.Settings.Scenarios, ","), Clients: rep.Settings.Clients, Duration: rep.Settings.Duration.String(),
			Warmup: rep.Settings.Warmup.String(), Slices: rep.Settings.Slices, Runs: group, MeasuredRuns: rep.Settings.Runs},
		Figures: map[string]figured{},
	}
	round := func(v float64) float64 { return math.Round(v*1000) / 1000 }
	for _, m := range rep.Metrics {
		if m.Unchecked != "" {
			continue
		}
		f := figured{Value: round(m.Value), Margin: m.margin(group)}
		for _, v := range m.Runs {
			f.Runs = append(f.Runs, round(v))
		}
		b.Figures[m.Key] = f
	}
	data, err := json.MarshalIndent(b, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(data, '\n'), 0o644)
}

// checked is one metric held to the baseline.
type checked struct {
	metric
	Baseline    float64 `json:"baseline"`
	Margin      float64 `json:"margin"`
	HasBaseline bool    `json:"has_baseline"`
	// Limit is the figure past which the metric is a regression.
	Limit     float64 `json:"limit"`
	Regressed bool    `json:"regressed"`
}

// check holds each metric to the baseline: an at-least figure must not fall
// below min(target, baseline) × (1 − margin), an at-most figure must not
// rise above max(target, baseline) × (1 + margin). So a target once met is
// held with the margin even before the baseline is written again, and one
// not yet met must not get worse than the baseline by more than the margin.
// A guard, having no target, is held to its baseline with the margin. A
// figure the baseline lacks, or that is unchecked, is shown, not checked.
func (b *baseline) check(metrics []metric) []checked {
	var out []checked
	for _, m := range metrics {
		c := checked{metric: m}
		f, ok := b.Figures[m.Key]
		if m.Unchecked != "" {
			ok = false
		}
		c.Baseline, c.Margin, c.HasBaseline = f.Value, f.Margin, ok
		if ok {
			bar := c.Baseline
			switch {
			case m.Guard: // no target: the baseline alone
			case m.AtLeast:
				bar = min(m.Target, c.Baseline)
			default:
				bar = max(m.Target, c.Baseline)
			}
			if m.AtLeast {
				c.Limit = bar * (1 - c.Margin)
				c.Regressed = m.Value < c.Limit
			} else {
				c.Limit = bar * (1 + c.Margin)
				c.Regressed = m.Value > c.Limit
			}
		}
		out = append(out, c)
	}
	return out
}

// disturbedCores is how much work of other processes makes a run unfit to
// judge: a quarter of a processor taken on average, on a machine of two, is
// time the server, the database or the load generator did not get (as in
// internal/loadtest).
const disturbedCores = 0.25

func disturbed(run []engineRun) bool {
	for _, er := range run {
		if er.ForeignCores >= disturbedCores {
			return true
		}
	}
	return false
}

// verdict is the outcome of a check.
type verdict struct {
	Checks []checked `json:"checks"`
	// Judged are the runs (numbered from 1) the figures were judged on:
	// those that other processes left alone, or every run when they left
	// none alone.
	Judged []int `json:"judged_runs"`
	// Inconclusive is set when a figure regressed but every run was
	// disturbed: the regression may be the machine's, and is not a failure.
	Inconclusive bool `json:"inconclusive"`
}

func (v verdict) failed() bool { return regressions(v.Checks) > 0 && !v.Inconclusive }

// judge checks the figures of the runs that other processes left alone (all
// of them when none was left alone) against the baseline.
func (b *baseline) judge(runs [][]engineRun, clients int) verdict {
	var v verdict
	var quiet [][]engineRun
	for i, run := range runs {
		if !disturbed(run) {
			quiet = append(quiet, run)
			v.Judged = append(v.Judged, i+1)
		}
	}
	allDisturbed := len(quiet) == 0
	if allDisturbed {
		quiet = runs
		for i := range runs {
			v.Judged = append(v.Judged, i+1)
		}
	}
	v.Checks = b.check(evaluate(quiet, clients))
	v.Inconclusive = allDisturbed && regressions(v.Checks) > 0
	return v
}

func regressions(cs []checked) int {
	n := 0
	for _, c := range cs {
		if c.Regressed {
			n++
		}
	}
	return n
}

// checkMarkdown shows the check: each figure against the baseline, then the
// verdict.
func checkMarkdown(b *baseline, v verdict, runs [][]engineRun, s settings) string {
	cs := v.Checks
	var out strings.Builder
	out.WriteString("\n### Check against the baseline\n\n")
	for i, run := range runs {
		var foreign []string
		for _, er := range run {
			foreign = append(foreign, fmt.Sprintf("%s %.2f", er.Engine, er.ForeignCores))
		}
		state := "quiet"
		if disturbed(run) {
			state = "disturbed"
		}
		fmt.Fprintf(&out, "Run %d: other processes kept %s CPUs busy: %s.\n", i+1, strings.Join(foreign, ", "), state)
	}
	judged := make([]string, len(v.Judged))
	for i, n := range v.Judged {
		judged[i] = strconv.Itoa(n)
	}
	fmt.Fprintf(&out, "Judged on run(s) %s (a run is disturbed from %.2f CPUs).\n\n", strings.Join(judged, ", "), disturbedCores)
	bs := b.Settings
	if bs.Clients != s.Clients || bs.Duration != s.Duration.String() || bs.Warmup != s.Warmup.String() || bs.Slices != s.Slices || bs.Runs != s.Runs {
		fmt.Fprintf(&out, "Note: the baseline is for checks of %d clients, %s in %d slices after %s of warm-up each, median of %d runs; this check: %d clients, %s in %d slices after %s, %d runs.\n\n",
			bs.Clients, bs.Duration, bs.Slices, bs.Warmup, bs.Runs, s.Clients, s.Duration, s.Slices, s.Warmup, s.Runs)
	}
	out.WriteString("| figure | value | target met | baseline | margin | fails when | verdict |\n|---|---:|---|---:|---:|---|---|\n")
	for _, c := range cs {
		base, margin, limit, verdict := "—", "—", "—", "not in the baseline: not checked"
		if c.Unchecked != "" {
			verdict = "not checked: " + c.Unchecked
		}
		if c.HasBaseline {
			base, margin = figure(c.Baseline), fmt.Sprintf("%.0f%%", 100*c.Margin)
			if c.AtLeast {
				limit = "< " + figure(c.Limit)
			} else {
				limit = "> " + figure(c.Limit)
			}
			verdict = "ok"
			if c.Regressed {
				verdict = "**REGRESSION**"
			}
		}
		fmt.Fprintf(&out, "| %s | %s | %s | %s | %s | %s | %s |\n", c.Key, figure(c.Value), c.met(), base, margin, limit, verdict)
	}
	measured := map[string]bool{}
	for _, c := range cs {
		measured[c.Key] = true
	}
	var missing []string
	for k := range b.Figures {
		if !measured[k] {
			missing = append(missing, k)
		}
	}
	slices.Sort(missing)
	if len(missing) > 0 {
		fmt.Fprintf(&out, "\nIn the baseline but not measured by this run (not checked): %s.\n", strings.Join(missing, ", "))
	}
	switch n := regressions(cs); {
	case n > 0 && v.Inconclusive:
		fmt.Fprintf(&out, "\nINCONCLUSIVE (not a failure): %d figure(s) regressed beyond the margin, but other processes disturbed every run.\n", n)
	case n > 0:
		fmt.Fprintf(&out, "\nFAIL: %d figure(s) regressed beyond the margin.\n", n)
	default:
		out.WriteString("\nPASS: no figure regressed beyond the margin.\n")
	}
	return out.String()
}

// MarshalJSON writes durations as Go durations ("10s").
func (s settings) MarshalJSON() ([]byte, error) {
	type plain settings
	return json.Marshal(struct {
		plain
		Duration string `json:"duration"`
		Warmup   string `json:"warmup"`
	}{plain(s), s.Duration.String(), s.Warmup.String()})
}
