package main

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
)

// machine describes where a run ran.
type machine struct {
	CPUs   int    `json:"cpus"`
	CPU    string `json:"cpu"`
	Kernel string `json:"kernel"`
	Go     string `json:"go"`
	Memory string `json:"memory"`
	Disk   string `json:"disk"`
	// Pinning says which CPUs the server and the load generator ran on.
	Pinning string `json:"pinning"`
}

func describeMachine(tempDir string) machine {
	m := machine{CPUs: runtime.NumCPU(), Go: runtime.Version(), CPU: "unknown", Kernel: "unknown", Memory: "unknown", Disk: "unknown"}
	if data, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for line := range strings.SplitSeq(string(data), "\n") {
			if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
				m.CPU = strings.TrimSpace(v)
				break
			}
		}
	}
	if data, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		m.Kernel = runtime.GOOS + " " + strings.TrimSpace(string(data))
	}
	if data, err := os.ReadFile("/proc/meminfo"); err == nil {
		for line := range strings.SplitSeq(string(data), "\n") {
			if rest, ok := strings.CutPrefix(line, "MemTotal:"); ok {
				kb, _ := strconv.Atoi(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")))
				m.Memory = fmt.Sprintf("%.1f GiB", float64(kb)/(1<<20))
			}
		}
	}
	m.Disk = describeDisk(tempDir)
	return m
}

// describeDisk names the block device under dir and what the kernel says
// of it (rotational or not); a virtual machine's disk says little of the
// storage behind it.
func describeDisk(dir string) string {
	var st syscall.Stat_t
	if err := syscall.Stat(dir, &st); err != nil {
		return "unknown"
	}
	major, minor := (st.Dev>>8)&0xfff, (st.Dev&0xff)|((st.Dev>>12)&0xfff00)
	sys := fmt.Sprintf("/sys/dev/block/%d:%d", major, minor)
	target, err := filepath.EvalSymlinks(sys)
	if err != nil {
		return "unknown"
	}
	if _, err := os.Stat(filepath.Join(target, "partition")); err == nil {
		target = filepath.Dir(target)
	}
	name := filepath.Base(target)
	desc := name
	if rot, err := os.ReadFile(filepath.Join("/sys/block", name, "queue", "rotational")); err == nil {
		if strings.TrimSpace(string(rot)) == "1" {
			desc += " (the kernel calls it rotational)"
		} else {
			desc += " (not rotational: SSD or NVMe)"
		}
	}
	if strings.HasPrefix(name, "vd") {
		desc += ", a virtio disk of a virtual machine"
	}
	if fs := mountType(dir); fs != "" {
		desc += ", " + fs
	}
	return desc
}

// mountType is the file system type of the longest mount point above dir.
func mountType(dir string) string {
	data, err := os.ReadFile("/proc/mounts")
	if err != nil {
		return ""
	}
	best, fsType := "", ""
	for line := range strings.SplitSeq(string(data), "\n") {
		f := strings.Fields(line)
		if len(f) < 3 {
			continue
		}
		if (dir == f[1] || strings.HasPrefix(dir, strings.TrimSuffix(f[1], "/")+"/")) && len(f[1]) > len(best) {
			best, fsType = f[1], f[2]
		}
	}
	return fsType
}

// loadAverage is /proc/loadavg's 1, 5 and 15 minute figures.
func loadAverage() string {
	data, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	f := strings.Fields(string(data))
	if len(f) < 3 {
		return "unknown"
	}
	return strings.Join(f[:3], " ")
}

// pinning is where the server and the load generator run.
type pinning struct {
	// server prefixes serve's command line (taskset -c CPUS); empty for
	// none.
	server []string
	desc   string
}

// pin puts this process (every thread, and those it makes later) on the
// second half of the CPUs and returns the prefix that puts serve on the
// first half, when taskset is there and there are two CPUs or more.
func pin(want bool) pinning {
	n := runtime.NumCPU()
	taskset, err := exec.LookPath("taskset")
	switch {
	case !want:
		return pinning{desc: "none (--pin off)"}
	case runtime.GOOS != "linux" || err != nil:
		return pinning{desc: "none (no taskset)"}
	case n < 2:
		return pinning{desc: "none (one CPU)"}
	}
	half := n / 2
	cpus := func(lo, hi int) string {
		if lo == hi {
			return strconv.Itoa(lo)
		}
		return fmt.Sprintf("%d-%d", lo, hi)
	}
	serverCPUs, selfCPUs := cpus(0, half-1), cpus(half, n-1)
	if out, err := exec.Command(taskset, "-a", "-p", "-c", selfCPUs, strconv.Itoa(os.Getpid())).CombinedOutput(); err != nil {
		return pinning{desc: "none (taskset failed: " + errors.Join(err, errors.New(strings.TrimSpace(string(out)))).Error() + ")"}
	}
	return pinning{
		server: []string{taskset, "-c", serverCPUs},
		desc:   fmt.Sprintf("serve on CPU %s, the load generator (and the disk loop) on CPU %s, with taskset; PostgreSQL unpinned", serverCPUs, selfCPUs),
	}
}
