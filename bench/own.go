package main

import (
	"bufio"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
)

// clientPort finds the client's port in a PostgreSQL backend's command line
// ("postgres: 15/main: user db 127.0.0.1(54321) idle").
var clientPort = regexp.MustCompile(`\((\d+)\)`)

// ownPostgres lists the PostgreSQL processes that work for the processes
// pids: the backends of their connections (by the client port in a
// backend's command line) and the server's own processes (the postmaster,
// the WAL writer, the checkpointer: those without a client). Backends of
// other clients — other programs' tests on a shared server — are not
// listed, so their work counts as foreign.
func ownPostgres(pids ...string) []string {
	ports := tcpPorts(pids)
	var own []string
	for _, pid := range processesNamed("postgres") {
		data, err := os.ReadFile("/proc/" + pid + "/cmdline")
		if err != nil {
			continue
		}
		cmdline := string(data)
		if m := clientPort.FindStringSubmatch(cmdline); m != nil {
			if ports[m[1]] {
				own = append(own, pid)
			}
		} else if !strings.Contains(cmdline, "[local]") {
			own = append(own, pid)
		}
	}
	return own
}

// processesNamed lists the ids of the processes with the command name.
func processesNamed(name string) []string {
	entries, _ := os.ReadDir("/proc")
	var pids []string
	for _, e := range entries {
		if e.Name()[0] < '0' || e.Name()[0] > '9' {
			continue
		}
		if comm, err := os.ReadFile("/proc/" + e.Name() + "/comm"); err == nil && strings.TrimSpace(string(comm)) == name {
			pids = append(pids, e.Name())
		}
	}
	return pids
}

// tcpPorts is the set of local ports (decimal) of the TCP sockets the
// processes hold.
func tcpPorts(pids []string) map[string]bool {
	inodes := map[string]bool{}
	for _, pid := range pids {
		fds, _ := filepath.Glob("/proc/" + pid + "/fd/*")
		for _, fd := range fds {
			if link, err := os.Readlink(fd); err == nil {
				if inode, ok := strings.CutPrefix(link, "socket:["); ok {
					inodes[strings.TrimSuffix(inode, "]")] = true
				}
			}
		}
	}
	ports := map[string]bool{}
	for _, table := range []string{"/proc/net/tcp", "/proc/net/tcp6"} {
		f, err := os.Open(table)
		if err != nil {
			continue
		}
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			// sl local_address rem_address st tx:rx tr:when retrnsmt uid timeout inode
			fields := strings.Fields(sc.Text())
			if len(fields) < 10 || !inodes[fields[9]] {
				continue
			}
			_, hexPort, _ := strings.Cut(fields[1], ":")
			if port, err := strconv.ParseUint(hexPort, 16, 16); err == nil {
				ports[strconv.FormatUint(port, 10)] = true
			}
		}
		f.Close()
	}
	return ports
}
