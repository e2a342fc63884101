package apitest

import (
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"accounts/internal/servetest"
)

// BenchmarkAuditedReads measures GET-by-id requests per second, 32
// concurrent clients, against the service as built (every read audited,
// appends group-committed) and against a build with auditing compiled out
// (tag accounts_noaudit), in the same run on the same kind of data, and
// reports both rates and their ratio.
func BenchmarkAuditedReads(b *testing.B) {
	const clients = 32
	tags := map[string][]string{"audited": nil, "unaudited": {"accounts_noaudit"}}
	rates := map[string]float64{}
	for _, name := range []string{"audited", "unaudited"} {
		b.Run(name, func(b *testing.B) {
			d := servetest.NewSQLiteDeployment(b)
			headers := d.Client(d.Customer("Audit AB"), "read_write")
			base := d.Start(servetest.Tags(tags[name]...)).Base

			items := make([]map[string]any, 500)
			for i := range items {
				items[i] = map[string]any{"first_name": fmt.Sprintf("Audit%04d", i), "last_name": "Benchsson"}
			}
			body, _ := json.Marshal(items)
			resp := benchRequest(b, "POST", base+tenantPath+"list/", headers, body)
			var created []struct{ ID string }
			json.NewDecoder(resp.Body).Decode(&created)
			resp.Body.Close()
			if resp.StatusCode != http.StatusCreated || len(created) != len(items) {
				b.Fatalf("seeding: status %d", resp.StatusCode)
			}

			client := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: clients}}
			var next, failed atomic.Int64
			total := int64(b.N)
			start := time.Now()
			b.ResetTimer()
			var wg sync.WaitGroup
			for range clients {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for next.Add(1) <= total {
						req, _ := http.NewRequest("GET", base+tenantPath+created[rand.IntN(len(created))].ID+"/", nil)
						for k, v := range headers {
							req.Header.Set(k, v)
						}
						resp, err := client.Do(req)
						if err != nil {
							failed.Add(1)
							continue
						}
						io.Copy(io.Discard, resp.Body)
						resp.Body.Close()
						if resp.StatusCode != http.StatusOK {
							failed.Add(1)
						}
					}
				}()
			}
			wg.Wait()
			elapsed := time.Since(start)
			if failed.Load() > 0 {
				b.Fatalf("%d of %d requests failed", failed.Load(), b.N)
			}
			rates[name] = float64(b.N) / elapsed.Seconds()
			b.ReportMetric(rates[name], "req/s")
		})
	}
	if rates["unaudited"] > 0 {
		b.ReportMetric(rates["audited"]/rates["unaudited"], "audited/unaudited")
	}
}
