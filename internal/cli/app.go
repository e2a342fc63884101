package cli

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"

	"accounts/internal/auth"
	"accounts/internal/config"
	"accounts/internal/httpapi"
	"accounts/internal/keystore"
	"accounts/internal/limit"
	"accounts/internal/records"
	"accounts/internal/schema"
	"accounts/internal/seal"
	"accounts/internal/store"
	"accounts/internal/store/postgres"
	"accounts/internal/store/sqlite"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// openStore opens the configured database and applies pending migrations.
func openStore(ctx context.Context, cfg config.Config, catalog *schema.Catalog) (store.Store, error) {
	if cfg.IsPostgres() {
		return postgres.Open(ctx, cfg.Database, catalog)
	}
	return sqlite.Open(ctx, cfg.Database, catalog)
}

// App is the whole service wired together: what serve runs and what the
// end-to-end tests drive.
type App struct {
	Handler http.Handler
	// Metrics serves the Prometheus registry that Handler records into. The
	// Handler serves it on /metrics too, unless cfg.MetricsAddr moves it to
	// a listener of its own.
	Metrics http.Handler
	store   store.Store
	keys    *keystore.Store
}

// Close releases the database and the key store.
func (a *App) Close() error { return errors.Join(a.store.Close(), a.keys.Close()) }

// openKeys opens the configured key store and the master key.
func openKeys(ctx context.Context, cfg config.Config, log *slog.Logger) (*keystore.Store, *seal.MasterKey, error) {
	master, err := loadMasterKey(cfg, log)
	if err != nil {
		return nil, nil, err
	}
	location, err := cfg.KeyStoreLocation()
	if err != nil {
		return nil, nil, err
	}
	ks, err := keystore.Open(ctx, location)
	if err != nil {
		return nil, nil, err
	}
	return ks, master, nil
}

// OpenApp opens the database and the master key and builds the HTTP handler.
func OpenApp(ctx context.Context, cfg config.Config, log *slog.Logger) (*App, error) {
	catalog := schema.New()
	db, err := openStore(ctx, cfg, catalog)
	if err != nil {
		return nil, err
	}
	ks, master, err := openKeys(ctx, cfg, log)
	if err != nil {
		db.Close()
		return nil, err
	}
	var previous *seal.MasterKey
	if cfg.PreviousMasterKey != "" {
		if previous, err = seal.ParseMasterKey(cfg.PreviousMasterKey); err != nil {
			db.Close()
			ks.Close()
			return nil, fmt.Errorf("%s: %w", config.EnvPreviousMasterKey, err)
		}
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	limits := limit.New(cfg.Limits)
	srv := httpapi.New(httpapi.Options{
		Catalog:        catalog,
		Records:        records.New(catalog, db, seal.NewKeyring(master, previous, ks), limits),
		Auth:           auth.NewAuthenticator(db),
		Ready:          db.Ready,
		Logger:         log,
		Registry:       reg,
		Limits:         limits,
		RequestTimeout: cfg.RequestTimeout,
		OmitMetrics:    cfg.MetricsAddr != "",
	})
	metrics := promhttp.HandlerFor(reg, promhttp.HandlerOpts{})
	return &App{Handler: srv, Metrics: metrics, store: db, keys: ks}, nil
}
