package httpapi

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/insightops/insightops/shared/auth"
	"github.com/insightops/insightops/shared/store"
)

// AccountRecheck is how long the API trusts what it last read of a token's
// user: a user deactivated, removed or demoted in the System DB by another
// API replica loses that access within this time, not at the token's
// expiry (JWT_TTL). Changes made through this API take effect on the very
// next request (the entry is forgotten).
const AccountRecheck = 5 * time.Second

// accountTimeout bounds one read of a user for the recheck.
const accountTimeout = 2 * time.Second

// Reasons a valid token is refused because of its account.
const (
	reasonAccountInactive = "account_inactive"
	reasonAccountRemoved  = "account_removed"
	reasonAccountRole     = "account_invalid_role"
	// reasonTokenRevoked: the user's token version moved on (password,
	// role or active change) or the token was logged out.
	reasonTokenRevoked = "token_revoked"
	// reasonSystemDB: the System DB could not be read and nothing was
	// cached: the token is refused (fail closed) with a 503.
	reasonSystemDB = "system_db_unavailable"
)

// accounts caches, per e-mail, the user's state as the System DB last
// said it, and per jti whether a token was logged out; entries are read
// again after ttl. Only subjects of tokens the API signed reach it, so it
// holds at most one entry per real user and live token.
type accounts struct {
	db  *store.DB
	ttl time.Duration
	now func() time.Time

	mu      sync.Mutex
	m       map[string]account
	revoked map[string]revocation
}

// account is one user's state at a time.
type account struct {
	id         int64
	createdAt  time.Time
	role       auth.Role
	version    int64
	mustChange bool
	reason     string // why a token of this user is refused; "" when it is not
	at         time.Time
}

// revocation is whether one jti was logged out, as read at a time.
type revocation struct {
	revoked bool
	at      time.Time
}

func newAccounts(db *store.DB, ttl time.Duration) *accounts {
	return &accounts{db: db, ttl: ttl, now: time.Now, m: map[string]account{}, revoked: map[string]revocation{}}
}

// forget drops what is cached of email's user, so the next request reads
// it again (called after this API changed the user).
func (a *accounts) forget(email string) {
	a.mu.Lock()
	delete(a.m, store.NormalizeEmail(email))
	a.mu.Unlock()
}

// markRevoked records a logout of jti at once.
func (a *accounts) markRevoked(jti string) {
	a.mu.Lock()
	a.revoked[jti] = revocation{revoked: true, at: a.now()}
	a.mu.Unlock()
}

// check returns the role a token of cl may act with now and whether the
// user must change its password first: the token's role, lowered to the
// user's current one when the user was demoted, or a refusal reason when
// the user is inactive or gone, or the token was revoked. When the System
// DB cannot be read, what was last read stands; with nothing cached the
// token is refused with reasonSystemDB (fail closed; err says why).
func (a *accounts) check(ctx context.Context, cl auth.Claims) (role auth.Role, mustChange bool, reason string, err error) {
	now := a.now()
	a.mu.Lock()
	acc, ok := a.m[cl.Subject]
	a.mu.Unlock()
	if !ok || now.Sub(acc.at) >= a.ttl {
		fresh, rerr := a.read(ctx, cl.Subject)
		if rerr != nil {
			if !ok {
				return "", false, reasonSystemDB, rerr
			}
			// Keep using what was last read, and try again next time.
			err = rerr
		} else {
			fresh.at = now
			a.mu.Lock()
			a.m[cl.Subject] = fresh
			a.mu.Unlock()
			acc = fresh
		}
	}
	if acc.reason != "" {
		return "", false, acc.reason, err
	}
	if !issuedTo(cl, acc.id, acc.createdAt) {
		// The token's user was deleted; its e-mail is another user's now.
		return "", false, reasonAccountRemoved, err
	}
	if cl.Version < acc.version {
		return "", false, reasonTokenRevoked, err
	}
	if cl.ID != "" {
		revoked, rerr := a.loggedOut(ctx, cl.ID, now)
		if rerr != nil {
			return "", false, reasonSystemDB, rerr
		}
		if revoked {
			return "", false, reasonTokenRevoked, err
		}
	}
	if !auth.Allows(acc.role, cl.Role) {
		return acc.role, acc.mustChange, "", err // demoted since the token was issued
	}
	return cl.Role, acc.mustChange, "", err
}

// loggedOut reports whether jti was revoked by a logout, cached like the
// users; an unreadable System DB with nothing cached is an error.
func (a *accounts) loggedOut(ctx context.Context, jti string, now time.Time) (bool, error) {
	a.mu.Lock()
	r, ok := a.revoked[jti]
	a.mu.Unlock()
	if ok && (r.revoked || now.Sub(r.at) < a.ttl) {
		return r.revoked, nil
	}
	ctx, cancel := context.WithTimeout(ctx, accountTimeout)
	defer cancel()
	revoked, err := a.db.TokenRevoked(ctx, jti)
	if err != nil {
		if ok {
			return r.revoked, nil
		}
		return false, err
	}
	a.mu.Lock()
	a.revoked[jti] = revocation{revoked: revoked, at: now}
	if len(a.revoked) > 100000 { // bound the cache; entries are cheap to read again
		clear(a.revoked)
	}
	a.mu.Unlock()
	return revoked, nil
}

// read asks the System DB for email's user.
func (a *accounts) read(ctx context.Context, email string) (account, error) {
	ctx, cancel := context.WithTimeout(ctx, accountTimeout)
	defer cancel()
	u, err := a.db.UserByEmail(ctx, email)
	switch {
	case errors.Is(err, store.ErrNotFound):
		return account{reason: reasonAccountRemoved}, nil
	case err != nil:
		return account{}, err
	case !u.Active:
		return account{reason: reasonAccountInactive}, nil
	}
	role, err := auth.ParseRole(u.Role)
	if err != nil {
		return account{reason: reasonAccountRole}, nil
	}
	return account{id: u.ID, createdAt: u.CreatedAt, role: role, version: u.TokenVersion, mustChange: u.MustChangePassword}, nil
}

// issuedTo reports whether a login token of cl was issued to the user
// with id created at createdAt, not to an earlier user of the same e-mail
// (deleted since; the new user starts again at token version 0, so "ver"
// alone cannot tell them apart). A token carrying the user id (uid) must
// name this user; one issued before uid existed must not be older than
// the user, give or take its whole-second iat and the clock skew between
// replicas (auth.Leeway).
func issuedTo(cl auth.Claims, id int64, createdAt time.Time) bool {
	if cl.UserID != 0 {
		return cl.UserID == id
	}
	return !cl.IssuedAt.Add(time.Second + auth.Leeway).Before(createdAt)
}
