package apitest

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"testing"

	"accounts/internal/servetest"
)

// BenchmarkUnpagedListMemory streams an unpaged list of 100,000 tenants, as
// a JSON array and as JSON Lines, from a real `accounts serve` process, and
// reports how much the process's peak resident memory grew during the
// request (VmHWM after, reset before, minus VmRSS before).
func BenchmarkUnpagedListMemory(b *testing.B) {
	const rows = 100_000
	d := servetest.NewSQLiteDeployment(b)
	headers := d.Client(d.Customer("Memory AB"), "read_write")
	s := d.Start(servetest.Inspectable())
	base := s.Base

	for start := 0; start < rows; start += 1000 {
		items := make([]map[string]any, 1000)
		for i := range items {
			items[i] = map[string]any{"first_name": fmt.Sprintf("Stream%06d", start+i), "last_name": "Memorysson", "custom_id": strconv.Itoa(start + i)}
		}
		body, _ := json.Marshal(items)
		resp := benchRequest(b, "POST", base+tenantPath+"list/", headers, body)
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
				before, err := s.RSS()
				if err != nil {
					b.Fatal(err)
				}
				if err := s.ResetPeakRSS(); err != nil {
					b.Fatalf("resetting peak memory: %v", err)
				}
				resp := benchRequest(b, "GET", path, headers, nil)
				n, err := countListObjects(resp.Body, format)
				resp.Body.Close()
				if err != nil || resp.StatusCode != http.StatusOK || n != rows {
					b.Fatalf("status %d, %d objects, err %v", resp.StatusCode, n, err)
				}
				peak, err := s.PeakRSS()
				if err != nil {
					b.Fatal(err)
				}
				growth = max(growth, float64(peak-before)/1024)
			}
			b.ReportMetric(growth, "peak-rss-growth-MB")
		})
	}
}

// benchRequest sends a request with the headers and returns the answer,
// its body unread; a request that cannot be sent ends the benchmark.
func benchRequest(b *testing.B, method, url string, headers map[string]string, body []byte) *http.Response {
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

// countListObjects counts the objects of a list body as it streams in.
func countListObjects(r io.Reader, format string) (int, error) {
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
