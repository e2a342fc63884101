// Command bench is the load harness of docs/design.md's "Speed": it builds
// `accounts serve`, starts it on a fresh database, seeds it (several
// customers, 10,000 protected identities for one), drives each scenario with
// a fixed number of concurrent clients for a fixed time after a warm-up, and
// prints a Markdown table of requests per second, p50 and p99 latency,
// errors and the server's peak resident memory — with the ratios the
// service aims at (issue 10) and, with --check, a comparison against the
// committed baseline that fails on a regression.
//
//	go run ./bench --help
//	go run ./bench                                        # SQLite, every scenario, 32 clients, 10 s each
//	go run ./bench --database sqlite,postgres://postgres@127.0.0.1:5432/test --runs 3
//	go run ./bench --database sqlite,$ACCOUNTS_TEST_POSTGRES --check   # CI, with bench/baseline.json's settings
//
// The server runs with the per-client rate and the per-customer and
// expensive-work caps off (see serveLimitFlags): the harness is one client
// per customer making far more than 1,000 requests a second.
package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"accounts/internal/servetest"
)

// settings are what a run was asked to do.
type settings struct {
	Databases []string      `json:"-"`
	Engines   []string      `json:"engines"`
	Clients   int           `json:"clients"`
	Duration  time.Duration `json:"duration"`
	Warmup    time.Duration `json:"warmup"`
	Slices    int           `json:"slices"`
	Scenarios []string      `json:"scenarios"`
	Runs      int           `json:"runs"`
	Pin       bool          `json:"-"`
	// ServeFlags are flags given to serve besides serveLimitFlags.
	ServeFlags []string `json:"serve_flags,omitempty"`
}

func main() { os.Exit(servetest.Run(func() int { return run(os.Args[1:], os.Stdout, os.Stderr) })) }

func run(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	database := fs.String("database", "sqlite", "comma-separated `engines`: sqlite (a fresh temporary file) and/or a postgres:// URL (a fresh schema in that database, dropped after)")
	clients := fs.Int("clients", 32, "concurrent clients of every scenario (create-1 has one)")
	duration := fs.Duration("duration", 10*time.Second, "measured time of each scenario")
	warmup := fs.Duration("warmup", 500*time.Millisecond, "time each slice of a scenario runs before it is measured")
	sliceCount := fs.Int("slices", 5, "slices each scenario's measured time is cut into; the scenarios take turns, a slice at a time")
	scenarioList := fs.String("scenarios", strings.Join(scenarioNames, ","), "scenarios to run, comma-separated")
	runs := fs.Int("runs", 1, "runs of everything (each on a fresh database); tables show the medians")
	asJSON := fs.Bool("json", false, "print the results as JSON instead of Markdown")
	check := fs.Bool("check", false, "hold the figures to the baseline file, measuring with its settings (those not given as flags): exit 1 on a regression beyond its margins")
	baselinePath := fs.String("baseline", "bench/baseline.json", "baseline file of --check and --write-baseline")
	retries := fs.Int("retries", 1, "with --check: when a figure regresses, runs to add before failing (the check judges the median of the runs that other processes left alone)")
	writeBaseline := fs.Bool("write-baseline", false, "write the figures (medians of the runs) and their margins into the baseline file")
	group := fs.Int("group", 1, "with --write-baseline: the `runs` a check takes the median of; margins come from the spread of medians of that many runs (give --runs a multiple of it)")
	scale := fs.String("scale", "", "comma-separated customer `sizes` (e.g. 1000,100000,1000000): instead of the scenarios, grow one customer to each size and measure issue 12's lookups (see docs/benchmarks.md)")
	repeat := fs.Int("repeat", 21, "with --scale: times each lookup is made at each size (its median is shown)")
	serveFlags := fs.String("serve-flags", "", "more `flags` for serve, space-separated, e.g. \"--list-cache-rows 0\" (the decrypted-object cache off)")
	pin := fs.String("pin", "auto", "`mode`: auto (with taskset and 2 or more CPUs, serve on the first half of the CPUs and this program on the rest) or off")
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: go run ./bench [flags]\n\nScenarios: %s\n\n", strings.Join(scenarioNames, ", "))
		for _, name := range scenarioNames {
			fmt.Fprintf(stderr, "  %-9s %s\n", name, scenarioDoc[name])
		}
		fmt.Fprintf(stderr, "\nFlags:\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	// A check measures as its baseline was measured, unless told otherwise.
	var base *baseline
	if *check {
		var err error
		if base, err = readBaseline(*baselinePath); err != nil {
			fmt.Fprintf(stderr, "bench: %v\n", err)
			return 2
		}
		if err := base.Settings.apply(fs); err != nil {
			fmt.Fprintf(stderr, "bench: %s: %v\n", *baselinePath, err)
			return 2
		}
	}
	s := settings{Clients: *clients, Duration: *duration, Warmup: *warmup, Slices: *sliceCount, Runs: *runs, Pin: *pin == "auto",
		ServeFlags: strings.Fields(*serveFlags)}
	if fs.NArg() > 0 || *clients < 1 || *warmup < 0 || *runs < 1 || *group < 1 || (*pin != "auto" && *pin != "off") ||
		*sliceCount < 1 || *duration < 100*time.Millisecond*time.Duration(*sliceCount) {
		fs.Usage()
		return 2
	}
	for _, db := range strings.Split(*database, ",") {
		engine, ok := engineOf(db)
		if !ok || slices.Contains(s.Engines, engine) {
			fmt.Fprintln(stderr, "bench: --database takes sqlite and/or one postgres:// URL, comma-separated")
			return 2
		}
		s.Databases, s.Engines = append(s.Databases, db), append(s.Engines, engine)
	}
	for _, name := range strings.Split(*scenarioList, ",") {
		if !slices.Contains(scenarioNames, name) {
			fmt.Fprintf(stderr, "bench: unknown scenario %q (known: %s)\n", name, strings.Join(scenarioNames, ", "))
			return 2
		}
		s.Scenarios = append(s.Scenarios, name)
	}

	if *scale != "" {
		sizes, ok := scaleSizes(*scale)
		if !ok || *repeat < 1 || *check || *writeBaseline {
			fmt.Fprintln(stderr, "bench: --scale takes increasing sizes of at least 1,000, comma-separated, --repeat at least 1, and neither --check nor --write-baseline")
			return 2
		}
		return runScales(s, sizes, *repeat, *asJSON, stdout, stderr)
	}
	rep, err := newReport(s, stderr)
	if err == nil {
		err = rep.measure(s.Runs, stderr)
	}
	var v verdict
	if err == nil && *check {
		v = base.judge(rep.Runs, s.Clients)
		for retry := 0; retry < *retries && regressions(v.Checks) > 0; retry++ {
			fmt.Fprintf(stderr, "bench: %d figure(s) regressed beyond the margin: measuring again\n", regressions(v.Checks))
			if err = rep.measure(1, stderr); err != nil {
				break
			}
			v = base.judge(rep.Runs, s.Clients)
		}
	}
	if err != nil {
		fmt.Fprintf(stderr, "bench: %v\n", err)
		return 1
	}
	code := 0
	var failed string
	if *check {
		rep.Check = &v
		if v.failed() {
			code = 1
		}
		// A request answered otherwise than expected is a fault of the
		// service (or of the harness), whatever the figures.
		if failed = rep.failedRequests(); failed != "" {
			code = 1
		}
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		enc.Encode(rep)
	} else {
		fmt.Fprint(stdout, rep.markdown())
		if *check {
			fmt.Fprint(stdout, checkMarkdown(base, v, rep.Runs, s))
		}
	}
	if failed != "" {
		fmt.Fprintf(stderr, "bench: FAIL: requests not answered as expected: %s\n", failed)
	}
	if *check && *asJSON {
		fmt.Fprintf(stderr, "bench: check: %d figure(s) regressed beyond the margin (inconclusive: %v)\n", regressions(v.Checks), v.Inconclusive)
	}
	if *writeBaseline {
		if err := writeBaselineFile(*baselinePath, rep, *group); err != nil {
			fmt.Fprintf(stderr, "bench: %v\n", err)
			return 1
		}
		fmt.Fprintf(stderr, "bench: wrote %s\n", *baselinePath)
	}
	return code
}

// scaleSizes parses --scale: increasing sizes of at least one bulk write.
func scaleSizes(list string) ([]int, bool) {
	var sizes []int
	for _, f := range strings.Split(list, ",") {
		n, err := strconv.Atoi(f)
		if err != nil || n < bulkItems || (len(sizes) > 0 && n <= sizes[len(sizes)-1]) {
			return nil, false
		}
		sizes = append(sizes, n)
	}
	return sizes, true
}

// runScales runs the scale mode on each engine in turn and prints its
// tables.
func runScales(s settings, sizes []int, repeat int, asJSON bool, stdout, stderr io.Writer) int {
	rep, err := newReport(s, stderr)
	if err != nil {
		fmt.Fprintf(stderr, "bench: %v\n", err)
		return 1
	}
	var runs []scaleRun
	code := 0
	for i, db := range s.Databases {
		sr, err := runScale(s, sizes, repeat, db, s.Engines[i], rep.pinning, stderr)
		if err != nil {
			fmt.Fprintf(stderr, "bench: %s: %v\n", s.Engines[i], err)
			return 1
		}
		for _, row := range sr.Rows {
			if len(row.Errors) > 0 {
				code = 1
			}
		}
		runs = append(runs, sr)
	}
	if asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		enc.Encode(struct {
			Machine machine    `json:"machine"`
			Repeat  int        `json:"repeat"`
			Runs    []scaleRun `json:"runs"`
		}{rep.Machine, repeat, runs})
	} else {
		fmt.Fprintf(stdout, "Server flags: %s.\n", strings.Join(append(slices.Clone(serveLimitFlags), s.ServeFlags...), " "))
		fmt.Fprint(stdout, scaleMarkdown(runs))
	}
	if code != 0 {
		fmt.Fprintln(stderr, "bench: FAIL: lookups not answered as expected (see the errors column)")
	}
	return code
}

// engineOf names the engine of a --database value.
func engineOf(db string) (string, bool) {
	switch {
	case db == "sqlite":
		return "sqlite", true
	case strings.HasPrefix(db, "postgres://"), strings.HasPrefix(db, "postgresql://"):
		return "postgres", true
	}
	return "", false
}
