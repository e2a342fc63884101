package apitest

import (
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os/exec"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"accounts/internal/config"
	"accounts/internal/seal"
)

// BenchmarkAuditedReads measures GET-by-id requests per second, 32
// concurrent clients, against the service as built (every read audited,
// appends group-committed) and against a build with auditing compiled out
// (tag accounts_noaudit), in the same run on the same kind of data, and
// reports both rates and their ratio.
func BenchmarkAuditedReads(b *testing.B) {
	const clients = 32
	dir := b.TempDir()
	builds := map[string][]string{"audited": nil, "unaudited": {"-tags", "accounts_noaudit"}}
	rates := map[string]float64{}
	for _, name := range []string{"audited", "unaudited"} {
		bin := filepath.Join(dir, name)
		args := append(append([]string{"build"}, builds[name]...), "-o", bin, "accounts/cmd/accounts")
		if out, err := exec.Command("go", args...).CombinedOutput(); err != nil {
			b.Fatalf("building %s: %v\n%s", name, err, out)
		}
		b.Run(name, func(b *testing.B) {
			vars := map[string]string{
				config.EnvDatabase:  filepath.Join(b.TempDir(), "accounts.db"),
				config.EnvMasterKey: seal.GenerateMasterKey(),
			}
			headers := memCustomer(b, vars)
			_, base := startServe(b, bin, vars)

			items := make([]map[string]any, 500)
			for i := range items {
				items[i] = map[string]any{"first_name": fmt.Sprintf("Audit%04d", i), "last_name": "Benchsson"}
			}
			body, _ := json.Marshal(items)
			resp := memDo(b, "POST", base+tenantPath+"list/", headers, body)
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
