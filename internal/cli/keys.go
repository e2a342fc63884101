package cli

import (
	"errors"
	"fmt"
	"log/slog"
	"os"

	"accounts/internal/config"
	"accounts/internal/seal"
)

// loadMasterKey returns the master key from ACCOUNTS_MASTER_KEY, else from
// the key file. With SQLite and neither given, it uses the key file beside
// the database, generating it (mode 0600) on first use and saying so in the
// log; the key itself is never logged.
func loadMasterKey(cfg config.Config, log *slog.Logger) (*seal.MasterKey, error) {
	if cfg.MasterKey != "" {
		k, err := seal.ParseMasterKey(cfg.MasterKey)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", config.EnvMasterKey, err)
		}
		return k, nil
	}
	path := cfg.KeyFile
	if path == "" {
		if cfg.IsPostgres() {
			return nil, errors.New("a master key is required with PostgreSQL: set " + config.EnvMasterKey + " or --key-file")
		}
		path = cfg.GeneratedKeyFile()
		if err := generateKeyFile(path); err == nil {
			log.Warn("generated a new master key file; keep it safe and apart from database backups", "path", path)
		} else if !errors.Is(err, os.ErrExist) {
			return nil, fmt.Errorf("generating master key file: %w", err)
		}
	}
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading master key file: %w", err)
	}
	k, err := seal.ParseMasterKey(string(raw))
	if err != nil {
		return nil, fmt.Errorf("master key file %s: %w", path, err)
	}
	return k, nil
}

// generateKeyFile writes a new key to path unless the file exists.
func generateKeyFile(path string) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	if _, err := f.WriteString(seal.GenerateMasterKey() + "\n"); err != nil {
		f.Close()
		os.Remove(path)
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
