package cli

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"runtime"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"accounts/internal/config"
	"accounts/internal/gcpace"
	"accounts/internal/logsink"
	"accounts/internal/schema"
)

// Server limits: no unbounded header or body reads, no idle connection kept
// forever.
const (
	readHeaderTimeout = 5 * time.Second
	readTimeout       = 30 * time.Second
	writeSlack        = 30 * time.Second
	idleTimeout       = 120 * time.Second
	maxHeaderBytes    = 64 << 10
)

// drainTimeout bounds how long a shutdown waits for in-flight requests;
// what is still in flight then is cut. A variable for the tests alone.
var drainTimeout = 30 * time.Second

// cutGrace is how long a shutdown whose drain time ran out waits for the
// requests it cut to end (their handlers see their connections closed) and
// be logged, before the database is closed under them.
const cutGrace = 5 * time.Second

func newLogger(io IO) *slog.Logger {
	return slog.New(slog.NewJSONHandler(io.Stderr, nil))
}

// msgPlaintextOnNetwork is the warning logged when --allow-plaintext-http
// lets a listener carry plaintext HTTP beyond loopback.
const msgPlaintextOnNetwork = "serving plaintext HTTP on a non-loopback address: a TLS-terminating proxy must sit in front"

// msgDebuggerAllowed is the warning logged when --allow-debugger keeps the
// process dumpable.
const msgDebuggerAllowed = "a debugger or profiler of the same user may attach and read this process's memory (--allow-debugger)"

// serve runs the HTTP API until ctx is cancelled (SIGTERM or SIGINT), then
// drains in-flight requests on every listener and returns nil.
func serve(fs *flag.FlagSet, io IO) runFunc {
	var cfg config.Config
	cfg.BindDatabase(fs, io.Env)
	cfg.BindKeys(fs, io.Env)
	cfg.BindServe(fs, io.Env)
	cfg.BindLimits(fs, io.Env)
	return func(ctx context.Context, _ []string) error { return runServe(ctx, cfg, io) }
}

func runServe(ctx context.Context, cfg config.Config, io IO) error {
	if err := cfg.Validate(); err != nil {
		return usagef("%v", err)
	}
	// Every refusal comes before anything is opened, generated or bound: a
	// configuration that would send the X-PIGELLO-* headers in clear, or
	// that names a certificate we can't use, never half-starts.
	if err := cfg.ValidateServe(); err != nil {
		return usagef("%v", err)
	}
	tlsConfig, err := loadTLS(cfg)
	if err != nil {
		return usagef("%v", err)
	}
	if err := checkOpenFiles(cfg.Limits.Connections); err != nil {
		return usagef("%v", err)
	}
	if cfg.AllowDebugger {
		// Run made the process not dumpable, as it does every command's.
		if err := setDumpable(true); err != nil {
			return fmt.Errorf("letting a debugger attach: %w", err)
		}
	}
	// The log is buffered (logsink): a request does not wait for its
	// access log line to be written. Closed last, so the lines of shutdown
	// are written too.
	sink := logsink.New(io.Stderr, logsink.FlushInterval)
	defer sink.Close()
	log := slog.New(sink.Handler(slog.NewJSONHandler(sink, nil)))
	atLeastTwoProcs(io)
	if gogc, _ := io.Env("GOGC"); gogc == "" {
		paceCtx, stopPacing := context.WithCancel(ctx)
		paced := make(chan struct{})
		go func() { gcpace.Run(paceCtx, heapHeadroom, gcPacePoll); close(paced) }()
		defer func() { stopPacing(); <-paced }()
	}
	api := &listener{msg: "listening", addr: cfg.Addr}
	listeners := []*listener{api}
	var metrics *listener
	if cfg.MetricsAddr != "" {
		// First, so that the "listening" line, logged last, means that
		// every listener is up.
		metrics = &listener{msg: "metrics listening", addr: cfg.MetricsAddr}
		listeners = append([]*listener{metrics}, listeners...)
	}
	// The addresses are bound before the database is opened: a port in
	// use fails the start before a new deployment's key, database or
	// migrations are made. Connections that arrive meanwhile wait in the
	// listen queue until the servers start.
	for i, l := range listeners {
		if err := l.bind(); err != nil {
			for _, bound := range listeners[:i] {
				bound.ln.Close()
			}
			if i > 0 && errors.Is(err, syscall.EADDRINUSE) && l.bind() == nil {
				// In use by the listener bound before it, and free once
				// that one is closed: the two addresses are one, spelled
				// two ways (localhost and 127.0.0.1, a host and the
				// wildcard, 8080 and 08080).
				l.ln.Close()
				return usagef("--addr %s and --metrics-addr %s are one address: give --metrics-addr a port of its own", cfg.Addr, cfg.MetricsAddr)
			}
			return err
		}
	}
	app, err := OpenApp(ctx, cfg, log)
	if err != nil {
		for _, l := range listeners {
			l.ln.Close()
		}
		return err
	}
	defer app.Close()
	api.handler = app.Handler
	api.ln = app.Limits.Listener(api.ln)
	if metrics != nil {
		mux := http.NewServeMux()
		mux.Handle("GET /metrics", app.Metrics)
		metrics.handler = mux
	}
	for _, l := range listeners {
		l.build(tlsConfig, cfg.RequestTimeout+writeSlack, log)
	}
	if exposed := cfg.PlaintextOnNetwork(); len(exposed) > 0 {
		log.Warn(msgPlaintextOnNetwork, "addrs", exposed)
	}
	if cfg.AllowDebugger {
		log.Warn(msgDebuggerAllowed)
	}
	served := make(chan error, len(listeners))
	for _, l := range listeners {
		go func() { served <- l.serve() }()
		log.Info(l.msg, "addr", l.ln.Addr().String(), "tls", tlsConfig != nil)
	}
	var errs []error
	pending := len(listeners)
	select {
	case err := <-served: // one listener failed: stop the others too
		errs = append(errs, err)
		pending--
	case <-ctx.Done():
	}
	log.Info("shutting down: draining in-flight requests")
	drainCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), drainTimeout)
	defer cancel()
	shutdown := make([]error, len(listeners))
	var cut atomic.Bool
	var wg sync.WaitGroup
	for i, l := range listeners {
		wg.Go(func() {
			err := l.srv.Shutdown(drainCtx)
			if errors.Is(err, context.DeadlineExceeded) {
				// A request still in flight (a client taking a long list
				// slowly, say) is cut, as a stalled one would be: the stop
				// is still a clean one.
				cut.Store(true)
				err = l.srv.Close()
			}
			shutdown[i] = err
		})
	}
	wg.Wait()
	if cut.Load() {
		log.Warn("shutting down: the drain time ran out, requests still in flight were cut", "drain_timeout", drainTimeout.String())
		for end := time.Now().Add(cutGrace); app.Limits.Usage().InFlight > 0 && time.Now().Before(end); {
			time.Sleep(10 * time.Millisecond)
		}
	}
	errs = append(errs, shutdown...)
	for range pending {
		if err := <-served; !errors.Is(err, http.ErrServerClosed) {
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return err
	}
	log.Info("stopped")
	return nil
}

// openFilesReserve is what the process keeps of its open-file limit
// beside client connections: database files and connections, the key
// store, the listeners, the log.
const openFilesReserve = 256

// checkOpenFiles refuses a cap on connections that the process's
// open-file limit (which Go raises to its hard limit at start) can't
// hold: connections would run out of descriptors before the cap, and the
// accept loop fail, for everyone, past it.
func checkOpenFiles(connections int) error {
	var rl syscall.Rlimit
	if connections <= 0 || syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl) != nil {
		return nil
	}
	if need := uint64(connections) + openFilesReserve; need > rl.Cur {
		return fmt.Errorf("--max-connections %d needs an open-file limit of %d at least, and the process has %d: raise it (LimitNOFILE=, ulimit -n) or lower --max-connections",
			connections, need, rl.Cur)
	}
	return nil
}

// atLeastTwoProcs lets two goroutines run Go code at once even on one CPU,
// unless GOMAXPROCS says otherwise. The SQLite store makes its system
// calls (fsync, pread) from Go code, through modernc's libc: with one P,
// every such call holds it until the runtime's monitor takes it back, and
// each request waits that long. A thread blocked in the kernel uses no
// CPU, so a second P costs nothing on one CPU and runs the other requests
// meanwhile. (Go sizes GOMAXPROCS to the CPUs the process may use: one
// when it is pinned to one, as the benchmark harness pins it.)
func atLeastTwoProcs(io IO) {
	if procs, _ := io.Env("GOMAXPROCS"); procs == "" && runtime.GOMAXPROCS(0) < 2 {
		runtime.GOMAXPROCS(2)
	}
}

// heapHeadroom is how far the heap may grow past what a collection left
// live before the next (gcpace), unless GOGC is set: with a live heap of
// 10-20 MiB, GOGC=100 collected about ten times a second under load.
// 32 MiB keeps the process within the memory the harness measures for
// every scenario (docs/benchmarks.md).
const heapHeadroom = 32 << 20

// gcPacePoll is how often gcpace looks for a finished collection.
const gcPacePoll = 100 * time.Millisecond

// listener is one address serve listens on, and its server.
type listener struct {
	msg     string // logged with the bound address once serving
	addr    string
	handler http.Handler
	ln      net.Listener
	srv     *http.Server
}

// bind binds the address.
func (l *listener) bind() error {
	ln, err := net.Listen("tcp", l.addr)
	if err != nil {
		return err
	}
	l.ln = ln
	return nil
}

// build builds the server of the bound address; with tlsConfig it will
// speak HTTPS only. A response has writeTimeout to go out from when its
// request arrived: the request's time limit, then writeSlack to write it (a
// streaming list sets its own deadlines as it goes).
func (l *listener) build(tlsConfig *tls.Config, writeTimeout time.Duration, log *slog.Logger) {
	if tlsConfig != nil {
		// A copy per server: ServeTLS writes its protocols (h2) into it.
		tlsConfig = tlsConfig.Clone()
	}
	l.srv = &http.Server{
		Handler:           l.handler,
		TLSConfig:         tlsConfig,
		ReadHeaderTimeout: readHeaderTimeout,
		ReadTimeout:       readTimeout,
		WriteTimeout:      writeTimeout,
		IdleTimeout:       idleTimeout,
		MaxHeaderBytes:    maxHeaderBytes,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
		// "OPTIONS *" goes to the handler, which answers it as the API
		// answers any path that is not one of its own (a JSON 404 with
		// X-Request-ID, logged), where Go would answer a bare 200.
		DisableGeneralOptionsHandler: true,
	}
}

// serve serves until Shutdown; it returns http.ErrServerClosed then.
func (l *listener) serve() error {
	if l.srv.TLSConfig != nil {
		// The certificate is in TLSConfig already, loaded before start.
		return l.srv.ServeTLS(l.ln, "", "")
	}
	return l.srv.Serve(l.ln)
}

// loadTLS loads the certificate and key, or returns nil when TLS is off.
// TLS 1.2 is the floor: older versions have known weaknesses and no client
// of this API needs them. Go negotiates TLS 1.3 whenever the client has it
// and chooses among secure cipher suites by itself; we keep those defaults
// rather than pin a list that would age. ServeTLS offers HTTP/2 as well.
func loadTLS(cfg config.Config) (*tls.Config, error) {
	if !cfg.TLS() {
		return nil, nil
	}
	if err := config.CheckTLSKey("--tls-key ("+config.EnvTLSKey+")", cfg.TLSKey); err != nil {
		return nil, err
	}
	cert, err := tls.LoadX509KeyPair(cfg.TLSCert, cfg.TLSKey)
	if err != nil {
		return nil, fmt.Errorf("--tls-cert and --tls-key: %v", err)
	}
	// A certificate out of its validity fails every client's handshake:
	// the server would start, and answer no one.
	leaf := cert.Leaf
	if leaf == nil {
		if leaf, err = x509.ParseCertificate(cert.Certificate[0]); err != nil {
			return nil, fmt.Errorf("--tls-cert: %v", err)
		}
	}
	switch now := time.Now(); {
	case now.After(leaf.NotAfter):
		return nil, fmt.Errorf("--tls-cert: the certificate expired at %s", leaf.NotAfter.UTC().Format(time.RFC3339))
	case now.Before(leaf.NotBefore):
		return nil, fmt.Errorf("--tls-cert: the certificate is not valid before %s", leaf.NotBefore.UTC().Format(time.RFC3339))
	}
	return &tls.Config{MinVersion: tls.VersionTLS12, Certificates: []tls.Certificate{cert}}, nil
}

// migrate applies pending migrations (opening the store does), prints the
// name of each it applied on stdout, one a line (or that none was
// pending), and exits.
func migrate(fs *flag.FlagSet, io IO) runFunc {
	var cfg config.Config
	cfg.BindDatabase(fs, io.Env)
	return func(ctx context.Context, _ []string) error {
		if err := cfg.Validate(); err != nil {
			return usagef("%v", err)
		}
		db, err := openStore(ctx, cfg, schema.New())
		if err != nil {
			return err
		}
		applied := db.Migrated()
		for _, name := range applied {
			fmt.Fprintf(io.Stdout, "applied %s\n", name)
		}
		if len(applied) == 0 {
			fmt.Fprintln(io.Stdout, "no pending migrations")
		}
		newLogger(io).Info("database schema is current", "applied", len(applied))
		return db.Close()
	}
}
