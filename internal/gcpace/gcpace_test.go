package gcpace

import (
	"context"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"testing"
	"time"
)

func TestPercent(t *testing.T) {
	const mib = 1 << 20
	for _, c := range []struct {
		live, headroom uint64
		want           int
	}{
		{0, 32 * mib, 800},       // unknown live heap: the most, whose least goal is the headroom
		{2 * mib, 32 * mib, 800}, // 1600% would put the runtime's least goal at 64 MiB
		{8 * mib, 32 * mib, 400},
		{10 * mib, 32 * mib, 320},
		{32 * mib, 32 * mib, 100},
		{1 << 30, 32 * mib, 100}, // a large live heap: GOGC's default
		{8 * mib, 0, 100},
		{0, 0, 100},
	} {
		if got := Percent(c.live, c.headroom); got != c.want {
			t.Errorf("Percent(%d MiB live, %d MiB headroom) = %d, want %d", c.live/mib, c.headroom/mib, got, c.want)
		}
	}
}

// gogc reads the GOGC the runtime applies.
func gogc() int {
	s := []metrics.Sample{{Name: "/gc/gogc:percent"}}
	metrics.Read(s)
	return int(s[0].Value.Uint64())
}

// liveHeap reads the live heap of the last collection.
func liveHeap() uint64 {
	s := []metrics.Sample{{Name: "/gc/heap/live:bytes"}}
	metrics.Read(s)
	return s[0].Value.Uint64()
}

// collectUntil collects until cond holds, or fails the test after 10 s.
func collectUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); {
		runtime.GC()
		time.Sleep(20 * time.Millisecond)
		if cond() {
			return
		}
	}
	t.Fatalf("%s: GOGC is %d after 10 s of collections (live heap %d bytes)", what, gogc(), liveHeap())
}

func TestRunPacesByLiveHeapAndRestores(t *testing.T) {
	const headroom = 64 << 20
	defer debug.SetGCPercent(debug.SetGCPercent(150))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { Run(ctx, headroom, time.Millisecond); close(done) }()

	// A small live heap: the headroom's pace, well above GOGC's default.
	collectUntil(t, "small live heap", func() bool { return gogc() == Percent(liveHeap(), headroom) && gogc() > 400 })

	// A live heap larger than the headroom: GOGC's default.
	ballast := make([]byte, 2*headroom)
	for i := range ballast {
		ballast[i] = 1
	}
	collectUntil(t, "large live heap", func() bool { return gogc() == basePercent })
	runtime.KeepAlive(ballast)

	cancel()
	<-done
	if got := gogc(); got != 150 {
		t.Errorf("GOGC after Run = %d, want the 150 it found", got)
	}
}
