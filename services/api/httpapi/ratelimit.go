package httpapi

import (
	"runtime"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// Limit is a token bucket: Burst requests at once, then one per Every.
type Limit struct {
	Every time.Duration
	Burst int
}

// The API's rate limits.
var (
	// LoginLimitPerIP bounds login attempts from one source IP: 10 at
	// once, then 10 a minute. It also bounds the bcrypt work one client
	// can cause.
	LoginLimitPerIP = Limit{Every: 6 * time.Second, Burst: 10}
	// LoginLimitPerEmail bounds login attempts on one account, from any
	// number of IPs: 5 at once, then 5 a minute.
	LoginLimitPerEmail = Limit{Every: 12 * time.Second, Burst: 5}
	// AnonymousAuditLimit bounds the audit events one unauthenticated
	// source IP can cause: 30 at once, then 30 a minute.
	AnonymousAuditLimit = Limit{Every: 2 * time.Second, Burst: 30}
)

// maxLimiterKeys bounds the memory of one keyedLimiter. When it is full of
// keys seen recently, a new key is refused (fail closed) until old ones
// expire.
const maxLimiterKeys = 100_000

// keyedLimiter is one token bucket (golang.org/x/time/rate) per key (an IP
// or an e-mail), kept in memory. A bucket untouched for as long as it takes
// to refill completely is dropped: a fresh one behaves the same.
type keyedLimiter struct {
	limit Limit
	mu    sync.Mutex
	m     map[string]*limiterEntry
	// lastSweep is when idle entries were last dropped.
	lastSweep time.Time
}

type limiterEntry struct {
	lim  *rate.Limiter
	seen time.Time
}

func newKeyedLimiter(l Limit) *keyedLimiter {
	if l.Every <= 0 {
		l.Every = time.Second
	}
	if l.Burst < 1 {
		l.Burst = 1
	}
	return &keyedLimiter{limit: l, m: map[string]*limiterEntry{}}
}

// idle is how long an untouched bucket takes to be full again.
func (k *keyedLimiter) idle() time.Duration { return k.limit.Every * time.Duration(k.limit.Burst) }

// allow takes a token for key at now; when none is left it reports how
// long until one is.
func (k *keyedLimiter) allow(key string, now time.Time) (ok bool, retryAfter time.Duration) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if now.Sub(k.lastSweep) > k.idle() || len(k.m) >= maxLimiterKeys {
		k.sweep(now)
	}
	e := k.m[key]
	if e == nil {
		if len(k.m) >= maxLimiterKeys {
			return false, k.limit.Every
		}
		e = &limiterEntry{lim: rate.NewLimiter(rate.Every(k.limit.Every), k.limit.Burst)}
		k.m[key] = e
	}
	e.seen = now
	r := e.lim.ReserveN(now, 1)
	if !r.OK() {
		return false, k.limit.Every
	}
	if d := r.DelayFrom(now); d > 0 {
		r.CancelAt(now)
		return false, d
	}
	return true, 0
}

func (k *keyedLimiter) sweep(now time.Time) {
	idle := k.idle()
	for key, e := range k.m {
		if now.Sub(e.seen) > idle {
			delete(k.m, key)
		}
	}
	k.lastSweep = now
}

// bcryptConcurrency is how many password checks run at once: one per CPU,
// so a burst of logins queues instead of starving every other request.
func bcryptConcurrency() int { return max(1, runtime.GOMAXPROCS(0)) }
