package apitest

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"accounts/internal/cli"
	"accounts/internal/config"
	"accounts/internal/seal"
)

// BenchmarkUnpagedListMemory streams an unpaged list of 100,000 tenants, as
// a JSON array and as JSON Lines, from a real `accounts serve` process, and
// reports how much the process's peak resident memory grew during the
// request (VmHWM after, reset before, minus VmRSS before).
func BenchmarkUnpagedListMemory(b *testing.B) {
	const rows = 100_000
	dir := b.TempDir()
	bin := filepath.Join(dir, "accounts")
	build := exec.Command("go", "build", "-o", bin, "accounts/cmd/accounts")
	if out, err := build.CombinedOutput(); err != nil {
		b.Fatalf("building accounts: %v\n%s", err, out)
	}
	vars := map[string]string{
		config.EnvDatabase:  filepath.Join(dir, "accounts.db"),
		config.EnvMasterKey: seal.GenerateMasterKey(),
	}
	headers := memCustomer(b, vars)

	cmd, base := startServe(b, bin, vars)

	for start := 0; start < rows; start += 1000 {
		items := make([]map[string]any, 1000)
		for i := range items {
			items[i] = map[string]any{"first_name": fmt.Sprintf("Stream%06d", start+i), "last_name": "Memorysson", "custom_id": strconv.Itoa(start + i)}
		}
		body, _ := json.Marshal(items)
		resp := memDo(b, "POST", base+tenantPath+"list/", headers, body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusCreated {
			b.Fatalf("seeding: status %d", resp.StatusCode)
		}
	}
	for _, format := range []string{"json", "jsonl"} {
		b.Run(format, func(b *testing.B) {
			path := base + tenantPath + "list/"
			if format == "jsonl" {
				path += "?_jsonl=true"
			}
			var growth float64
			for b.Loop() {
				before := memProcStatus(b, cmd.Process.Pid, "VmRSS")
				if err := os.WriteFile(fmt.Sprintf("/proc/%d/clear_refs", cmd.Process.Pid), []byte("5"), 0); err != nil {
					b.Fatalf("resetting peak memory: %v", err)
				}
				resp := memDo(b, "GET", path, headers, nil)
				n, err := memCountObjects(resp.Body, format)
				resp.Body.Close()
				if err != nil || resp.StatusCode != http.StatusOK || n != rows {
					b.Fatalf("status %d, %d objects, err %v", resp.StatusCode, n, err)
				}
				peak := memProcStatus(b, cmd.Process.Pid, "VmHWM")
				growth = max(growth, float64(peak-before)/1024)
			}
			b.ReportMetric(growth, "peak-rss-growth-MB")
		})
	}
}

// memCustomer makes a customer and a client with the real CLI and returns
// the client's headers.
func memCustomer(b *testing.B, vars map[string]string) map[string]string {
	run := func(args ...string) []byte {
		var out bytes.Buffer
		err := cli.Run(context.Background(), args, cli.IO{Env: func(k string) string { return vars[k] }, Stdout: &out, Stderr: io.Discard})
		if err != nil {
			b.Fatalf("accounts %s: %v", args[0], err)
		}
		return out.Bytes()
	}
	var cust struct{ ID string }
	json.Unmarshal(run("customer", "create", "--name", "Memory AB", "--json"), &cust)
	var cl struct{ Headers map[string]string }
	json.Unmarshal(run("client", "create", "--customer", cust.ID, "--json"), &cl)
	return cl.Headers
}

// startServe starts `bin serve` on a free port with vars as its
// environment, stopped when the benchmark ends, and returns the process and
// its base URL.
func startServe(b *testing.B, bin string, vars map[string]string) (*exec.Cmd, string) {
	cmd := exec.Command(bin, "serve", "--addr", "127.0.0.1:0")
	cmd.Env = os.Environ()
	for k, v := range vars {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		b.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		cmd.Process.Signal(os.Interrupt)
		cmd.Wait()
	})
	base := "http://" + memListenAddr(b, stderr)
	go io.Copy(io.Discard, stderr)
	return cmd, base
}

// memListenAddr reads serve's log until its "listening" line.
func memListenAddr(b *testing.B, stderr io.Reader) string {
	sc := bufio.NewScanner(stderr)
	deadline := time.Now().Add(30 * time.Second)
	for sc.Scan() && time.Now().Before(deadline) {
		var line struct{ Msg, Addr string }
		if json.Unmarshal(sc.Bytes(), &line) == nil && line.Msg == "listening" {
			return line.Addr
		}
	}
	b.Fatal("serve did not report its address")
	return ""
}

func memDo(b *testing.B, method, url string, headers map[string]string, body []byte) *http.Response {
	req, err := http.NewRequest(method, url, bytes.NewReader(body))
	if err != nil {
		b.Fatal(err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		b.Fatal(err)
	}
	return resp
}

// memCountObjects counts the objects of a list body as it streams in.
func memCountObjects(r io.Reader, format string) (int, error) {
	if format == "jsonl" {
		sc := bufio.NewScanner(r)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		n := 0
		for sc.Scan() {
			n++
		}
		return n, sc.Err()
	}
	dec := json.NewDecoder(r)
	if _, err := dec.Token(); err != nil {
		return 0, err
	}
	n := 0
	for dec.More() {
		var obj json.RawMessage
		if err := dec.Decode(&obj); err != nil {
			return n, err
		}
		n++
	}
	return n, nil
}

// memProcStatus reads a kB field of /proc/PID/status.
func memProcStatus(b *testing.B, pid int, field string) int {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		b.Fatal(err)
	}
	for _, line := range strings.Split(string(data), "\n") {
		if rest, ok := strings.CutPrefix(line, field+":"); ok {
			kb, err := strconv.Atoi(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")))
			if err != nil {
				b.Fatal(err)
			}
			return kb
		}
	}
	b.Fatalf("no %s in /proc status", field)
	return 0
}
