package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"
)

// Errors of the account functions; test with errors.Is.
var (
	// ErrExists is returned when a user or service token of that name
	// already exists.
	ErrExists = errors.New("store: already exists")
	// ErrLastAdmin is returned by a change that would leave no active admin.
	ErrLastAdmin = errors.New("store: the last active admin cannot be removed, demoted or deactivated")
)

// userColumns are the columns scanUser reads, in its order.
const userColumns = `id, email, password_hash, role, is_active, created_at, token_version, must_change_password, password_changed_at`

type rowScanner interface{ Scan(dest ...any) error }

func scanUser(r rowScanner) (User, error) {
	var u User
	err := r.Scan(&u.ID, &u.Email, &u.PasswordHash, &u.Role, &u.Active, scanTime{&u.CreatedAt},
		&u.TokenVersion, &u.MustChangePassword, scanTime{&u.PasswordChangedAt})
	return u, err
}

// NewUser is what CreateUser inserts.
type NewUser struct {
	Email        string
	PasswordHash string
	Role         string
	// MustChangePassword forces a change at the first login (a password
	// chosen by someone else).
	MustChangePassword bool
}

// CreateUser inserts an active user and returns it; a user with the same
// e-mail (case-insensitive) is an error wrapping [ErrExists].
func (db *DB) CreateUser(ctx context.Context, nu NewUser) (User, error) {
	email := NormalizeEmail(nu.Email)
	switch {
	case email == "":
		return User{}, errors.New("store: create user: empty email")
	case nu.PasswordHash == "":
		return User{}, fmt.Errorf("store: create user %s: empty password hash", email)
	case !validRole(nu.Role):
		return User{}, fmt.Errorf("store: create user %s: invalid role %q (want admin, operator or viewer)", email, nu.Role)
	}
	now := db.timeArg(time.Now())
	u, err := scanUser(db.SQL.QueryRowContext(ctx, db.Rebind(
		`INSERT INTO users (email, password_hash, role, is_active, created_at, updated_at, must_change_password, password_changed_at)
		 VALUES (?, ?, ?, ?, ?, ?, ?, ?)
		 ON CONFLICT (email) DO NOTHING
		 RETURNING `+userColumns),
		email, nu.PasswordHash, nu.Role, true, now, now, nu.MustChangePassword, now))
	if errors.Is(err, sql.ErrNoRows) {
		return User{}, fmt.Errorf("store: create user %s: %w", email, ErrExists)
	}
	if err != nil {
		return User{}, fmt.Errorf("store: create user %s: %w", email, err)
	}
	return u, nil
}

// UserByID returns the user with this id, or an error wrapping
// [ErrNotFound].
func (db *DB) UserByID(ctx context.Context, id int64) (User, error) {
	return db.userBy(ctx, db.SQL, "id", id)
}

type queryRower interface {
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// userBy reads the user whose column equals key through q (the pool or a
// transaction); no row wraps [ErrNotFound].
func (db *DB) userBy(ctx context.Context, q queryRower, column string, key any) (User, error) {
	u, err := scanUser(q.QueryRowContext(ctx, db.Rebind(`SELECT `+userColumns+` FROM users WHERE `+column+` = ?`), key))
	if errors.Is(err, sql.ErrNoRows) {
		return User{}, fmt.Errorf("store: user %v: %w", key, ErrNotFound)
	}
	if err != nil {
		return User{}, fmt.Errorf("store: user %v: %w", key, err)
	}
	return u, nil
}

// ListUsers returns every user, by id.
func (db *DB) ListUsers(ctx context.Context) ([]User, error) {
	return db.queryUsers(ctx, `SELECT `+userColumns+` FROM users ORDER BY id`)
}

// ActiveAdmins returns the active users with the admin role, by id.
func (db *DB) ActiveAdmins(ctx context.Context) ([]User, error) {
	return db.queryUsers(ctx, `SELECT `+userColumns+` FROM users WHERE role = ? AND is_active = ? ORDER BY id`, RoleAdmin, true)
}

func (db *DB) queryUsers(ctx context.Context, q string, args ...any) ([]User, error) {
	rows, err := db.SQL.QueryContext(ctx, db.Rebind(q), args...)
	if err != nil {
		return nil, fmt.Errorf("store: list users: %w", err)
	}
	defer rows.Close()
	users := []User{}
	for rows.Next() {
		u, err := scanUser(rows)
		if err != nil {
			return nil, fmt.Errorf("store: list users: %w", err)
		}
		users = append(users, u)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: list users: %w", err)
	}
	return users, nil
}

// UserPatch is a change of a user's role and/or active flag; nil fields
// stay as they are.
type UserPatch struct {
	Role   *string
	Active *bool
}

// UpdateUser applies p to user id and raises its token version when
// anything changed, so its existing tokens stop working. A change that
// would leave no active admin fails with [ErrLastAdmin] and changes
// nothing; an unknown id wraps [ErrNotFound].
func (db *DB) UpdateUser(ctx context.Context, id int64, p UserPatch) (User, error) {
	if p.Role != nil && !validRole(*p.Role) {
		return User{}, fmt.Errorf("store: update user %d: invalid role %q (want admin, operator or viewer)", id, *p.Role)
	}
	var u User
	err := db.guardAdmins(ctx, id, func(tx *sql.Tx) error {
		var sets []string
		var args []any
		if p.Role != nil {
			sets, args = append(sets, "role = ?"), append(args, *p.Role)
		}
		if p.Active != nil {
			sets, args = append(sets, "is_active = ?"), append(args, *p.Active)
		}
		if len(sets) > 0 {
			// Only a real change raises the version.
			q := `UPDATE users SET ` + strings.Join(sets, ", ") + `, updated_at = ?, token_version = token_version + 1
			      WHERE id = ? AND NOT (` + strings.Join(sets, " AND ") + `)`
			all := append(append(append([]any{}, args...), db.timeArg(time.Now()), id), args...)
			if _, err := tx.ExecContext(ctx, db.Rebind(q), all...); err != nil {
				return err
			}
		}
		var err error
		u, err = db.userBy(ctx, tx, "id", id)
		return err
	})
	if err != nil {
		return User{}, fmt.Errorf("store: update user %d: %w", id, err)
	}
	return u, nil
}

// DeleteUser removes user id and returns it as it was. Removing the last
// active admin fails with [ErrLastAdmin]; an unknown id wraps
// [ErrNotFound].
func (db *DB) DeleteUser(ctx context.Context, id int64) (User, error) {
	var u User
	err := db.guardAdmins(ctx, id, func(tx *sql.Tx) error {
		var err error
		if u, err = db.userBy(ctx, tx, "id", id); err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, db.Rebind(`DELETE FROM users WHERE id = ?`), id)
		return err
	})
	if err != nil {
		return User{}, fmt.Errorf("store: delete user %d: %w", id, err)
	}
	return u, nil
}

// guardAdmins runs change on user id in a transaction and rolls it back
// with ErrLastAdmin when there was an active admin before and none after.
// The transaction holds the active admins and the user: on PostgreSQL it
// locks their rows in id order (FOR UPDATE; one order, so two guards
// cannot deadlock), and SQLite transactions take the write lock when they
// begin (_txlock=immediate).
func (db *DB) guardAdmins(ctx context.Context, id int64, change func(*sql.Tx) error) error {
	return db.inTx(ctx, func(tx *sql.Tx) error {
		lock := ""
		if db.dialect == Postgres {
			lock = " FOR UPDATE"
		}
		rows, err := tx.QueryContext(ctx, db.Rebind(
			`SELECT id, role, is_active FROM users WHERE (role = ? AND is_active = ?) OR id = ? ORDER BY id`+lock),
			RoleAdmin, true, id)
		if err != nil {
			return err
		}
		exists, before := false, 0
		for rows.Next() {
			var rid int64
			var role string
			var active bool
			if err := rows.Scan(&rid, &role, &active); err != nil {
				rows.Close() //nolint:sqlclosecheck // closed on this early return; the normal path closes it after the loop
				return err
			}
			exists = exists || rid == id
			if role == RoleAdmin && active {
				before++
			}
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		if !exists {
			return ErrNotFound
		}
		if err := change(tx); err != nil {
			return err
		}
		var after int
		if err := tx.QueryRowContext(ctx, db.Rebind(`SELECT count(*) FROM users WHERE role = ? AND is_active = ?`), RoleAdmin, true).Scan(&after); err != nil {
			return err
		}
		if before > 0 && after == 0 {
			return ErrLastAdmin
		}
		return nil
	})
}

// SetPassword replaces user id's password hash, raises its token version
// (every token of the user stops working) and sets or clears the forced
// change. An unknown id wraps [ErrNotFound].
func (db *DB) SetPassword(ctx context.Context, id int64, hash string, mustChange bool) (User, error) {
	if hash == "" {
		return User{}, fmt.Errorf("store: set password of user %d: empty hash", id)
	}
	now := db.timeArg(time.Now())
	u, err := scanUser(db.SQL.QueryRowContext(ctx, db.Rebind(
		`UPDATE users SET password_hash = ?, must_change_password = ?, password_changed_at = ?, updated_at = ?,
		        token_version = token_version + 1
		 WHERE id = ? RETURNING `+userColumns), hash, mustChange, now, now, id))
	if errors.Is(err, sql.ErrNoRows) {
		return User{}, fmt.Errorf("store: set password of user %d: %w", id, ErrNotFound)
	}
	if err != nil {
		return User{}, fmt.Errorf("store: set password of user %d: %w", id, err)
	}
	return u, nil
}

// RevokeToken records that the login token jti is revoked until
// expiresAt (its own expiry); records of expired tokens are pruned.
func (db *DB) RevokeToken(ctx context.Context, jti string, expiresAt time.Time) error {
	if jti == "" {
		return errors.New("store: revoke token: empty id")
	}
	err := db.inTx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, db.Rebind(`DELETE FROM revoked_tokens WHERE expires_at < ?`), db.timeArg(time.Now())); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, db.Rebind(`INSERT INTO revoked_tokens (jti, expires_at) VALUES (?, ?) ON CONFLICT (jti) DO NOTHING`),
			jti, db.timeArg(expiresAt))
		return err
	})
	if err != nil {
		return fmt.Errorf("store: revoke token: %w", err)
	}
	return nil
}

// TokenRevoked reports whether the login token jti was revoked.
func (db *DB) TokenRevoked(ctx context.Context, jti string) (bool, error) {
	var one int
	err := db.SQL.QueryRowContext(ctx, db.Rebind(`SELECT 1 FROM revoked_tokens WHERE jti = ?`), jti).Scan(&one)
	if errors.Is(err, sql.ErrNoRows) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("store: read revoked token: %w", err)
	}
	return true, nil
}
