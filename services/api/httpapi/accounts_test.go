package httpapi

import (
	"context"
	"fmt"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/insightops/insightops/shared/auth"
	"github.com/insightops/insightops/shared/testkit"
)

// TestTokenFollowsItsAccountInTheSystemDB changes a user in the System DB
// after its token was issued and checks the next request: an inactive or
// removed user is refused (401, audited with the user and the reason), a
// demoted one acts with its new role, and an untouched one goes on.
func TestTokenFollowsItsAccountInTheSystemDB(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name       string
		role       auth.Role // whose token
		change     string    // SQL run on that user (email is the parameter)
		args       []any
		path       string
		method     string
		wantStatus int
		wantReason string // of the auth.denied event, when refused by the account check
	}{
		{name: "untouched", role: auth.Operator, method: http.MethodGet, path: "/admin/db/tasks", wantStatus: http.StatusOK},
		{name: "deactivated", role: auth.Operator, change: `UPDATE users SET is_active = ? WHERE email = ?`, args: []any{false}, method: http.MethodGet, path: "/admin/db/tasks", wantStatus: http.StatusUnauthorized, wantReason: reasonAccountInactive},
		{name: "removed", role: auth.Viewer, change: `DELETE FROM users WHERE email = ?`, method: http.MethodGet, path: "/admin/db/tasks", wantStatus: http.StatusUnauthorized, wantReason: reasonAccountRemoved},
		{name: "demoted admin may not init", role: auth.Admin, change: `UPDATE users SET role = ? WHERE email = ?`, args: []any{"viewer"}, method: http.MethodPost, path: "/admin/db/init", wantStatus: http.StatusForbidden},
		{name: "demoted admin may still read", role: auth.Admin, change: `UPDATE users SET role = ? WHERE email = ?`, args: []any{"viewer"}, method: http.MethodGet, path: "/admin/db/tasks", wantStatus: http.StatusOK},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t)
			e.srv.accounts.ttl = 0 // recheck on every request
			tok := e.token(tc.role)
			if r := e.do(req{method: http.MethodGet, path: "/admin/db/tasks", token: tok}); r.status != http.StatusOK {
				t.Fatalf("before the change: %d %s", r.status, r.body)
			}
			if tc.change != "" {
				args := append(append([]any{}, tc.args...), testUsers[tc.role])
				if _, err := e.db.SQL.ExecContext(context.Background(), e.db.Rebind(tc.change), args...); err != nil {
					t.Fatal(err)
				}
			}
			r := e.do(req{method: tc.method, path: tc.path, token: tok})
			if r.status != tc.wantStatus {
				t.Fatalf("%s %s after the change: %d %s, want %d", tc.method, tc.path, r.status, r.body, tc.wantStatus)
			}
			if tc.wantReason == "" {
				return
			}
			errorOf(t, r)
			evs, _ := e.auditEvents("audit.>")
			found := 0
			for _, ev := range evs {
				if ev.Action == "auth.denied" && ev.Detail["reason"] == tc.wantReason {
					found++
					if ev.Actor != testUsers[tc.role] {
						t.Errorf("auth.denied actor %q, want %q", ev.Actor, testUsers[tc.role])
					}
				}
			}
			if found != 1 {
				t.Errorf("%d auth.denied events with reason %s, want 1", found, tc.wantReason)
			}
		})
	}
}

// TestAccountStateIsCachedForTheRecheckInterval: within the interval the
// last read stands (no query per request); after it the change is seen.
func TestAccountStateIsCachedForTheRecheckInterval(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	var clock atomic.Int64 // the handler reads it on its own goroutine
	clock.Store(time.Now().UnixNano())
	e.srv.accounts.now = func() time.Time { return time.Unix(0, clock.Load()) }
	tok := e.token(auth.Viewer)
	if r := e.do(req{method: http.MethodGet, path: "/admin/db/tasks", token: tok}); r.status != http.StatusOK {
		t.Fatalf("first request: %d %s", r.status, r.body)
	}
	if _, err := e.db.SQL.ExecContext(context.Background(), e.db.Rebind(`UPDATE users SET is_active = ? WHERE email = ?`), false, testUsers[auth.Viewer]); err != nil {
		t.Fatal(err)
	}
	clock.Add(int64(AccountRecheck - time.Millisecond))
	if r := e.do(req{method: http.MethodGet, path: "/admin/db/tasks", token: tok}); r.status != http.StatusOK {
		t.Fatalf("within the recheck interval: %d %s, want the cached state (200)", r.status, r.body)
	}
	clock.Add(int64(time.Millisecond))
	if r := e.do(req{method: http.MethodGet, path: "/admin/db/tasks", token: tok}); r.status != http.StatusUnauthorized || codeOf(t, r) != CodeUnauthorized {
		t.Fatalf("after the recheck interval: %d %s, want 401 (want CodeUnauthorized)", r.status, r.body)
	}
}

// TestAccountRecheckFailsClosedWhileTheSystemDBIsDown: the account check
// cannot read the user and has nothing cached, so a genuine token is
// refused with 503 (never allowed), while /health stays reachable; a user
// read before the outage goes on with what was cached.
func TestAccountRecheckFailsClosedWhileTheSystemDBIsDown(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.srv.accounts.ttl = 0 // read on every request: the cached state is the fallback
	cached := e.token(auth.Operator)
	if r := e.do(req{method: http.MethodGet, path: "/admin/db/tasks", token: cached}); r.status != http.StatusOK {
		t.Fatalf("before the outage: %d %s", r.status, r.body)
	}
	tok := e.token(auth.Viewer)
	if err := e.db.Close(); err != nil {
		t.Fatal(err)
	}
	r := e.do(req{method: http.MethodGet, path: "/admin/db/tasks", token: tok})
	if r.status != http.StatusServiceUnavailable {
		t.Fatalf("uncached user with the System DB closed: %d %s, want 503", r.status, r.body)
	}
	if code, _ := errorOf(t, r); code != CodeUnavailable {
		t.Errorf("code %q, want %s", code, CodeUnavailable)
	}
	if r := e.do(req{method: http.MethodGet, path: "/admin/db/tasks", token: cached}); r.status != http.StatusOK {
		t.Errorf("cached user with the System DB closed: %d %s, want 200 (last read stands)", r.status, r.body)
	}
	if r := e.do(req{method: http.MethodGet, path: "/health"}); r.status != http.StatusOK {
		t.Errorf("/health with the System DB closed: %d %s", r.status, r.body)
	}
}

// TestTokenOfADeletedUserIsRefusedOnceItsEmailIsCreatedAgain: a user is
// deleted and an admin creates a user of the same e-mail, which starts
// again at token version 0. A token of the deleted user (its version 1,
// after a password change) must not pass for the new one, even before the
// new user changed its generated password: 401 on every route, the
// password change (with the new user's password) included, audited as
// account_removed. Checked for a token carrying the user id (uid), and
// for one without it (issued before uid existed), told apart by its iat;
// on both dialects.
func TestTokenOfADeletedUserIsRefusedOnceItsEmailIsCreatedAgain(t *testing.T) {
	t.Parallel()
	kinds := []struct {
		name string
		// oldToken returns the deleted user's token: changed is the one
		// POST /auth/password answered with.
		oldToken func(t *testing.T, e *env, email, changed string) string
	}{
		{"token with uid", func(_ *testing.T, _ *env, _, changed string) string { return changed }},
		{"token without uid, issued before the new user", func(t *testing.T, e *env, email, _ string) string {
			iss := e.srv.tokens
			iss.Now = func() time.Time { return time.Now().Add(-time.Minute) }
			tok, _, err := iss.IssueFor(auth.Account{Email: email, Version: 1}, auth.Operator)
			if err != nil {
				t.Fatal(err)
			}
			return tok
		}},
	}
	for _, d := range testkit.Dialects {
		for _, k := range kinds {
			t.Run(d.Name+"/"+k.name, func(t *testing.T) {
				t.Parallel()
				e := startEnv(t, testkit.NewEnv(t, testkit.WithDialect(d)))
				admin := e.token(auth.Admin)
				email := unique("again") + "@example.com"
				create := func() createUserResponse {
					t.Helper()
					r := e.do(req{method: http.MethodPost, path: "/admin/users", token: admin, body: map[string]any{"email": email, "role": "operator"}})
					if r.status != http.StatusCreated {
						t.Fatalf("create %s: %d %s", email, r.status, r.body)
					}
					return decode[createUserResponse](t, r)
				}
				login := func(pw string) loginResponse {
					t.Helper()
					r := e.do(req{method: http.MethodPost, path: "/auth/login", body: loginRequest{Email: email, Password: pw}})
					if r.status != http.StatusOK {
						t.Fatalf("login: %d %s", r.status, r.body)
					}
					return decode[loginResponse](t, r)
				}

				// The first user logs in and changes its password: its token
				// is at version 1 and fully usable.
				first := create()
				r := e.do(req{method: http.MethodPost, path: "/auth/password", token: login(first.GeneratedPassword).Token,
					body: changePasswordRequest{CurrentPassword: first.GeneratedPassword, NewPassword: "violet-harbour-42-lamps"}})
				if r.status != http.StatusOK {
					t.Fatalf("password change: %d %s", r.status, r.body)
				}
				old := k.oldToken(t, e, email, decode[loginResponse](t, r).Token)
				if k.name == "token with uid" {
					if r := e.do(req{method: http.MethodGet, path: "/admin/db/tasks", token: old}); r.status != http.StatusOK {
						t.Fatalf("the first user's token before the delete: %d %s", r.status, r.body)
					}
				}

				if r := e.do(req{method: http.MethodDelete, path: fmt.Sprintf("/admin/users/%d", first.User.ID), token: admin}); r.status != http.StatusNoContent {
					t.Fatalf("delete: %d %s", r.status, r.body)
				}
				second := create()
				if second.User.ID <= first.User.ID {
					t.Fatalf("the new user got id %d; want above the deleted %d", second.User.ID, first.User.ID)
				}

				for _, rq := range []req{
					{method: http.MethodGet, path: "/admin/db/tasks"},
					{method: http.MethodGet, path: "/auth/whoami"},
					{method: http.MethodPost, path: "/auth/password", body: changePasswordRequest{CurrentPassword: second.GeneratedPassword, NewPassword: "amber-lantern-77-roads"}},
				} {
					rq.token = old
					if r := e.do(rq); r.status != http.StatusUnauthorized || codeOf(t, r) != CodeUnauthorized {
						t.Errorf("the deleted user's token on %s %s: %d %s; want 401 %s", rq.method, rq.path, r.status, r.body, CodeUnauthorized)
					}
				}
				evs, _ := e.auditEvents("audit.>")
				denied := 0
				for _, ev := range evs {
					if ev.Action == "auth.denied" && ev.Actor == email && ev.Detail["reason"] == reasonAccountRemoved {
						denied++
					}
				}
				if denied != 3 {
					t.Errorf("%d auth.denied events for %s with reason %s; want 3", denied, email, reasonAccountRemoved)
				}

				// The new user's own token works (up to the forced change),
				// and its password is still the generated one.
				r = e.do(req{method: http.MethodGet, path: "/auth/whoami", token: login(second.GeneratedPassword).Token})
				if id := decode[Identity](t, r); r.status != http.StatusOK || id.Subject != email || !id.MustChangePassword {
					t.Fatalf("the new user's whoami: %d %s", r.status, r.body)
				}
			})
		}
	}
}
