package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// ServiceToken is a row of service_tokens: a named credential for
// automation, bound to a role, of which only the hash is stored.
type ServiceToken struct {
	ID         int64
	Name       string
	TokenHash  string // hex SHA-256 of the secret
	Role       string
	CreatedBy  string
	CreatedAt  time.Time
	ExpiresAt  time.Time
	LastUsedAt time.Time // zero when never used
}

const serviceTokenColumns = `id, name, token_hash, role, created_by, created_at, expires_at, last_used_at` //nolint:gosec // G101: column names, not a credential

func scanServiceToken(r rowScanner) (ServiceToken, error) {
	var t ServiceToken
	err := r.Scan(&t.ID, &t.Name, &t.TokenHash, &t.Role, &t.CreatedBy, scanTime{&t.CreatedAt}, scanTime{&t.ExpiresAt}, scanTime{&t.LastUsedAt})
	return t, err
}

// CreateServiceToken inserts t (ID, CreatedAt and LastUsedAt are set by
// the database) and returns it; a token of the same name or hash wraps
// [ErrExists].
func (db *DB) CreateServiceToken(ctx context.Context, t ServiceToken) (ServiceToken, error) {
	switch {
	case t.Name == "" || t.TokenHash == "" || t.CreatedBy == "":
		return ServiceToken{}, errors.New("store: create service token: name, hash and creator are required")
	case !validRole(t.Role):
		return ServiceToken{}, fmt.Errorf("store: create service token %s: invalid role %q", t.Name, t.Role)
	}
	out, err := scanServiceToken(db.SQL.QueryRowContext(ctx, db.Rebind(
		`INSERT INTO service_tokens (name, token_hash, role, created_by, created_at, expires_at)
		 VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING RETURNING `+serviceTokenColumns),
		t.Name, t.TokenHash, t.Role, t.CreatedBy, db.timeArg(time.Now()), db.timeArg(t.ExpiresAt)))
	if errors.Is(err, sql.ErrNoRows) {
		return ServiceToken{}, fmt.Errorf("store: create service token %s: %w", t.Name, ErrExists)
	}
	if err != nil {
		return ServiceToken{}, fmt.Errorf("store: create service token %s: %w", t.Name, err)
	}
	return out, nil
}

// ListServiceTokens returns every service token, by id.
func (db *DB) ListServiceTokens(ctx context.Context) ([]ServiceToken, error) {
	rows, err := db.SQL.QueryContext(ctx, `SELECT `+serviceTokenColumns+` FROM service_tokens ORDER BY id`)
	if err != nil {
		return nil, fmt.Errorf("store: list service tokens: %w", err)
	}
	defer rows.Close()
	out := []ServiceToken{}
	for rows.Next() {
		t, err := scanServiceToken(rows)
		if err != nil {
			return nil, fmt.Errorf("store: list service tokens: %w", err)
		}
		out = append(out, t)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: list service tokens: %w", err)
	}
	return out, nil
}

// ServiceTokenByHash returns the token whose secret hashes to hash, or an
// error wrapping [ErrNotFound].
func (db *DB) ServiceTokenByHash(ctx context.Context, hash string) (ServiceToken, error) {
	t, err := scanServiceToken(db.SQL.QueryRowContext(ctx, db.Rebind(`SELECT `+serviceTokenColumns+` FROM service_tokens WHERE token_hash = ?`), hash))
	if errors.Is(err, sql.ErrNoRows) {
		return ServiceToken{}, fmt.Errorf("store: service token: %w", ErrNotFound)
	}
	if err != nil {
		return ServiceToken{}, fmt.Errorf("store: service token: %w", err)
	}
	return t, nil
}

// TouchServiceToken records a use of token id at.
func (db *DB) TouchServiceToken(ctx context.Context, id int64, at time.Time) error {
	if _, err := db.SQL.ExecContext(ctx, db.Rebind(`UPDATE service_tokens SET last_used_at = ? WHERE id = ?`), db.timeArg(at), id); err != nil {
		return fmt.Errorf("store: touch service token %d: %w", id, err)
	}
	return nil
}

// DeleteServiceToken revokes (removes) token id and returns it as it was;
// an unknown id wraps [ErrNotFound].
func (db *DB) DeleteServiceToken(ctx context.Context, id int64) (ServiceToken, error) {
	t, err := scanServiceToken(db.SQL.QueryRowContext(ctx, db.Rebind(`DELETE FROM service_tokens WHERE id = ? RETURNING `+serviceTokenColumns), id))
	if errors.Is(err, sql.ErrNoRows) {
		return ServiceToken{}, fmt.Errorf("store: service token %d: %w", id, ErrNotFound)
	}
	if err != nil {
		return ServiceToken{}, fmt.Errorf("store: service token %d: %w", id, err)
	}
	return t, nil
}
