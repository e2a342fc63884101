package apitest

import (
	"fmt"
	"net/http"
	"runtime"
	"sync/atomic"
	"testing"
)

// BenchmarkConcurrentCreates measures single POSTs of tenants (durable,
// audited) from 32 concurrent clients of one customer: the load that group
// commit is for, where every create once waited for the one writer (SQLite)
// or its customer's hot rows (PostgreSQL) alone. Profile it with
// -cpuprofile and -blockprofile to see where the writes wait.
func BenchmarkConcurrentCreates(b *testing.B) {
	e := newEnv(b)
	c := e.newCustomer("Concurrent Creates AB")
	var n atomic.Int64
	// RunParallel runs parallelism × GOMAXPROCS goroutines: 32 clients.
	b.SetParallelism((32 + runtime.GOMAXPROCS(0) - 1) / runtime.GOMAXPROCS(0))
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			i := n.Add(1)
			r := c.do("POST", tenantPath, map[string]any{"first_name": fmt.Sprintf("Concurrent%07d", i)})
			if r.status != http.StatusCreated {
				b.Errorf("create: status %d", r.status)
				return
			}
		}
	})
}
