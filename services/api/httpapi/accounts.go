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
// user: a user deactivated, removed or demoted in the System DB loses that
// access within this time, not at the token's expiry (JWT_TTL).
const AccountRecheck = 5 * time.Second

// accountTimeout bounds one read of a user for the recheck.
const accountTimeout = 2 * time.Second

// Reasons a valid token is refused because of its account.
const (
	reasonAccountInactive = "account_inactive"
	reasonAccountRemoved  = "account_removed"
	reasonAccountRole     = "account_invalid_role"
)

// accounts caches, per e-mail, the user's state as the System DB last
// said it; entries are read again after ttl. Only subjects of tokens the
// API signed reach it, so it holds at most one entry per real user.
type accounts struct {
	db  *store.DB
	ttl time.Duration
	now func() time.Time

	mu sync.Mutex
	m  map[string]account
}

// account is one user's state at a time.
type account struct {
	role   auth.Role
	reason string // why a token of this user is refused; "" when it is not
	at     time.Time
}

func newAccounts(db *store.DB, ttl time.Duration) *accounts {
	return &accounts{db: db, ttl: ttl, now: time.Now, m: map[string]account{}}
}

// check returns the role a token of cl may act with now: the token's role,
// lowered to the user's current one when the user was demoted, or a
// refusal reason when the user is inactive or gone. When the System DB
// cannot be read the signed token stands (err says why, for the log): the
// health routes must stay reachable while that database is down.
func (a *accounts) check(ctx context.Context, cl auth.Claims) (role auth.Role, reason string, err error) {
	now := a.now()
	a.mu.Lock()
	acc, ok := a.m[cl.Subject]
	a.mu.Unlock()
	if !ok || now.Sub(acc.at) >= a.ttl {
		fresh, rerr := a.read(ctx, cl.Subject)
		if rerr != nil {
			if !ok {
				return cl.Role, "", rerr
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
		return "", acc.reason, err
	}
	if !auth.Allows(acc.role, cl.Role) {
		return acc.role, "", err // demoted since the token was issued
	}
	return cl.Role, "", err
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
	return account{role: role}, nil
}
