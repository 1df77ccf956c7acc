package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// Keys the init job writes in the configurations table, read by the API's
// health (backup grace period) and the all-in-one's first-start check.
const (
	// ConfigInitCompletedAt is when init last completed, RFC 3339.
	ConfigInitCompletedAt = "init.completed_at"
	// ConfigInitJobID is the id of the init job that wrote it.
	ConfigInitJobID = "init.job_id"
)

// SetConfig stores value under key in the configurations table, replacing
// any previous value.
func (db *DB) SetConfig(ctx context.Context, key, value string) error {
	if key == "" {
		return errors.New("store: set config: empty key")
	}
	_, err := db.SQL.ExecContext(ctx, db.Rebind(
		`INSERT INTO configurations (key, value, updated_at) VALUES (?, ?, ?)
		 ON CONFLICT (key) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at`),
		key, value, db.timeArg(time.Now()))
	if err != nil {
		return fmt.Errorf("store: set config %q: %w", key, err)
	}
	return nil
}

// GetConfig returns the value stored under key, or an error wrapping
// [ErrNotFound].
func (db *DB) GetConfig(ctx context.Context, key string) (string, error) {
	var v string
	err := db.SQL.QueryRowContext(ctx, db.Rebind(`SELECT value FROM configurations WHERE key = ?`), key).Scan(&v)
	if errors.Is(err, sql.ErrNoRows) {
		return "", fmt.Errorf("store: config %q: %w", key, ErrNotFound)
	}
	if err != nil {
		return "", fmt.Errorf("store: config %q: %w", key, err)
	}
	return v, nil
}
