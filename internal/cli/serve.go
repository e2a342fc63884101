package cli

import (
	"context"
	"errors"
	"flag"
	"log/slog"
	"net"
	"net/http"
	"time"

	"accounts/internal/config"
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
	// drainTimeout bounds how long a shutdown waits for in-flight requests.
	drainTimeout = 30 * time.Second
)

func newLogger(io IO) *slog.Logger {
	return slog.New(slog.NewJSONHandler(io.Stderr, nil))
}

// serve runs the HTTP API until ctx is cancelled (SIGTERM or SIGINT), then
// drains in-flight requests and returns nil.
func serve(ctx context.Context, args []string, io IO) error {
	var cfg config.Config
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	cfg.BindDatabase(fs, io.Env)
	cfg.BindKeys(fs, io.Env)
	cfg.BindServe(fs, io.Env)
	cfg.BindLimits(fs, io.Env)
	if err := parse(fs, args, io.Stdout); err != nil {
		return err
	}
	if err := cfg.Validate(); err != nil {
		return usagef("%v", err)
	}
	log := newLogger(io)
	app, err := OpenApp(ctx, cfg, log)
	if err != nil {
		return err
	}
	defer app.Close()
	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return err
	}
	srv := &http.Server{
		Handler:           app.Handler,
		ReadHeaderTimeout: readHeaderTimeout,
		ReadTimeout:       readTimeout,
		// A response has writeSlack to go out once its work is done (a
		// streaming list sets its own deadlines as it goes).
		WriteTimeout:   cfg.RequestTimeout + writeSlack,
		IdleTimeout:    idleTimeout,
		MaxHeaderBytes: maxHeaderBytes,
		ErrorLog:       slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	log.Info("listening", "addr", ln.Addr().String())
	select {
	case err := <-served:
		return err
	case <-ctx.Done():
	}
	log.Info("shutting down: draining in-flight requests")
	drainCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), drainTimeout)
	defer cancel()
	if err := srv.Shutdown(drainCtx); err != nil {
		return err
	}
	if err := <-served; !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	log.Info("stopped")
	return nil
}

// migrate applies pending migrations (opening the store does) and exits.
func migrate(ctx context.Context, args []string, io IO) error {
	var cfg config.Config
	fs := flag.NewFlagSet("migrate", flag.ContinueOnError)
	cfg.BindDatabase(fs, io.Env)
	if err := parse(fs, args, io.Stdout); err != nil {
		return err
	}
	if err := cfg.Validate(); err != nil {
		return usagef("%v", err)
	}
	db, err := openStore(ctx, cfg, schema.New())
	if err != nil {
		return err
	}
	newLogger(io).Info("database schema is current")
	return db.Close()
}
