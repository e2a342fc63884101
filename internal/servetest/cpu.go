package servetest

import (
	"os"
	"strconv"
	"strings"
	"time"
)

// clockTicks is the unit of the CPU times in /proc (USER_HZ), 100 on Linux.
const clockTicks = 100

// CPUSample is the machine's busy CPU time and that of some processes, in
// clock ticks, at a moment.
type CPUSample struct {
	at    time.Time
	busy  int64
	procs map[string]int64 // by process id
}

// SampleCPU samples the machine's busy CPU time and that of the processes
// with the ids ("self" for this one): those whose work ForeignCores does not
// count as foreign.
func SampleCPU(pids ...string) CPUSample {
	s := CPUSample{at: time.Now(), procs: map[string]int64{}}
	for _, pid := range pids {
		if pid == "self" {
			pid = strconv.Itoa(os.Getpid())
		}
		s.procs[pid] = procCPU(pid)
	}
	data, err := os.ReadFile("/proc/stat")
	if err != nil {
		return s
	}
	line, _, _ := strings.Cut(string(data), "\n")
	fields := strings.Fields(line)
	// cpu user nice system idle iowait irq softirq steal ...: all but idle
	// and iowait is work.
	for i, f := range fields[1:] {
		if v, err := strconv.ParseInt(f, 10, 64); err == nil && i != 3 && i != 4 && i < 8 {
			s.busy += v
		}
	}
	return s
}

// procCPU is a process's user and system time, in clock ticks, with that
// of the children it has waited for (a probe run as a process of its own
// is work of the test that ran it, not foreign).
func procCPU(pid string) int64 {
	data, err := os.ReadFile("/proc/" + pid + "/stat")
	if err != nil {
		return 0
	}
	// The fields after the command's closing parenthesis start at the
	// third; utime and stime are the 14th and 15th.
	_, rest, _ := strings.Cut(string(data), ") ")
	fields := strings.Fields(rest)
	if len(fields) < 15 {
		return 0
	}
	var ticks int64
	for _, f := range fields[11:15] { // utime, stime, cutime, cstime
		n, _ := strconv.ParseInt(f, 10, 64)
		ticks += n
	}
	return ticks
}

// ForeignCores is how many processors, on average between a and b, other
// processes than those sampled kept busy: on a shared machine they take the
// processors that the timings measured depend on. A process sampled in b
// only counts from its start (it started after a); one sampled in a only
// is not counted (its last ticks are unknown).
func ForeignCores(a, b CPUSample) float64 {
	ticks := b.busy - a.busy
	for pid, t := range b.procs {
		ticks -= t - a.procs[pid]
	}
	return max(float64(ticks)/clockTicks/b.at.Sub(a.at).Seconds(), 0)
}

// CPUTime is the server's user and system CPU time so far, all its threads,
// to the clock tick (10 ms): what a load spent in it is the difference of
// two readings.
func (s *Server) CPUTime() time.Duration {
	return time.Duration(procCPU(strconv.Itoa(s.PID))) * time.Second / clockTicks
}
