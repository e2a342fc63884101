package main

import (
	"io"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// newHTTPClient keeps one keep-alive connection per client open to the
// server.
func newHTTPClient(clients int) *http.Client {
	return &http.Client{
		Timeout: 2 * time.Minute,
		Transport: &http.Transport{
			MaxIdleConns:        clients,
			MaxIdleConnsPerHost: clients,
			DisableCompression:  true,
		},
	}
}

// nextRequest makes client w's next request and the status that answers
// it; nil when there is no more work (a pool of fresh tenants ran out).
type nextRequest func(w int) (req *http.Request, want int)

// sample is one answered (or failed) request.
type sample struct {
	end time.Time
	dur time.Duration
	// fault is "" for the expected status, else the status ("429") or
	// "transport" for a request that got no whole answer.
	fault string
}

// window is what drive measured: the answers that completed between the end
// of the warm-up and the end of the measured time (or the moment the first
// client ran out of work, if sooner).
type window struct {
	elapsed   time.Duration
	latencies []time.Duration
	errors    map[string]int
	// exhausted is set when a client ran out of work before the end.
	exhausted bool
	// serverCPU is the CPU time the server spent over the measured time
	// (0 when drive was given no clock for it).
	serverCPU time.Duration
}

// drive runs clients goroutines, each sending next's requests one after
// another on the shared keep-alive connections, for warmup and then dur.
// Every request is counted when it completes: a closed loop of fixed
// concurrency, whose rate is completions per second. serverCPU, when not
// nil, is read when the measured time begins and when it ends, so that the
// server's CPU time per request can be told from the same window.
func drive(hc *http.Client, clients int, warmup, dur time.Duration, next nextRequest, serverCPU func() time.Duration) window {
	start := time.Now()
	t0, t1 := start.Add(warmup), start.Add(warmup+dur)
	var stop atomic.Bool
	var ranOut sync.Once
	out := make(chan struct{})
	var outAt time.Time
	tallies := make([][]sample, clients)
	var wg sync.WaitGroup
	for w := range clients {
		wg.Go(func() {
			for !stop.Load() {
				req, want := next(w)
				if req == nil {
					ranOut.Do(func() { outAt = time.Now(); close(out) })
					return
				}
				begin := time.Now()
				fault := roundTrip(hc, req, want)
				end := time.Now()
				if !end.Before(t0) {
					tallies[w] = append(tallies[w], sample{end: end, dur: end.Sub(begin), fault: fault})
				}
			}
		})
	}
	var cpu0, cpu1 time.Duration
	began := false
	begin := time.NewTimer(time.Until(t0))
	timer := time.NewTimer(time.Until(t1))
	end := t1
wait:
	for {
		select {
		case <-begin.C:
			began = true
			if serverCPU != nil {
				cpu0 = serverCPU()
			}
		case <-timer.C:
			break wait
		case <-out:
			timer.Stop()
			end = outAt
			break wait
		}
	}
	if serverCPU != nil && began {
		cpu1 = serverCPU()
	}
	begin.Stop()
	stop.Store(true)
	wg.Wait()

	win := window{elapsed: end.Sub(t0), errors: map[string]int{}, exhausted: end.Before(t1), serverCPU: max(cpu1-cpu0, 0)}
	for _, samples := range tallies {
		for _, s := range samples {
			if s.end.Before(t0) || s.end.After(end) {
				continue
			}
			win.latencies = append(win.latencies, s.dur)
			if s.fault != "" {
				win.errors[s.fault]++
			}
		}
	}
	return win
}

// roundTrip sends req and reads its answer to the end; it returns "" when
// the status is want, else what went wrong.
func roundTrip(hc *http.Client, req *http.Request, want int) string {
	resp, err := hc.Do(req)
	if err != nil {
		return "transport"
	}
	_, err = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	switch {
	case err != nil:
		return "transport"
	case resp.StatusCode != want:
		return strconv.Itoa(resp.StatusCode)
	}
	return ""
}

// quantile is the q-quantile (0 < q ≤ 1) of sorted by the nearest-rank
// method; 0 for none.
func quantile(sorted []time.Duration, q float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	rank := int(q*float64(len(sorted)) + 0.999999)
	return sorted[min(max(rank, 1), len(sorted))-1]
}

// result sums a window up as a table row.
func (win window) result(scenario string, clients int) result {
	lat := slices.Clone(win.latencies)
	slices.Sort(lat)
	r := result{
		Scenario: scenario,
		Clients:  clients,
		Requests: len(lat),
		Seconds:  win.elapsed.Seconds(),
		P50ms:    ms(quantile(lat, 0.50)),
		P99ms:    ms(quantile(lat, 0.99)),
	}
	if win.elapsed > 0 {
		r.RPS = float64(len(lat)) / win.elapsed.Seconds()
	}
	if len(win.errors) > 0 {
		r.Errors = win.errors
	}
	if len(lat) > 0 {
		r.ServerCPUus = float64(win.serverCPU) / float64(time.Microsecond) / float64(len(lat))
	}
	return r
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
