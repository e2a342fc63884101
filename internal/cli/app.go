package cli

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net/http"
	"syscall"

	"accounts/internal/auth"
	"accounts/internal/config"
	"accounts/internal/httpapi"
	"accounts/internal/limit"
	"accounts/internal/masterkey"
	"accounts/internal/records"
	"accounts/internal/schema"
	"accounts/internal/seal"
	"accounts/internal/store"
	"accounts/internal/store/pgsafe"
	"accounts/internal/store/postgres"
	"accounts/internal/store/sqlite"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// openStore opens the configured database and applies pending migrations.
func openStore(ctx context.Context, cfg config.Config, catalog *schema.Catalog) (store.Store, error) {
	if cfg.IsPostgres() {
		db, err := postgres.Open(ctx, cfg.Database, catalog)
		return db, refuseDatabase(err)
	}
	db, err := sqlite.Open(ctx, cfg.Database, catalog)
	if err != nil {
		return nil, refuseDatabase(err)
	}
	return db, nil
}

// refuseDatabase makes a refusal to start (exit 2) of a PostgreSQL URL
// that does not parse, of an SQLite file that is not a database, and of
// what refuseMisconfigured refuses.
func refuseDatabase(err error) error {
	if errors.Is(err, postgres.ErrURL) {
		return refuse(fmt.Errorf("%w (--database, env %s)", err, config.EnvDatabase))
	}
	if sqlite.NotADatabase(err) {
		return refuse(fmt.Errorf("--database (env %s): the file is not an SQLite database (%w)", config.EnvDatabase, err))
	}
	return refuseMisconfigured(err, fmt.Sprintf("--database (env %s)", config.EnvDatabase))
}

// refuseMisconfigured makes a refusal to start (exit 2) of a PostgreSQL
// server that refuses what the URL names (a database that does not exist,
// a user or password it refuses) or would lose acknowledged writes
// (postgres.ErrNotDurable): those do not pass by themselves, and a unit
// that restarts on failure would loop. what names the setting. A server
// that does not answer stays a failure (exit 1): it may in a moment.
func refuseMisconfigured(err error, what string) error {
	if errors.Is(err, postgres.ErrNotDurable) || unusablePath(err) {
		return refuse(fmt.Errorf("%s: %w", what, err))
	}
	if reason, ok := pgsafe.Misconfigured(err); ok {
		return refuse(fmt.Errorf("%s: %s (%w)", what, reason, err))
	}
	return err
}

// unusablePath reports whether err is the file system's refusal of a
// path that no retry mends: a path through a file, a folder that can't be
// made (read-only, or on a file system that takes none, such as /proc),
// or one the process may not write.
func unusablePath(err error) bool {
	var pe *fs.PathError
	return errors.As(err, &pe) && (errors.Is(err, fs.ErrPermission) || errors.Is(err, syscall.ENOTDIR) ||
		errors.Is(err, syscall.EROFS) || errors.Is(err, syscall.ENOENT))
}

// keyStoreFailed is the error of a key store at where that could not be
// opened: a refusal when refuseMisconfigured says so.
func keyStoreFailed(where string, err error) error {
	return refuseMisconfigured(fmt.Errorf("opening the key store %s: %w", where, err),
		fmt.Sprintf("--key-store (env %s)", config.EnvKeyStore))
}

// App is the whole service wired together: what serve runs and what the
// end-to-end tests drive.
type App struct {
	Handler http.Handler
	// Metrics serves the Prometheus registry that Handler records into. The
	// Handler serves it on /metrics too, unless cfg.MetricsAddr moves it to
	// a listener of its own.
	Metrics http.Handler
	// Limits admit the requests Handler serves, and the connections of
	// the listener it is served on (limit.Limits.Listener).
	Limits *limit.Limits
	store  store.Store
	keys   *keys
}

// Close releases the database and the key store.
func (a *App) Close() error { return errors.Join(a.store.Close(), a.keys.Close()) }

// OpenApp checks the whole configuration, then the master key against the
// key store, then opens the database (applying pending migrations) and
// builds the HTTP handler: a configuration it refuses (a *UsageError)
// changes nothing.
func OpenApp(ctx context.Context, cfg config.Config, log *slog.Logger) (*App, error) {
	if err := cfg.Validate(); err != nil {
		return nil, usagef("%v", err)
	}
	keys, err := openKeys(ctx, cfg, log)
	if err != nil {
		return nil, err
	}
	catalog := schema.New()
	db, err := openStore(ctx, cfg, catalog)
	if err != nil {
		keys.Close()
		return nil, err
	}
	if applied := db.Migrated(); len(applied) > 0 {
		log.Info("applied migrations", "migrations", applied)
	}
	checker := masterkey.NewChecker(keys.masters, keys.store, keys.where, log)
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	limits := limit.New(cfg.Limits)
	recs := records.New(catalog, db, seal.NewKeyringFrom(keys.masters, keys.store), limits)
	srv := httpapi.New(httpapi.Options{
		Catalog: catalog,
		Records: recs,
		Auth:    auth.NewAuthenticator(db),
		// Ready while the database answers, writes and reads' audit
		// entries commit, and the master key in hand opens the key
		// store: a server left with the old key after a rotation leaves
		// the load balancer instead of failing requests.
		Ready: func(ctx context.Context) error {
			if err := db.Ready(ctx); err != nil {
				return err
			}
			if err := recs.Ready(); err != nil {
				return err
			}
			return checker.Ready(ctx)
		},
		Logger:         log,
		Registry:       reg,
		Limits:         limits,
		RequestTimeout: cfg.RequestTimeout,
		OmitMetrics:    cfg.MetricsAddr != "",
	})
	metrics := httpapi.MetricsHandler(reg)
	return &App{Handler: srv, Metrics: metrics, Limits: limits, store: db, keys: keys}, nil
}
