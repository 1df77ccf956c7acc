package httpapi

import (
	"context"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/insightops/insightops/services/api/console"
	"github.com/insightops/insightops/shared/auth"
	"github.com/insightops/insightops/shared/jobs"
)

// browserReq is one request as a browser sends it to the console: a form
// body, the session cookie, extra headers; redirects are not followed.
func (e *env) browser(method, path string, form url.Values, cookie *http.Cookie, headers map[string]string) (*http.Response, string) {
	e.t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	r, err := http.NewRequestWithContext(ctx, method, e.ts.URL+path, body)
	if err != nil {
		e.t.Fatal(err)
	}
	if form != nil {
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	if cookie != nil {
		r.AddCookie(cookie)
	}
	for k, v := range headers {
		r.Header.Set(k, v)
	}
	c := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	res, err := c.Do(r)
	if err != nil {
		e.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res, string(b)
}

// consoleLogin signs in through the console's form and returns the
// session cookie and the page's CSRF token.
func (e *env) consoleLogin(role auth.Role, headers map[string]string) (*http.Cookie, string) {
	e.t.Helper()
	res, _ := e.browser(http.MethodPost, "/ui/login", url.Values{"email": {testUsers[role]}, "password": {testPassword}}, nil, headers)
	if res.StatusCode != http.StatusSeeOther {
		e.t.Fatalf("console login as %s: %d, want 303", role, res.StatusCode)
	}
	var ck *http.Cookie
	for _, c := range res.Cookies() {
		if c.Name == console.CookieName {
			ck = c
		}
	}
	if ck == nil {
		e.t.Fatal("console login set no session cookie")
	}
	_, page := e.browser(http.MethodGet, "/ui/backups", nil, ck, nil)
	m := regexp.MustCompile(`name="csrf-token" content="([^"]+)"`).FindStringSubmatch(page)
	if m == nil {
		e.t.Fatal("the console page has no CSRF token")
	}
	return ck, m[1]
}

// TestConsoleSessionCookie: the console's sign-in keeps the token in an
// HttpOnly, SameSite=Strict cookie on /ui (Secure behind TLS), never in a
// URL; every console answer has a CSP without unsafe-inline; a wrong
// password sets no cookie; a page without a session goes to the login
// page, and the login's next never leaves the console.
func TestConsoleSessionCookie(t *testing.T) {
	t.Parallel()
	e := newEnv(t)

	res, _ := e.browser(http.MethodPost, "/ui/login", url.Values{"email": {testUsers[auth.Admin]}, "password": {testPassword}, "next": {"//evil.example/x"}}, nil, nil)
	if res.StatusCode != http.StatusSeeOther || res.Header.Get("Location") != "/ui/" {
		t.Fatalf("login: %d to %q, want 303 to /ui/ (a foreign next is dropped)", res.StatusCode, res.Header.Get("Location"))
	}
	sc := res.Header.Get("Set-Cookie")
	for _, want := range []string{console.CookieName + "=", "Path=/ui", "HttpOnly", "SameSite=Strict"} {
		if !strings.Contains(sc, want) {
			t.Errorf("Set-Cookie %q lacks %s", sc, want)
		}
	}
	if strings.Contains(sc, "Secure") {
		t.Errorf("Set-Cookie %q is Secure over plain HTTP (the browser would drop it)", sc)
	}
	if holdsJWT([]byte(res.Header.Get("Location"))) {
		t.Errorf("the token is in the redirect URL %q", res.Header.Get("Location"))
	}
	csp := res.Header.Get("Content-Security-Policy")
	if csp != console.ContentSecurityPolicy || strings.Contains(csp, "unsafe-inline") {
		t.Errorf("CSP %q", csp)
	}

	res, _ = e.browser(http.MethodPost, "/ui/login", url.Values{"email": {testUsers[auth.Admin]}, "password": {testPassword}}, nil, map[string]string{"X-Forwarded-Proto": "https"})
	if sc := res.Header.Get("Set-Cookie"); !strings.Contains(sc, "Secure") {
		t.Errorf("Set-Cookie behind TLS %q is not Secure", sc)
	}

	res, page := e.browser(http.MethodPost, "/ui/login", url.Values{"email": {testUsers[auth.Admin]}, "password": {"wrong-password"}}, nil, nil)
	if res.StatusCode != http.StatusUnauthorized || res.Header.Get("Set-Cookie") != "" || !strings.Contains(page, CodeInvalidCredentials) {
		t.Fatalf("wrong password: %d, Set-Cookie %q, want 401 invalid_credentials and no cookie", res.StatusCode, res.Header.Get("Set-Cookie"))
	}

	res, _ = e.browser(http.MethodGet, "/ui/jobs", nil, nil, nil)
	if res.StatusCode != http.StatusSeeOther || !strings.HasPrefix(res.Header.Get("Location"), "/ui/login?next=") {
		t.Fatalf("a page without a session: %d to %q, want 303 to the login page", res.StatusCode, res.Header.Get("Location"))
	}
	res, _ = e.browser(http.MethodPost, "/ui/login", url.Values{"email": {testUsers[auth.Admin]}, "password": {testPassword}}, nil,
		map[string]string{"Origin": "https://evil.example"})
	if res.StatusCode != http.StatusForbidden || res.Header.Get("Set-Cookie") != "" {
		t.Fatalf("a login posted from another origin: %d, want 403 and no cookie", res.StatusCode)
	}
}

// TestConsoleActionsNeedTheCSRFTokenAndTheRole: a console action without
// the session's CSRF token, with a wrong one, or from another origin is
// refused (403) and queues nothing; with it, an operator's backup is
// queued (303 to its job page) and a viewer's is refused by the API's role
// check and audited as auth.denied.
func TestConsoleActionsNeedTheCSRFTokenAndTheRole(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ck, csrf := e.consoleLogin(auth.Operator, nil)

	for name, tc := range map[string]struct {
		form    url.Values
		headers map[string]string
	}{
		"no token":      {url.Values{"note": {"x"}}, nil},
		"wrong token":   {url.Values{"note": {"x"}, "csrf": {csrf + "x"}}, nil},
		"cross origin":  {url.Values{"note": {"x"}, "csrf": {csrf}}, map[string]string{"Origin": "https://evil.example"}},
		"cross site":    {url.Values{"note": {"x"}, "csrf": {csrf}}, map[string]string{"Sec-Fetch-Site": "cross-site"}},
		"opaque origin": {url.Values{"note": {"x"}, "csrf": {csrf}}, map[string]string{"Origin": "null"}},
	} {
		res, page := e.browser(http.MethodPost, "/ui/backups", tc.form, ck, tc.headers)
		if res.StatusCode != http.StatusForbidden || !strings.Contains(page, "csrf_failed") {
			t.Errorf("%s: %d, want 403 csrf_failed", name, res.StatusCode)
		}
	}
	recs, err := e.srv.jobs.List(context.Background(), jobs.Filter{})
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != 0 {
		t.Fatalf("refused actions queued %d job(s)", len(recs))
	}

	res, _ := e.browser(http.MethodPost, "/ui/backups", url.Values{"note": {"from the console"}, "csrf": {csrf}}, ck, map[string]string{"Origin": e.ts.URL})
	loc := res.Header.Get("Location")
	if res.StatusCode != http.StatusSeeOther || !strings.HasPrefix(loc, "/ui/jobs/") {
		t.Fatalf("operator backup: %d to %q, want 303 to its job page", res.StatusCode, loc)
	}
	id := strings.SplitN(strings.TrimPrefix(loc, "/ui/jobs/"), "?", 2)[0]
	rec, _, err := e.srv.jobs.Get(context.Background(), id)
	if err != nil || rec.Kind != jobs.KindBackupCreate || rec.SubmittedBy != testUsers[auth.Operator] {
		t.Fatalf("the queued job %s: %+v, %v", id, rec, err)
	}

	vck, vcsrf := e.consoleLogin(auth.Viewer, nil)
	if _, page := e.browser(http.MethodGet, "/ui/backups", nil, vck, nil); strings.Contains(page, "data-action") {
		t.Error("the viewer's backups page shows action buttons")
	}
	res, page := e.browser(http.MethodPost, "/ui/backups", url.Values{"csrf": {vcsrf}}, vck, nil)
	if res.StatusCode != http.StatusForbidden || !strings.Contains(page, CodeForbidden) {
		t.Fatalf("viewer backup through the console: %d, want 403 forbidden", res.StatusCode)
	}
	eventually(t, 10*time.Second, "the viewer's refusal audited", func() bool {
		evs, _ := e.auditEvents("audit.auth.>")
		for _, ev := range evs {
			if ev.Actor == testUsers[auth.Viewer] && ev.Detail["reason"] == "insufficient_role" && ev.Detail["route"] == "/admin/db/backup" {
				return true
			}
		}
		return false
	})
}

// TestConsoleLogoutRevokesTheToken: signing out through the console
// revokes the token itself (POST /auth/logout), so a copy of the cookie
// no longer works.
func TestConsoleLogoutRevokesTheToken(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ck, csrf := e.consoleLogin(auth.Admin, nil)
	res, _ := e.browser(http.MethodPost, "/ui/logout", url.Values{"csrf": {csrf}}, ck, nil)
	if res.StatusCode != http.StatusSeeOther || !strings.Contains(res.Header.Get("Set-Cookie"), "Max-Age=0") {
		t.Fatalf("logout: %d, Set-Cookie %q", res.StatusCode, res.Header.Get("Set-Cookie"))
	}
	r := e.do(req{method: http.MethodGet, path: "/admin/db/tasks", token: ck.Value})
	if r.status != http.StatusUnauthorized {
		t.Fatalf("the logged-out token: %d, want 401", r.status)
	}
	res, _ = e.browser(http.MethodGet, "/ui/", nil, ck, nil)
	if res.StatusCode != http.StatusSeeOther || !strings.HasPrefix(res.Header.Get("Location"), "/ui/login") {
		t.Fatalf("the old cookie after logout: %d to %q, want the login page", res.StatusCode, res.Header.Get("Location"))
	}
}

// TestConsoleDeadLetters: the console lists JOBS_DLQ with the reasons;
// an operator re-submits a dead-lettered backup, which queues a new
// backup.create job with its params through POST /admin/db/backup; a
// viewer sees no re-submit button.
func TestConsoleDeadLetters(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	dead := e.deadLetter(jobs.KindBackupCreate, `{"note":"nightly"}`, "disk full")
	ck, csrf := e.consoleLogin(auth.Operator, nil)
	_, page := e.browser(http.MethodGet, "/ui/dead-letters", nil, ck, nil)
	for _, want := range []string{dead, "disk full", `data-action="resubmit"`} {
		if !strings.Contains(page, want) {
			t.Errorf("the dead letters page lacks %q", want)
		}
	}
	if _, over := e.browser(http.MethodGet, "/ui/", nil, ck, nil); !strings.Contains(over, "failed after their last delivery") {
		t.Error("the overview does not warn about the dead letter")
	}
	res, _ := e.browser(http.MethodPost, "/ui/dead-letters/resubmit", url.Values{"csrf": {csrf}, "kind": {jobs.KindBackupCreate}, "params": {`{"note":"nightly"}`}}, ck, nil)
	loc := res.Header.Get("Location")
	if res.StatusCode != http.StatusSeeOther || !strings.HasPrefix(loc, "/ui/jobs/") {
		t.Fatalf("re-submit: %d to %q", res.StatusCode, loc)
	}
	id := strings.SplitN(strings.TrimPrefix(loc, "/ui/jobs/"), "?", 2)[0]
	rec, _, err := e.srv.jobs.Get(context.Background(), id)
	if err != nil || id == dead || rec.Kind != jobs.KindBackupCreate || string(rec.Params) != `{"note":"nightly"}` {
		t.Fatalf("the re-submitted job %s: %+v (params %s), %v", id, rec, rec.Params, err)
	}
	res, page = e.browser(http.MethodPost, "/ui/dead-letters/resubmit", url.Values{"csrf": {csrf}, "kind": {jobs.KindRestore}, "params": {`{"archive":"x"}`}}, ck, nil)
	if res.StatusCode != http.StatusBadRequest || !strings.Contains(page, "typed confirmation") {
		t.Errorf("one-click re-submit of a restore: %d, want 400", res.StatusCode)
	}
	vck, _ := e.consoleLogin(auth.Viewer, nil)
	if _, page := e.browser(http.MethodGet, "/ui/dead-letters", nil, vck, nil); strings.Contains(page, "data-action") || !strings.Contains(page, dead) {
		t.Error("the viewer's dead letters page shows a re-submit button or not the dead letter")
	}
}
