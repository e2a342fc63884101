package httpapi

import (
	"strconv"
	"time"

	"accounts/internal/limit"

	"github.com/prometheus/client_golang/prometheus"
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
			Help: "Responses that began but did not arrive whole (cut on purpose, the client gone, or a write deadline passed), by route pattern.",
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
