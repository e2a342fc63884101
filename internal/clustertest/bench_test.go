package clustertest

import (
	"fmt"
	"math/rand/v2"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"accounts/internal/store/storetest"
)

// BenchmarkClusterThroughput measures creates per second and GET-by-id per
// second on PostgreSQL with 1, 2 and 4 `accounts serve` processes, 32
// concurrent clients spread over the processes in turn. The processes, the
// database and the clients share this machine's cores.
func BenchmarkClusterThroughput(b *testing.B) {
	for _, procs := range []int{1, 2, 4} {
		for _, op := range []string{"create", "get"} {
			b.Run(fmt.Sprintf("processes=%d/%s", procs, op), func(b *testing.B) {
				d := newDeployment(b, storetest.PostgresURL(b))
				bases := make([]string, procs)
				for i := range bases {
					bases[i] = d.Start().Base
				}
				var ids []string
				if op == "get" {
					for i := range 200 {
						status, obj, err := d.do(bases[0], "POST", tenantPath, map[string]any{"first_name": fmt.Sprintf("Get-%d", i)})
						if err != nil || status != http.StatusCreated {
							b.Fatalf("seeding: status %d, err %v", status, err)
						}
						ids = append(ids, obj["id"].(string))
					}
				}
				var next, failed atomic.Int64
				b.SetParallelism(16) // 16 × GOMAXPROCS(2) = 32 clients
				start := time.Now()
				b.ResetTimer()
				b.RunParallel(func(pb *testing.PB) {
					for pb.Next() {
						n := next.Add(1)
						base := bases[int(n)%len(bases)]
						var status int
						var err error
						if op == "create" {
							status, _, err = d.do(base, "POST", tenantPath, map[string]any{"first_name": fmt.Sprintf("Load-%d", n)})
							if status != http.StatusCreated {
								failed.Add(1)
							}
						} else {
							status, _, err = d.do(base, "GET", tenantPath+ids[rand.IntN(len(ids))]+"/", nil)
							if status != http.StatusOK {
								failed.Add(1)
							}
						}
						if err != nil {
							failed.Add(1)
						}
					}
				})
				elapsed := time.Since(start)
				if failed.Load() > 0 {
					b.Fatalf("%d of %d requests failed", failed.Load(), b.N)
				}
				b.ReportMetric(float64(b.N)/elapsed.Seconds(), "req/s")
			})
		}
	}
}
