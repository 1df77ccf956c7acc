package httpapi

import (
	"fmt"
	"net/http"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/labstack/echo/v4"

	"github.com/insightops/insightops/services/api/console"
	"github.com/insightops/insightops/shared/audit"
	"github.com/insightops/insightops/shared/auth"
	"github.com/insightops/insightops/shared/jobs"
)

// registered returns echo's routes, minus catch-all 404 routes (which a
// Group.Use would register) and the console's pages (package console: each
// API call they make is checked like a client's).
func registered(e *echo.Echo) []*echo.Route {
	var out []*echo.Route
	for _, r := range e.Routes() {
		if r.Method != echo.RouteNotFound && r.Path != console.Prefix && !strings.HasPrefix(r.Path, console.Prefix+"/") {
			out = append(out, r)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Path+out[i].Method < out[j].Path+out[j].Method })
	return out
}

// tableIndex maps "METHOD path" to the route table's entry.
func tableIndex() map[string]Route {
	m := map[string]Route{}
	for _, r := range Routes() {
		m[r.Method+" "+r.Path] = r
	}
	return m
}

// unlisted returns the routes registered in e that the route table does
// not declare (they would have no role).
func unlisted(e *echo.Echo) []string {
	idx := tableIndex()
	var out []string
	for _, r := range registered(e) {
		if _, ok := idx[r.Method+" "+r.Path]; !ok {
			out = append(out, r.Method+" "+r.Path)
		}
	}
	return out
}

// concrete fills path parameters with an unknown job id.
func concrete(path string) string {
	parts := strings.Split(path, "/")
	for i, p := range parts {
		if strings.HasPrefix(p, ":") {
			parts[i] = jobs.NewID()
		}
	}
	return strings.Join(parts, "/")
}

func noneToken(t *testing.T, role auth.Role) string {
	t.Helper()
	now := time.Now()
	tok, err := jwt.NewWithClaims(jwt.SigningMethodNone, jwt.MapClaims{
		"iss": auth.TokenIssuer, "sub": testUsers[auth.Admin], "role": string(role),
		"iat": now.Unix(), "exp": now.Add(time.Hour).Unix(),
	}).SignedString(jwt.UnsafeAllowNoneSignatureType)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// TestEveryAdminRouteIsGuarded walks every route echo has registered (not
// a hand-written list): each must be in the route table, and each /admin
// route must refuse missing, malformed, expired, forged and alg-none
// tokens with 401, refuse roles below its minimum with 403, and let its
// own role through.
func TestEveryAdminRouteIsGuarded(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	routes := registered(e.srv.Echo())
	if len(routes) < len(routeTable) {
		t.Fatalf("echo has %d routes, the table %d", len(routes), len(routeTable))
	}
	if missing := unlisted(e.srv.Echo()); len(missing) > 0 {
		t.Fatalf("routes registered without an entry (and role) in the route table: %v", missing)
	}
	idx := tableIndex()

	secret := e.srv.tokens.Secret
	expired, _, err := auth.Issuer{Secret: secret, TTL: time.Minute, Now: func() time.Time { return time.Now().Add(-2 * time.Hour) }}.Issue(testUsers[auth.Admin], auth.Admin)
	if err != nil {
		t.Fatal(err)
	}
	forged, _, err := auth.Issuer{Secret: []byte(strings.Repeat("x", 32))}.Issue(testUsers[auth.Admin], auth.Admin)
	if err != nil {
		t.Fatal(err)
	}
	hs512, err := jwt.NewWithClaims(jwt.SigningMethodHS512, jwt.MapClaims{
		"iss": auth.TokenIssuer, "sub": testUsers[auth.Admin], "role": "admin",
		"iat": time.Now().Unix(), "exp": time.Now().Add(time.Hour).Unix(),
	}).SignedString(secret)
	if err != nil {
		t.Fatal(err)
	}
	bad := []struct {
		name, header string
	}{
		{"no token", ""},
		{"scheme only", "Bearer"},
		{"basic auth", "Basic YWRtaW46YWRtaW4="},
		{"garbage token", "Bearer not-a-jwt"},
		{"expired", "Bearer " + expired},
		{"other secret", "Bearer " + forged},
		{"alg none", "Bearer " + noneToken(t, auth.Admin)},
		{"alg HS512", "Bearer " + hs512},
	}

	admin := 0
	for _, r := range routes {
		if !strings.HasPrefix(r.Path, AdminPrefix+"/") && !signedInRoutes[r.Path] {
			// Public routes must answer without a token.
			if idx[r.Method+" "+r.Path].MinRole != "" {
				t.Errorf("%s %s: public path with a role", r.Method, r.Path)
			}
			res := e.do(req{method: r.Method, path: concrete(r.Path)})
			if res.status == http.StatusUnauthorized || res.status == http.StatusForbidden {
				t.Errorf("public %s %s answered %d", r.Method, r.Path, res.status)
			}
			continue
		}
		admin++
		def := idx[r.Method+" "+r.Path]
		if !def.MinRole.Valid() {
			t.Errorf("%s %s: no valid role in the route table", r.Method, r.Path)
			continue
		}
		t.Run(r.Method+" "+r.Path, func(t *testing.T) {
			path := concrete(r.Path)
			if def.Confirm {
				path += "?confirm=true"
			}
			for _, b := range bad {
				hdr := map[string]string{}
				if b.header != "" {
					hdr["Authorization"] = b.header
				}
				res := e.do(req{method: r.Method, path: path, headers: hdr})
				if res.status != http.StatusUnauthorized || codeOf(t, res) != CodeUnauthorized {
					t.Errorf("%s: status %d, want 401 (%s) (want CodeUnauthorized)", b.name, res.status, res.body)
					continue
				}
				if !strings.HasPrefix(res.header.Get("WWW-Authenticate"), "Bearer") {
					t.Errorf("%s: WWW-Authenticate = %q", b.name, res.header.Get("WWW-Authenticate"))
				}
				if code, _ := errorOf(t, res); code != CodeUnauthorized {
					t.Errorf("%s: code %q", b.name, code)
				}
			}
			for _, role := range auth.Roles {
				res := e.do(req{method: r.Method, path: path, token: e.token(role)})
				if auth.Allows(role, def.MinRole) {
					if res.status == http.StatusUnauthorized || res.status == http.StatusForbidden {
						t.Errorf("role %s (allowed, min %s): status %d %s", role, def.MinRole, res.status, res.body)
					}
					continue
				}
				if res.status != http.StatusForbidden {
					t.Errorf("role %s (below %s): status %d, want 403 (%s)", role, def.MinRole, res.status, res.body)
					continue
				}
				if code, _ := errorOf(t, res); code != CodeForbidden {
					t.Errorf("role %s: code %q", role, code)
				}
			}
		})
	}
	if admin == 0 {
		t.Fatal("no /admin route registered")
	}

	// Refusals are audited as auth.denied, without any token.
	evs, raws := e.auditEvents("audit.auth.denied")
	var anon, forbidden int
	for i, ev := range evs {
		for _, b := range bad {
			if tok := strings.TrimPrefix(b.header, "Bearer "); len(tok) > 20 && strings.Contains(string(raws[i]), tok) {
				t.Errorf("denied event holds a token: %s", raws[i])
			}
		}
		if holdsJWT(raws[i]) {
			t.Errorf("denied event holds a JWT: %s", raws[i])
		}
		if ev.Outcome != audit.Denied || ev.Resource != "auth" || ev.SourceIP == "" || ev.RequestID == "" {
			t.Errorf("denied event %s", raws[i])
		}
		switch ev.Detail["reason"] {
		case "insufficient_role":
			forbidden++
			if ev.Actor == "" || ev.Actor == "anonymous" || ev.Role == "" || ev.Detail["required_role"] == nil {
				t.Errorf("403 event %s", raws[i])
			}
		default:
			anon++
			if ev.Actor != "anonymous" {
				t.Errorf("401 event actor %q", ev.Actor)
			}
		}
	}
	if forbidden == 0 || anon == 0 {
		t.Errorf("audited %d 403s and %d 401s", forbidden, anon)
	}
	if anon > AnonymousAuditLimit.Burst+1 {
		t.Errorf("%d anonymous denials audited from one IP, limit %d", anon, AnonymousAuditLimit.Burst)
	}

	// An unknown /admin path is a plain 404, with or without a token.
	for _, tok := range []string{"", e.token(auth.Admin)} {
		if res := e.do(req{method: http.MethodGet, path: "/admin/nope", token: tok}); res.status != http.StatusNotFound || codeOf(t, res) != CodeNotFound {
			t.Errorf("unknown /admin path (token %v): %d, want 404 (want CodeNotFound; body %s)", tok != "", res.status, res.body)
		}
	}
}

// TestRouteCheckCatchesUnlistedRoutes proves the walk above fails when a
// route is registered behind the table's back.
func TestRouteCheckCatchesUnlistedRoutes(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.srv.Echo().GET("/admin/db/sneaky", func(c echo.Context) error { return c.NoContent(http.StatusNoContent) })
	e.srv.Echo().Group(AdminPrefix, e.srv.authenticate).DELETE("/db/also-sneaky", func(c echo.Context) error { return c.NoContent(http.StatusNoContent) })
	got := unlisted(e.srv.Echo())
	want := []string{"DELETE /admin/db/also-sneaky", "GET /admin/db/sneaky"}
	sort.Strings(got)
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("unlisted = %v, want %v", got, want)
	}
}

func TestValidateRoutes(t *testing.T) {
	t.Parallel()
	h := (*Server).health
	cases := []struct {
		name string
		defs []routeDef
		ok   bool
	}{
		{"the real table", routeTable, true},
		{"admin without role", []routeDef{{Route{Method: "GET", Path: "/admin/x"}, h}}, false},
		{"admin with bogus role", []routeDef{{Route{Method: "GET", Path: "/admin/x", MinRole: "root"}, h}}, false},
		{"public with role", []routeDef{{Route{Method: "GET", Path: "/x", MinRole: auth.Viewer}, h}}, false},
		{"confirm not admin", []routeDef{{Route{Method: "DELETE", Path: "/admin/x", MinRole: auth.Operator, Confirm: true}, h}}, false},
		{"confirm admin", []routeDef{{Route{Method: "DELETE", Path: "/admin/x", MinRole: auth.Admin, Confirm: true}, h}}, true},
		{"duplicate", []routeDef{{Route{Method: "GET", Path: "/x"}, h}, {Route{Method: "GET", Path: "/x"}, h}}, false},
		{"no handler", []routeDef{{Route{Method: "GET", Path: "/x"}, nil}}, false},
	}
	for _, c := range cases {
		if err := validateRoutes(c.defs); (err == nil) != c.ok {
			t.Errorf("%s: err = %v, want ok=%v", c.name, err, c.ok)
		}
	}
}

// TestContractRoutes pins the route table to this issue's contract rows.
func TestContractRoutes(t *testing.T) {
	t.Parallel()
	want := map[string]auth.Role{
		"GET /health":                     "",
		"GET /ready":                      "",
		"POST /auth/login":                "",
		"GET /admin/db/health":            auth.Viewer,
		"POST /admin/db/init":             auth.Admin,
		"GET /admin/db/tasks":             auth.Viewer,
		"GET /admin/db/tasks/:id":         auth.Viewer,
		"DELETE /admin/db/tasks/:id":      auth.Operator,
		"GET /admin/db/tasks/:id/events":  auth.Viewer,
		"GET /admin/db/backup/status/:id": auth.Viewer,
		"GET /admin/db/chroma/status/:id": auth.Viewer,
	}
	idx := tableIndex()
	for k, role := range want {
		r, ok := idx[k]
		if !ok {
			t.Errorf("route %s missing", k)
			continue
		}
		if r.MinRole != role {
			t.Errorf("route %s: role %q, want %q", k, r.MinRole, role)
		}
	}
}

func TestRequireConfirm(t *testing.T) {
	t.Parallel()
	e := echo.New()
	for q, ok := range map[string]bool{"": false, "?confirm=false": false, "?confirm=1": false, "?confirm=true": true} {
		c := e.NewContext(httpRequest(t, "DELETE", "/x"+q), nil)
		err := requireConfirm(c)
		if (err == nil) != ok {
			t.Errorf("%q: err = %v", q, err)
		}
		if err != nil {
			ae, isAPI := err.(*APIError)
			if !isAPI || ae.Status != http.StatusBadRequest || ae.Code != CodeConfirmationRequired {
				t.Errorf("%q: err = %#v", q, err)
			}
		}
	}
}

func httpRequest(t *testing.T, method, target string) *http.Request {
	t.Helper()
	r, err := http.NewRequest(method, target, nil)
	if err != nil {
		t.Fatal(err)
	}
	return r
}
