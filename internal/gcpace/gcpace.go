// Package gcpace paces the garbage collector of a serving process by its
// live heap: after each collection the heap may grow by a fixed headroom
// before the next one, or by GOGC's default of 100% of the live heap once
// that is more.
//
// Why: the service's live heap is small (10-20 MiB: caches, connections,
// requests in flight) while it allocates fast (a create's decoding,
// sealing, search tokens and statements), so at GOGC=100 it collected
// about ten times a second under load, and each collection costs a
// fixed part (scanning every goroutine's stack, preempting them) besides
// its marking. Measured with the harness (docs/benchmarks.md), a 32 MiB
// headroom cut the server CPU of a create by about a sixth and of a list
// by a third; where the live heap is large (a bulk write's thousand objects) the
// pace is GOGC=100's, so memory stays bounded by twice the live heap or
// live heap plus headroom, whichever is more.
package gcpace

import (
	"context"
	"runtime/debug"
	"runtime/metrics"
	"time"
)

// basePercent is the GOGC the pace never goes below: Go's default.
const basePercent = 100

// runtimeMinHeap is the Go runtime's least heap goal at GOGC=100 (4 MiB);
// it scales that with GOGC.
const runtimeMinHeap = 4 << 20

// Percent is the GOGC that lets a heap of live bytes grow by headroom
// before the next collection: never below basePercent, and never so high
// that the runtime's least heap goal (runtimeMinHeap scaled by GOGC)
// passes the headroom, which is what it is while live is 0 (unknown).
func Percent(live, headroom uint64) int {
	most := max(basePercent, headroom*100/runtimeMinHeap)
	if live == 0 {
		return int(most)
	}
	return int(min(max(basePercent, headroom*100/live), most))
}

// Run sets GOGC by Percent of the live heap the last collection left,
// looking every poll, until ctx ends; then it restores the GOGC it found.
func Run(ctx context.Context, headroom uint64, poll time.Duration) {
	samples := []metrics.Sample{{Name: "/gc/cycles/total:gc-cycles"}, {Name: "/gc/heap/live:bytes"}}
	set := Percent(0, headroom)
	initial := debug.SetGCPercent(set)
	defer debug.SetGCPercent(initial)
	tick := time.NewTicker(poll)
	defer tick.Stop()
	var cycles uint64
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		metrics.Read(samples)
		if samples[0].Value.Uint64() == cycles {
			continue // no collection since the last look: the live heap is as it was
		}
		cycles = samples[0].Value.Uint64()
		if p := Percent(samples[1].Value.Uint64(), headroom); p != set {
			debug.SetGCPercent(p)
			set = p
		}
	}
}
