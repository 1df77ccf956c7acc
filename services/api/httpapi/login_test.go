package httpapi

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/insightops/insightops/shared/audit"
	"github.com/insightops/insightops/shared/auth"
	"github.com/insightops/insightops/shared/testkit"
)

func login(e *env, email, password string, headers map[string]string) resp {
	e.t.Helper()
	return e.do(req{method: http.MethodPost, path: "/auth/login", body: map[string]string{"email": email, "password": password}, headers: headers})
}

func TestLoginSuccess(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	for role, email := range testUsers {
		// E-mails match case-insensitively.
		res := login(e, " "+strings.ToUpper(email)+" ", testPassword, nil)
		if res.status != http.StatusOK {
			t.Fatalf("%s: status %d %s", role, res.status, res.body)
		}
		body := decode[loginResponse](t, res)
		if body.Role != role || body.Token == "" || body.TokenType != "Bearer" {
			t.Errorf("%s: body %s", role, res.body)
		}
		if d := time.Until(body.ExpiresAt); d < 50*time.Minute || d > 61*time.Minute {
			t.Errorf("%s: expires in %s, want ~1h (JWT_TTL default)", role, d)
		}
		if res.header.Get("Cache-Control") != "no-store" {
			t.Errorf("token answer is cacheable: %q", res.header.Get("Cache-Control"))
		}
		cl, err := e.srv.tokens.Verify(body.Token)
		if err != nil || cl.Subject != email || cl.Role != role {
			t.Errorf("%s: token claims %+v, %v", role, cl, err)
		}
		// The token opens the admin routes its role allows.
		if r := e.do(req{method: http.MethodGet, path: "/admin/db/tasks", token: body.Token}); r.status != http.StatusOK {
			t.Errorf("%s: GET /admin/db/tasks with the new token: %d %s", role, r.status, r.body)
		}
	}
	evs, raws := e.auditEvents("audit.auth.login")
	n := 0
	for i, ev := range evs {
		if ev.Outcome == audit.Success {
			n++
			if ev.Role == "" || ev.Actor == "" || ev.SourceIP == "" || ev.RequestID == "" {
				t.Errorf("success event incomplete: %s", raws[i])
			}
			if strings.Contains(string(raws[i]), testPassword) || holdsJWT(raws[i]) {
				t.Errorf("success event holds a secret: %s", raws[i])
			}
		}
	}
	if n != len(testUsers) {
		t.Errorf("%d success events, want %d", n, len(testUsers))
	}
}

func TestLoginFailuresAreAuditedWithoutPassword(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := context.Background()
	h, _ := auth.HashPassword(testPassword)
	if _, err := e.db.CreateUserIfAbsent(ctx, "gone@example.com", h, "viewer"); err != nil {
		t.Fatal(err)
	}
	if _, err := e.db.SQL.ExecContext(ctx, e.db.Rebind("UPDATE users SET is_active = ? WHERE email = ?"), false, "gone@example.com"); err != nil {
		t.Fatal(err)
	}
	const wrong = "Wr0ng-Password-Xyzzy"
	cases := []struct{ email, password, reason string }{
		{testUsers[auth.Admin], wrong, "bad_password"},
		{"nobody@example.com", wrong, "unknown_user"},
		{"gone@example.com", testPassword, "inactive_user"},
	}
	var bodies []string
	for _, c := range cases {
		res := login(e, c.email, c.password, nil)
		if res.status != http.StatusUnauthorized {
			t.Fatalf("%s: status %d %s", c.reason, res.status, res.body)
		}
		if code, _ := errorOf(t, res); code != CodeInvalidCredentials {
			t.Errorf("%s: code %q", c.reason, code)
		}
		if res.header.Get("WWW-Authenticate") != "" {
			t.Errorf("login 401 carries WWW-Authenticate %q", res.header.Get("WWW-Authenticate"))
		}
		bodies = append(bodies, string(res.body))
	}
	// Unknown user, wrong password and inactive user look the same.
	if bodies[0] != bodies[1] || bodies[1] != bodies[2] {
		t.Errorf("failure answers differ: %v", bodies)
	}

	evs, raws := e.auditEvents("audit.auth.login")
	found := map[string]bool{}
	for i, ev := range evs {
		raw := string(raws[i])
		if strings.Contains(raw, wrong) || strings.Contains(raw, testPassword) || strings.Contains(strings.ToLower(raw), `"password"`) {
			t.Errorf("audit event holds the password: %s", raw)
		}
		if ev.Action != "auth.login" || ev.Resource != "auth" || ev.Outcome != audit.Failure {
			t.Errorf("event %s", raw)
			continue
		}
		if ev.SourceIP == "" || ev.RequestID == "" || ev.ID == "" {
			t.Errorf("event lacks source/request id: %s", raw)
		}
		found[ev.Actor+" "+ev.Detail["reason"].(string)] = true
	}
	for _, c := range cases {
		if !found[c.email+" "+c.reason] {
			t.Errorf("no failure event for %s (%s); have %v", c.email, c.reason, found)
		}
	}
}

func TestLoginRateLimits(t *testing.T) {
	t.Parallel()
	// The test client is the reverse proxy: on loopback, and trusted.
	e := newEnvWith(t, map[string]string{"TRUSTED_PROXIES": "127.0.0.1,::1"})
	e.srv.loginByEmail = newKeyedLimiter(Limit{Every: time.Hour, Burst: 3})
	e.srv.loginByIP = newKeyedLimiter(Limit{Every: time.Hour, Burst: 6})

	// Per e-mail, across source IPs (the trusted proxy forwards them).
	email := testUsers[auth.Viewer]
	for i := range 3 {
		res := login(e, email, "wrong-"+strconv.Itoa(i), map[string]string{"X-Forwarded-For": "198.51.100." + strconv.Itoa(i+1)})
		if res.status != http.StatusUnauthorized || codeOf(t, res) != CodeInvalidCredentials {
			t.Fatalf("attempt %d: %d %s (want CodeInvalidCredentials)", i, res.status, res.body)
		}
	}
	res := login(e, email, testPassword, map[string]string{"X-Forwarded-For": "198.51.100.99"})
	if res.status != http.StatusTooManyRequests {
		t.Fatalf("4th attempt on one e-mail: %d %s, want 429", res.status, res.body)
	}
	if code, _ := errorOf(t, res); code != CodeRateLimited {
		t.Errorf("code %q", code)
	}
	if n, err := strconv.Atoi(res.header.Get("Retry-After")); err != nil || n < 1 {
		t.Errorf("Retry-After = %q", res.header.Get("Retry-After"))
	}

	// Per source IP, across e-mails.
	ip := map[string]string{"X-Forwarded-For": "203.0.113.7"}
	for i := range 6 {
		if res := login(e, "user"+strconv.Itoa(i)+"@example.com", "x", ip); res.status != http.StatusUnauthorized || codeOf(t, res) != CodeInvalidCredentials {
			t.Fatalf("ip attempt %d: %d %s (want CodeInvalidCredentials)", i, res.status, res.body)
		}
	}
	if res := login(e, testUsers[auth.Admin], testPassword, ip); res.status != http.StatusTooManyRequests || codeOf(t, res) != CodeRateLimited {
		t.Fatalf("7th attempt from one IP: %d %s, want 429 (want CodeRateLimited)", res.status, res.body)
	}
	// Another IP may still log in.
	if res := login(e, testUsers[auth.Admin], testPassword, map[string]string{"X-Forwarded-For": "203.0.113.8"}); res.status != http.StatusOK {
		t.Fatalf("other IP: %d %s", res.status, res.body)
	}

	// A client that is not a trusted proxy cannot pick its key with
	// X-Forwarded-For (see also TestForwardedForIsTrustedOnlyFromTrustedProxies).
	for i := range 7 {
		r := httptest.NewRequest(http.MethodPost, "/auth/login", strings.NewReader(`{"email":"x`+strconv.Itoa(i)+`@example.com","password":"x"}`))
		r.Header.Set("Content-Type", "application/json")
		r.Header.Set("X-Forwarded-For", "192.0.2."+strconv.Itoa(i+1))
		r.RemoteAddr = "8.8.4.4:5555"
		w := httptest.NewRecorder()
		e.srv.Handler().ServeHTTP(w, r)
		want := http.StatusUnauthorized
		if i == 6 {
			want = http.StatusTooManyRequests
		}
		if w.Code != want {
			t.Fatalf("public client attempt %d: %d, want %d (%s)", i, w.Code, want, w.Body)
		}
	}

	evs, _ := e.auditEvents("audit.auth.login")
	limited := 0
	for _, ev := range evs {
		if ev.Outcome == audit.Denied && ev.Detail["reason"] == "rate_limited" {
			limited++
		}
	}
	if limited < 3 {
		t.Errorf("%d rate-limited attempts audited, want 3", limited)
	}
}

func TestKeyedLimiter(t *testing.T) {
	t.Parallel()
	k := newKeyedLimiter(Limit{Every: time.Second, Burst: 2})
	now := time.Now()
	for i := range 2 {
		if ok, _ := k.allow("a", now); !ok {
			t.Fatalf("attempt %d refused", i)
		}
	}
	ok, wait := k.allow("a", now)
	if ok || wait <= 0 || wait > time.Second {
		t.Fatalf("3rd: ok=%v wait=%s", ok, wait)
	}
	if ok, _ := k.allow("b", now); !ok {
		t.Fatal("other key refused")
	}
	if ok, _ := k.allow("a", now.Add(time.Second)); !ok {
		t.Fatal("refilled key refused")
	}
	// Idle keys are swept.
	k.allow("c", now)
	k.allow("d", now.Add(10*time.Second))
	if _, ok := k.m["c"]; ok {
		t.Error("idle key kept")
	}
}

func TestDummyHashMatchesCost(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	c, err := bcrypt.Cost([]byte(e.srv.dummyHash))
	if err != nil || c != auth.Cost {
		t.Fatalf("dummy hash cost %d (%v), want auth.Cost %d", c, err, auth.Cost)
	}
}

// TestLoginPostgres runs login against the System DB on PostgreSQL (a
// skip without one, a failure under CI).
func TestLoginPostgres(t *testing.T) {
	t.Parallel()
	e := startEnv(t, testkit.NewEnv(t, testkit.WithDialect(testkit.PostgreSQL)))
	if res := login(e, testUsers[auth.Operator], testPassword, nil); res.status != http.StatusOK {
		t.Fatalf("login on postgres: %d %s", res.status, res.body)
	}
	if res := login(e, testUsers[auth.Operator], "nope", nil); res.status != http.StatusUnauthorized || codeOf(t, res) != CodeInvalidCredentials {
		t.Fatalf("bad login on postgres: %d %s (want CodeInvalidCredentials)", res.status, res.body)
	}
	res := e.do(req{method: http.MethodGet, path: "/admin/db/health", token: e.token(auth.Viewer)})
	rep := decode[HealthReport](t, res)
	if rep.Components["system_db"].Status != StatusOK || !strings.HasPrefix(rep.Components["system_db"].Detail, "postgres") {
		t.Errorf("system_db component %+v", rep.Components["system_db"])
	}
}

// TestForwardedForIsTrustedOnlyFromTrustedProxies: with TRUSTED_PROXIES
// unset, a client on loopback or a private network that sends
// X-Forwarded-For changes neither its login rate-limit key nor the
// source_ip audited; with TRUSTED_PROXIES naming the proxy, the proxy's
// header is the client's address.
func TestForwardedForIsTrustedOnlyFromTrustedProxies(t *testing.T) {
	t.Parallel()
	e := newEnv(t) // no TRUSTED_PROXIES
	e.srv.loginByIP = newKeyedLimiter(Limit{Every: time.Hour, Burst: 3})
	for i := range 4 {
		res := login(e, "nobody"+strconv.Itoa(i)+"@example.com", "x", map[string]string{"X-Forwarded-For": "198.51.100." + strconv.Itoa(i+1)})
		want := http.StatusUnauthorized
		if i == 3 {
			want = http.StatusTooManyRequests
		}
		if res.status != want {
			t.Fatalf("loopback client, forged X-Forwarded-For, attempt %d: %d, want %d (%s)", i, res.status, want, res.body)
		}
	}
	evs, _ := e.auditEvents("audit.auth.login")
	if len(evs) == 0 {
		t.Fatal("no login audited")
	}
	for _, ev := range evs {
		if ev.SourceIP != "127.0.0.1" && ev.SourceIP != "::1" {
			t.Errorf("audited source_ip %q: the forged header was believed", ev.SourceIP)
		}
	}

	// A client on a private network, straight at the handler.
	for _, tc := range []struct {
		name, trusted, peer, xff, want string
	}{
		{"private peer, no trusted proxy", "", "10.1.2.3:4000", "203.0.113.9", "10.1.2.3"},
		{"loopback peer, no trusted proxy", "", "127.0.0.1:4000", "203.0.113.9", "127.0.0.1"},
		{"link-local peer, no trusted proxy", "", "[fe80::1]:4000", "203.0.113.9", "fe80::1"},
		{"trusted proxy", "10.0.0.0/8", "10.1.2.3:4000", "203.0.113.9", "203.0.113.9"},
		{"trusted proxy, spoofed hop before the client", "10.0.0.0/8", "10.1.2.3:4000", "192.0.2.66, 203.0.113.9", "203.0.113.9"},
		{"private peer outside TRUSTED_PROXIES", "10.0.0.0/8", "192.168.1.5:4000", "203.0.113.9", "192.168.1.5"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := testkit.Config(t, map[string]string{"TRUSTED_PROXIES": tc.trusted})
			r := httptest.NewRequest(http.MethodGet, "/health", nil)
			r.RemoteAddr = tc.peer
			r.Header.Set("X-Forwarded-For", tc.xff)
			if got := ipExtractor(cfg.TrustedProxies)(r); got != tc.want {
				t.Fatalf("source IP %q, want %q", got, tc.want)
			}
		})
	}

	// Through a trusted proxy the header is the client's address.
	p := newEnvWith(t, map[string]string{"TRUSTED_PROXIES": "127.0.0.0/8,::1"})
	if res := login(p, "someone@example.com", "x", map[string]string{"X-Forwarded-For": "203.0.113.77"}); res.status != http.StatusUnauthorized {
		t.Fatalf("login through the proxy: %d %s", res.status, res.body)
	}
	evs, _ = p.auditEvents("audit.auth.login")
	if len(evs) != 1 || evs[0].SourceIP != "203.0.113.77" {
		t.Fatalf("through the trusted proxy: audited %+v, want source_ip 203.0.113.77", evs)
	}
}
