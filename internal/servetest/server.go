package servetest

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Server is a running `accounts serve` child process.
type Server struct {
	// Base is the URL the server listens on, http://127.0.0.1:port.
	Base string
	PID  int
	// LogPath is the file the server logs to (stdout and stderr). A file,
	// never a pipe this process must drain: a test process slowed by the
	// race detector must not slow the server's logging down.
	LogPath string

	cmd    *exec.Cmd
	exited chan struct{} // closed when the process has been waited for
	err    error         // Wait's result, set before exited closes
}

// Option changes how Start runs the server.
type Option func(*startOptions)

type startOptions struct {
	tags              []string
	deploymentEnvOnly bool
	flags             []string
	prefix            []string
}

// Tags starts the binary built with these build tags.
func Tags(tags ...string) Option {
	return func(o *startOptions) { o.tags = tags }
}

// Flags adds flags to serve's command line (`--client-rate 0`, say).
func Flags(flags ...string) Option {
	return func(o *startOptions) { o.flags = append(o.flags, flags...) }
}

// Prefix runs serve under a command that execs it in its own place, so that
// the server keeps the process id (`taskset -c 0`, to pin it to a CPU).
func Prefix(command ...string) Option {
	return func(o *startOptions) { o.prefix = command }
}

// Inspectable starts serve with --allow-debugger, so that a test that does
// not run as root may write and read its /proc files as ResetPeakRSS and a
// count of /proc/PID/fd do: otherwise serve, as every command, makes itself
// not dumpable, and those files root's.
func Inspectable() Option { return Flags("--allow-debugger") }

// DeploymentEnvOnly keeps the test process's own ACCOUNTS_* variables from
// the server: its configuration is the deployment's alone, and everything
// else (its request limits, say) is the default, whatever the environment
// the tests run in says.
func DeploymentEnvOnly() Option {
	return func(o *startOptions) { o.deploymentEnvOnly = true }
}

// Start starts `accounts serve` on a free loopback port and waits until it
// says where it listens. The server is stopped when the test ends, unless
// it has ended before.
func (d *Deployment) Start(opts ...Option) *Server {
	t := d.t
	t.Helper()
	var o startOptions
	for _, opt := range opts {
		opt(&o)
	}
	bin := Binary(t, o.tags...)
	s := &Server{LogPath: filepath.Join(t.TempDir(), "serve.log"), exited: make(chan struct{})}
	logFile, err := os.Create(s.LogPath)
	if err != nil {
		t.Fatal(err)
	}
	defer logFile.Close()
	argv := append(slices.Clone(o.prefix), bin, "serve", "--addr", "127.0.0.1:0")
	argv = append(argv, o.flags...)
	s.cmd = exec.Command(argv[0], argv[1:]...)
	s.cmd.Env = d.environ(o.deploymentEnvOnly)
	s.cmd.Stdout, s.cmd.Stderr = logFile, logFile
	if err := s.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	s.PID = s.cmd.Process.Pid
	go func() { s.err = s.cmd.Wait(); close(s.exited) }()
	t.Cleanup(func() { s.Stop() })

	deadline := time.After(30 * time.Second)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-s.exited:
			t.Fatalf("serve exited before listening: %v\n%s", s.err, s.Log())
		case <-deadline:
			t.Fatalf("serve did not listen within 30 s\n%s", s.Log())
		case <-tick.C:
			if addr := s.listeningAddr(); addr != "" {
				s.Base = "http://" + addr
				return s
			}
		}
	}
}

// environ is the server's environment: this process's, without its
// ACCOUNTS_* variables when deploymentOnly, then the deployment's.
func (d *Deployment) environ(deploymentOnly bool) []string {
	var env []string
	for _, kv := range os.Environ() {
		if !deploymentOnly || !strings.HasPrefix(kv, "ACCOUNTS_") {
			env = append(env, kv)
		}
	}
	for k, v := range d.Env {
		env = append(env, k+"="+v) // the last of duplicate keys wins
	}
	return env
}

// listeningAddr is the address of the log's "listening" line, or "" while
// there is none.
func (s *Server) listeningAddr() string {
	f, err := os.Open(s.LogPath)
	if err != nil {
		return ""
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		var line struct{ Msg, Addr string }
		if json.Unmarshal(sc.Bytes(), &line) == nil && line.Msg == "listening" && line.Addr != "" {
			return line.Addr
		}
	}
	return ""
}

// logTail is how much of the log Log shows: enough for the reason the
// server failed, which comes last.
const logTail = 64 << 10

// Log returns the end of the server's log, for a failure message: the
// service logs no personal value, so its log may be shown.
func (s *Server) Log() string {
	data, err := os.ReadFile(s.LogPath)
	if err != nil {
		return err.Error()
	}
	if len(data) > logTail {
		data = data[len(data)-logTail:]
	}
	return strings.TrimSpace(string(data))
}

// Stop asks the server to drain and exit, as an operator does, and returns
// how it exited (nil for status 0). One that is still running 30 s later
// is killed.
func (s *Server) Stop() error { return s.StopWith(syscall.SIGTERM) }

// StopWith is Stop with another signal than SIGTERM.
func (s *Server) StopWith(sig os.Signal) error {
	s.cmd.Process.Signal(sig)
	select {
	case <-s.exited:
		return s.err
	case <-time.After(30 * time.Second):
		s.Kill()
		return fmt.Errorf("serve did not exit within 30 s of %v", sig)
	}
}

// Kill ends the server with SIGKILL and waits until it is gone: no drain,
// no deferred close, no checkpoint, exactly as a power cut ends it (but the
// OS keeps what it has been given).
func (s *Server) Kill() {
	s.cmd.Process.Signal(syscall.SIGKILL)
	<-s.exited
}

// RSS is the server's resident memory now, in KiB (VmRSS).
func (s *Server) RSS() (int, error) { return s.procStatusKB("VmRSS") }

// PeakRSS is the most resident memory the server has held since it started
// or since ResetPeakRSS, in KiB (VmHWM).
func (s *Server) PeakRSS() (int, error) { return s.procStatusKB("VmHWM") }

// ResetPeakRSS makes PeakRSS start again from the current RSS, so that it
// measures what comes next only. Unless the test runs as root, the server
// must have been started Inspectable.
func (s *Server) ResetPeakRSS() error {
	return os.WriteFile(fmt.Sprintf("/proc/%d/clear_refs", s.PID), []byte("5"), 0)
}

// procStatusKB reads a kB field of /proc/PID/status.
func (s *Server) procStatusKB(field string) (int, error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", s.PID))
	if err != nil {
		return 0, err
	}
	for line := range strings.SplitSeq(string(data), "\n") {
		if rest, ok := strings.CutPrefix(line, field+":"); ok {
			return strconv.Atoi(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")))
		}
	}
	return 0, fmt.Errorf("no %s in /proc/%d/status", field, s.PID)
}
