package httpapi

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/insightops/insightops/shared/auth"
	"github.com/insightops/insightops/shared/store"
)

// ServiceTokenTouch is how often a service token's last use is written
// to the System DB at most.
const ServiceTokenTouch = time.Minute

// Reasons a service token is refused.
const (
	reasonServiceTokenUnknown = "service_token_unknown" // never issued, or revoked
	reasonServiceTokenExpired = "service_token_expired"
)

// serviceTokens checks service tokens against the System DB, caching each
// for ttl like accounts caches users (a revocation through this API is
// effective at once: forget).
type serviceTokens struct {
	db  *store.DB
	ttl time.Duration
	now func() time.Time

	mu sync.Mutex
	m  map[string]cachedServiceToken // by hash
}

type cachedServiceToken struct {
	tok     store.ServiceToken
	found   bool
	at      time.Time
	touched time.Time
}

func newServiceTokens(db *store.DB, ttl time.Duration) *serviceTokens {
	return &serviceTokens{db: db, ttl: ttl, now: time.Now, m: map[string]cachedServiceToken{}}
}

// forget drops every cached token, so the next request reads again.
func (s *serviceTokens) forget() {
	s.mu.Lock()
	clear(s.m)
	s.mu.Unlock()
}

// check returns the claims the service token secret acts with (Subject
// "token:<name>"), or a refusal reason; reasonSystemDB when the System DB
// cannot be read and nothing is cached.
func (s *serviceTokens) check(ctx context.Context, secret string) (auth.Claims, string, error) {
	hash := auth.HashServiceToken(secret)
	now := s.now()
	s.mu.Lock()
	e, ok := s.m[hash]
	s.mu.Unlock()
	var err error
	if !ok || now.Sub(e.at) >= s.ttl {
		rctx, cancel := context.WithTimeout(ctx, accountTimeout)
		t, rerr := s.db.ServiceTokenByHash(rctx, hash)
		cancel()
		switch {
		case errors.Is(rerr, store.ErrNotFound):
			e = cachedServiceToken{at: now, touched: e.touched}
		case rerr != nil:
			if !ok {
				return auth.Claims{}, reasonSystemDB, rerr
			}
			err = rerr
		default:
			e = cachedServiceToken{tok: t, found: true, at: now, touched: e.touched}
		}
		s.mu.Lock()
		if len(s.m) > 10000 {
			clear(s.m)
		}
		s.m[hash] = e
		s.mu.Unlock()
	}
	if !e.found {
		return auth.Claims{}, reasonServiceTokenUnknown, err
	}
	cl := auth.Claims{Subject: "token:" + e.tok.Name, Service: e.tok.Name, ExpiresAt: e.tok.ExpiresAt}
	role, perr := auth.ParseRole(e.tok.Role)
	switch {
	case !now.Before(e.tok.ExpiresAt):
		return cl, reasonServiceTokenExpired, err
	case perr != nil:
		return cl, reasonAccountRole, err
	}
	cl.Role = role
	if now.Sub(e.touched) >= ServiceTokenTouch {
		tctx, cancel := context.WithTimeout(ctx, accountTimeout)
		if terr := s.db.TouchServiceToken(tctx, e.tok.ID, now); terr == nil {
			e.touched = now
			s.mu.Lock()
			s.m[hash] = e
			s.mu.Unlock()
		}
		cancel()
	}
	return cl, "", err
}
