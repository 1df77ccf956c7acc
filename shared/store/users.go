package store

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"
)

// Roles a user can hold (the users.role CHECK constraint).
const (
	RoleAdmin    = "admin"
	RoleOperator = "operator"
	RoleViewer   = "viewer"
)

// User is a row of the users table.
type User struct {
	ID           int64
	Email        string // always lower-case
	PasswordHash string
	Role         string // RoleAdmin, RoleOperator or RoleViewer
	Active       bool
	CreatedAt    time.Time
	// TokenVersion is raised by every change of password, role or active
	// flag; tokens issued under an older version are refused.
	TokenVersion int64
	// MustChangePassword is set while the password is one someone else
	// chose (an admin, a reset, production init): the user must change it.
	MustChangePassword bool
	// PasswordChangedAt is when the password was last set; zero before the
	// accounts migration.
	PasswordChangedAt time.Time
}

// NormalizeEmail returns the form emails are stored and looked up in:
// trimmed and lower-cased, so matching is case-insensitive.
func NormalizeEmail(email string) string { return strings.ToLower(strings.TrimSpace(email)) }

func validRole(role string) bool {
	return role == RoleAdmin || role == RoleOperator || role == RoleViewer
}

// CreateUserIfAbsent inserts an active user unless one with the same email
// (compared case-insensitively) exists; an existing user is never
// overwritten. created reports whether a row was inserted.
func (db *DB) CreateUserIfAbsent(ctx context.Context, email, passwordHash, role string) (created bool, err error) {
	email = NormalizeEmail(email)
	switch {
	case email == "":
		return false, errors.New("store: create user: empty email")
	case passwordHash == "":
		return false, fmt.Errorf("store: create user %s: empty password hash", email)
	case !validRole(role):
		return false, fmt.Errorf("store: create user %s: invalid role %q (want admin, operator or viewer)", email, role)
	}
	now := db.timeArg(time.Now())
	res, err := db.SQL.ExecContext(ctx, db.Rebind(
		`INSERT INTO users (email, password_hash, role, is_active, created_at, updated_at)
		 VALUES (?, ?, ?, ?, ?, ?)
		 ON CONFLICT (email) DO NOTHING`),
		email, passwordHash, role, true, now, now)
	if err != nil {
		return false, fmt.Errorf("store: create user %s: %w", email, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return false, fmt.Errorf("store: create user %s: %w", email, err)
	}
	return n > 0, nil
}

// UserByEmail returns the user with this email, compared
// case-insensitively, or an error wrapping [ErrNotFound].
func (db *DB) UserByEmail(ctx context.Context, email string) (User, error) {
	return db.userBy(ctx, db.SQL, "email", NormalizeEmail(email))
}
