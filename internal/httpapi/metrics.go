package httpapi

import (
	"math"
	"net/http"
	"strconv"
	"strings"
	"time"

	"accounts/internal/limit"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	dto "github.com/prometheus/client_model/go"
)

// metrics are the HTTP metrics. Labels are the route pattern, the status
// code and fixed reason names: a bounded set that never carries an id or a
// value.
type metrics struct {
	requests       *prometheus.CounterVec
	duration       *prometheus.HistogramVec
	aborted        *prometheus.CounterVec
	securityEvents *prometheus.CounterVec
}

func newMetrics(reg *prometheus.Registry, limits *limit.Limits) *metrics {
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "accounts_http_requests_total",
			Help: "HTTP requests answered, by route pattern and status code.",
		}, []string{"route", "status"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "accounts_http_request_duration_seconds",
			Help:    "Time to answer HTTP requests, by route pattern and status code.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
		}, []string{"route", "status"}),
		aborted: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "accounts_http_responses_aborted_total",
			Help: "Responses that did not arrive whole (cut on purpose, the client gone, or a write deadline passed), by route pattern.",
		}, []string{"route"}),
		securityEvents: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "accounts_security_events_total",
			Help: "Requests refused for a reason worth attention (failed authentication, scope, a limit, undecodable input), by reason.",
		}, []string{"reason"}),
	}
	reg.MustRegister(m.requests, m.duration, m.aborted, m.securityEvents)
	registerLimits(reg, limits)
	return m
}

// registerLimits exposes the limits in force and what they hold now.
func registerLimits(reg *prometheus.Registry, limits *limit.Limits) {
	cfg := limits.Config()
	configured := prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "accounts_limit",
		Help: "The configured limits of this process, by name (0: off). Rates are per second, windows in seconds, memory in bytes.",
	}, []string{"limit"})
	for name, v := range map[string]float64{
		"in_flight":             float64(cfg.InFlight),
		"customer_in_flight":    float64(cfg.CustomerInFlight),
		"client_rate":           cfg.ClientRate,
		"client_burst":          float64(cfg.ClientBurst),
		"customer_expensive":    float64(cfg.CustomerExpensive),
		"expensive":             float64(cfg.Expensive),
		"customer_lists":        float64(cfg.CustomerLists),
		"list_memory_bytes":     float64(cfg.ListMemory),
		"auth_window_seconds":   cfg.AuthWindow.Seconds(),
		"address_auth_failures": float64(cfg.AddressAuthFailures),
		"client_auth_failures":  float64(cfg.ClientAuthFailures),
		"connections":           float64(cfg.Connections),
		"address_connections":   float64(cfg.AddressConnections),
	} {
		configured.WithLabelValues(name).Set(v)
	}
	reg.MustRegister(configured,
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "accounts_requests_in_flight",
			Help: "API requests in progress (the in_flight limit counts these).",
		}, func() float64 { return float64(limits.Usage().InFlight) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "accounts_expensive_in_progress",
			Help: "Expensive requests in progress: lists that read many rows, bulk writes.",
		}, func() float64 { return float64(limits.Usage().Expensive) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "accounts_connections_open",
			Help: "Client connections open on the API's address (the connections limit counts these).",
		}, func() float64 { return float64(limits.Usage().Connections) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "accounts_connections_refused_total",
			Help: "Client connections closed as soon as they were accepted, past the connections limits.",
		}, func() float64 { return float64(limits.Usage().ConnectionsRefused) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "accounts_list_memory_bytes",
			Help: "Bytes held in memory by lists in progress (the list_memory limit counts these).",
		}, func() float64 { return float64(limits.Usage().ListMemory) }),
	)
}

func (m *metrics) observe(route string, status int, aborted bool, elapsed time.Duration) {
	code := strconv.Itoa(status)
	m.requests.WithLabelValues(route, code).Inc()
	m.duration.WithLabelValues(route, code).Observe(elapsed.Seconds())
	if aborted {
		m.aborted.WithLabelValues(route).Inc()
	}
}

func (m *metrics) securityEvent(reason string) {
	m.securityEvents.WithLabelValues(reason).Inc()
}

// MetricsHandler serves reg's metrics in the Prometheus text format, with
// the Go runtime's and the process's own byte and allocation figures
// coarsened (see coarseGatherer).
func MetricsHandler(reg *prometheus.Registry) http.Handler {
	return promhttp.HandlerFor(coarseGatherer{reg}, promhttp.HandlerOpts{})
}

// coarseGatherer keeps /metrics, which anyone who reaches the service may
// read, from telling the size of an answer. Exact figures would: scraped
// just before and after one request on a quiet server, the network's
// transmitted bytes grow by that answer's size, and the runtime's
// allocated bytes by roughly what decoding and encoding its values took,
// so the length of a person's values could be read from their difference
// (the request log gives sizes in whole KiB for the same reason); and the
// list memory in use, read while one list runs, sums the lengths of the
// values it holds. So the network counters are left out (the process
// collector reads them for the whole network namespace, not the process),
// every byte figure, the runtime's, the process's and our own, is given in
// whole MiB, and the runtime's counts of allocations and of objects in
// whole thousands (1,024): coarser than anything one answer changes, still
// fine enough for memory dashboards and rates.
type coarseGatherer struct{ prometheus.Gatherer }

// The granules coarseGatherer rounds down to.
const (
	byteGranule  = 1 << 20
	countGranule = 1 << 10
)

// leftOut are the metric families coarseGatherer does not serve.
var leftOut = map[string]bool{
	"process_network_receive_bytes_total":  true,
	"process_network_transmit_bytes_total": true,
}

// objectCounts are the runtime's counts of allocations and of objects.
var objectCounts = map[string]bool{
	"go_memstats_mallocs_total": true,
	"go_memstats_frees_total":   true,
	"go_memstats_lookups_total": true,
	"go_memstats_heap_objects":  true,
}

func (g coarseGatherer) Gather() ([]*dto.MetricFamily, error) {
	families, err := g.Gatherer.Gather()
	out := families[:0]
	for _, f := range families {
		name := f.GetName()
		if leftOut[name] {
			continue
		}
		switch {
		case strings.HasSuffix(name, "_bytes") || strings.HasSuffix(name, "_bytes_total"):
			roundDown(f, byteGranule)
		case objectCounts[name]:
			roundDown(f, countGranule)
		}
		out = append(out, f)
	}
	return out, err
}

// roundDown rounds the values of f's gauges and counters down to a
// multiple of granule.
func roundDown(f *dto.MetricFamily, granule float64) {
	for _, m := range f.GetMetric() {
		if g := m.GetGauge(); g != nil {
			v := math.Floor(g.GetValue()/granule) * granule
			g.Value = &v
		}
		if c := m.GetCounter(); c != nil {
			v := math.Floor(c.GetValue()/granule) * granule
			c.Value = &v
		}
	}
}
