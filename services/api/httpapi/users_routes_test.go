package httpapi

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/insightops/insightops/shared/auth"
	"github.com/insightops/insightops/shared/store"
)

var seq atomic.Int64

// unique returns a name no other call of this test binary returns.
func unique(prefix string) string { return fmt.Sprintf("%s-%d", prefix, seq.Add(1)) }

// newUser creates an active user of role with testPassword and returns
// it with a login token of its current version.
func (e *env) newUser(role auth.Role, mustChange bool) (store.User, string) {
	e.t.Helper()
	h, err := auth.HashPassword(testPassword)
	if err != nil {
		e.t.Fatal(err)
	}
	u, err := e.db.CreateUser(context.Background(), store.NewUser{Email: unique(string(role)) + "@example.com", PasswordHash: h, Role: string(role), MustChangePassword: mustChange})
	if err != nil {
		e.t.Fatal(err)
	}
	tok, _, err := e.srv.tokens.IssueFor(auth.Account{Email: u.Email, UserID: u.ID, Version: u.TokenVersion}, role)
	if err != nil {
		e.t.Fatal(err)
	}
	return u, tok
}

// newServiceToken stores a service token of role expiring at exp and
// returns it and its secret.
func (e *env) newServiceToken(role auth.Role, exp time.Time) (store.ServiceToken, string) {
	e.t.Helper()
	secret, hash, err := auth.NewServiceToken()
	if err != nil {
		e.t.Fatal(err)
	}
	st, err := e.db.CreateServiceToken(context.Background(), store.ServiceToken{Name: unique("svc"), TokenHash: hash, Role: string(role), CreatedBy: "test", ExpiresAt: exp})
	if err != nil {
		e.t.Fatal(err)
	}
	return st, secret
}

// caller is who calls a route in the access table.
type caller struct {
	name  string
	token func(e *env) string
}

var callers = []caller{
	{"admin", func(e *env) string { _, t := e.newUser(auth.Admin, false); return t }},
	{"operator", func(e *env) string { _, t := e.newUser(auth.Operator, false); return t }},
	{"viewer", func(e *env) string { _, t := e.newUser(auth.Viewer, false); return t }},
	{"no token", func(*env) string { return "" }},
	{"revoked token", func(e *env) string {
		u, t := e.newUser(auth.Admin, false)
		if _, err := e.db.SetPassword(context.Background(), u.ID, u.PasswordHash, false); err != nil {
			e.t.Fatal(err)
		}
		return t
	}},
	{"token of a deleted user", func(e *env) string {
		u, t := e.newUser(auth.Admin, false)
		if _, err := e.db.DeleteUser(context.Background(), u.ID); err != nil {
			e.t.Fatal(err)
		}
		return t
	}},
	{"expired service token", func(e *env) string {
		_, s := e.newServiceToken(auth.Admin, time.Now().Add(-time.Minute))
		return s
	}},
}

// TestAccountRoutesAnswerEachCallerWithTheRightStatus walks every new route
// × every kind of caller: admin-only routes answer admin with success,
// operator and viewer with 403, and no, revoked, deleted-user and expired
// service tokens with 401; the signed-in routes answer every role.
func TestAccountRoutesAnswerEachCallerWithTheRightStatus(t *testing.T) {
	t.Parallel()
	adminOnly := func(ok int) []int { return []int{ok, 403, 403, 401, 401, 401, 401} }
	signedIn := func(ok int) []int { return []int{ok, ok, ok, 401, 401, 401, 401} }
	for _, tc := range []struct {
		method string
		path   func(e *env) string
		body   func(e *env) any
		want   []int // per callers entry
	}{
		{http.MethodGet, fixed("/admin/users"), nil, adminOnly(200)},
		{http.MethodPost, fixed("/admin/users"), func(*env) any {
			return map[string]any{"email": unique("new") + "@example.com", "role": "viewer"}
		}, adminOnly(201)},
		{http.MethodGet, targetUser, nil, adminOnly(200)},
		{http.MethodPatch, targetUser, func(*env) any { return map[string]any{"role": "operator"} }, adminOnly(200)},
		{http.MethodDelete, targetUser, nil, adminOnly(204)},
		{http.MethodGet, fixed("/admin/tokens"), nil, adminOnly(200)},
		{http.MethodPost, fixed("/admin/tokens"), func(*env) any {
			return map[string]any{"name": unique("ci"), "role": "operator", "expires_in_days": 30}
		}, adminOnly(201)},
		{http.MethodDelete, func(e *env) string {
			st, _ := e.newServiceToken(auth.Viewer, time.Now().Add(time.Hour))
			return fmt.Sprintf("/admin/tokens/%d", st.ID)
		}, nil, adminOnly(204)},
		{http.MethodPost, fixed("/auth/password"), func(*env) any {
			return changePasswordRequest{CurrentPassword: testPassword, NewPassword: "a-brand-new-passphrase"}
		}, signedIn(200)},
		{http.MethodPost, fixed("/auth/logout"), nil, signedIn(204)},
		{http.MethodGet, fixed("/auth/whoami"), nil, signedIn(200)},
	} {
		e := newEnv(t)
		for i, c := range callers {
			path := tc.path(e)
			t.Run(tc.method+" "+path+" as "+c.name, func(t *testing.T) {
				var body any
				if tc.body != nil {
					body = tc.body(e)
				}
				r := e.do(req{method: tc.method, path: path, token: c.token(e), body: body})
				if r.status != tc.want[i] {
					t.Fatalf("%d %s, want %d", r.status, r.body, tc.want[i])
				}
				if r.status >= 400 {
					errorOf(t, r)
				}
			})
		}
	}
}

func fixed(p string) func(*env) string { return func(*env) string { return p } }

// targetUser creates a viewer for a route to act on and returns its path.
func targetUser(e *env) string {
	u, _ := e.newUser(auth.Viewer, false)
	return fmt.Sprintf("/admin/users/%d", u.ID)
}

func (e *env) adminUser() store.User {
	e.t.Helper()
	u, err := e.db.UserByEmail(context.Background(), testUsers[auth.Admin])
	if err != nil {
		e.t.Fatal(err)
	}
	return u
}

// TestLastActiveAdminCannotBeRemovedDemotedOrDeactivated: with one admin,
// each of the three changes is 409 last_admin and changes nothing; with a
// second admin the first may be demoted.
func TestLastActiveAdminCannotBeRemovedDemotedOrDeactivated(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	admin := e.token(auth.Admin)
	self := fmt.Sprintf("/admin/users/%d", e.adminUser().ID)
	for _, r := range []req{
		{method: http.MethodPatch, path: self, body: map[string]any{"role": "viewer"}},
		{method: http.MethodPatch, path: self, body: map[string]any{"active": false}},
		{method: http.MethodDelete, path: self},
	} {
		r.token = admin
		got := e.do(r)
		if code, _ := errorOf(t, got); got.status != http.StatusConflict || code != CodeLastAdmin {
			t.Errorf("%s %v: %d %s, want 409 %s", r.method, r.body, got.status, got.body, CodeLastAdmin)
		}
	}
	if u := e.adminUser(); u.Role != store.RoleAdmin || !u.Active {
		t.Fatalf("refused changes changed the admin: %+v", u)
	}
	op, _ := e.newUser(auth.Operator, false)
	if r := e.do(req{method: http.MethodPatch, path: fmt.Sprintf("/admin/users/%d", op.ID), token: admin, body: map[string]any{"role": "admin"}}); r.status != http.StatusOK {
		t.Fatalf("promote: %d %s", r.status, r.body)
	}
	if r := e.do(req{method: http.MethodPatch, path: self, token: admin, body: map[string]any{"role": "viewer"}}); r.status != http.StatusOK {
		t.Fatalf("demote one of two admins: %d %s", r.status, r.body)
	}
}

// TestCreatedUserMustChangeTheGeneratedPasswordFirst: a user created with
// a generated password logs in with it, is refused everywhere with 403
// password_change_required but on /auth/password and /auth/logout, gets
// 422 with the policy's reason for weak passwords, and after the change
// works with the new token while the old one is refused.
func TestCreatedUserMustChangeTheGeneratedPasswordFirst(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	r := e.do(req{method: http.MethodPost, path: "/admin/users", token: e.token(auth.Admin), body: map[string]any{"email": "New.Op@Example.com", "role": "operator"}})
	if r.status != http.StatusCreated {
		t.Fatalf("create: %d %s", r.status, r.body)
	}
	created := decode[createUserResponse](t, r)
	if created.GeneratedPassword == "" || !created.User.MustChangePassword || created.User.Email != "new.op@example.com" {
		t.Fatalf("created %s", r.body)
	}
	if strings.Contains(string(r.body), "$2a$") {
		t.Fatalf("the answer holds a hash: %s", r.body)
	}
	r = e.do(req{method: http.MethodPost, path: "/auth/login", body: loginRequest{Email: "new.op@example.com", Password: created.GeneratedPassword}})
	login := decode[loginResponse](t, r)
	if r.status != http.StatusOK || !login.MustChangePassword {
		t.Fatalf("login: %d %s", r.status, r.body)
	}
	r = e.do(req{method: http.MethodGet, path: "/admin/db/tasks", token: login.Token})
	if code, _ := errorOf(t, r); r.status != http.StatusForbidden || code != CodePasswordChangeRequired {
		t.Fatalf("before the change: %d %s, want 403 %s", r.status, r.body, CodePasswordChangeRequired)
	}
	for _, tc := range []struct{ pw, reason string }{
		{"short-one", auth.PolicyTooShort},
		{"new.op@example.com", auth.PolicyEmail},
		{"1qaz2wsx3edc", auth.PolicyCommon},
		{"AdminPassword123", auth.PolicyDefault},
	} {
		r := e.do(req{method: http.MethodPost, path: "/auth/password", token: login.Token, body: changePasswordRequest{CurrentPassword: created.GeneratedPassword, NewPassword: tc.pw}})
		code, msg := errorOf(t, r)
		if r.status != http.StatusUnprocessableEntity || code != CodePasswordPolicy || !strings.Contains(msg, tc.reason) {
			t.Errorf("new password %q: %d %s, want 422 %s (%s)", tc.pw, r.status, r.body, CodePasswordPolicy, tc.reason)
		}
	}
	r = e.do(req{method: http.MethodPost, path: "/auth/password", token: login.Token, body: changePasswordRequest{CurrentPassword: "not-the-password", NewPassword: "violet-harbour-42-lamps"}})
	if code, _ := errorOf(t, r); r.status != http.StatusForbidden || code != CodeWrongPassword {
		t.Fatalf("wrong current password: %d %s", r.status, r.body)
	}
	r = e.do(req{method: http.MethodPost, path: "/auth/password", token: login.Token, body: changePasswordRequest{CurrentPassword: created.GeneratedPassword, NewPassword: "violet-harbour-42-lamps"}})
	changed := decode[loginResponse](t, r)
	if r.status != http.StatusOK || changed.MustChangePassword || changed.Token == "" {
		t.Fatalf("change: %d %s", r.status, r.body)
	}
	if r := e.do(req{method: http.MethodGet, path: "/admin/db/tasks", token: changed.Token}); r.status != http.StatusOK {
		t.Fatalf("new token after the change: %d %s", r.status, r.body)
	}
	if r := e.do(req{method: http.MethodGet, path: "/admin/db/tasks", token: login.Token}); r.status != http.StatusUnauthorized || codeOf(t, r) != CodeUnauthorized {
		t.Fatalf("old token after the change: %d %s, want 401 (want CodeUnauthorized)", r.status, r.body)
	}
	// The audit trail never holds a password, hash or token.
	_, raws := e.auditEvents("audit.>")
	for _, raw := range raws {
		for _, secret := range []string{created.GeneratedPassword, "violet-harbour-42-lamps", login.Token, changed.Token, "$2a$"} {
			if strings.Contains(string(raw), secret) {
				t.Errorf("audit event holds a secret: %s", raw)
			}
		}
	}
}

// TestTokensAreRevokedOnTheVeryNextRequest: a password change, a role
// change, a deactivation, a deletion and a logout each make the user's
// existing token fail on the next request, with the API's default
// recheck interval.
func TestTokensAreRevokedOnTheVeryNextRequest(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	admin := e.token(auth.Admin)
	for _, tc := range []struct {
		name   string
		revoke func(u store.User, tok string) resp
	}{
		{"password change", func(_ store.User, tok string) resp {
			return e.do(req{method: http.MethodPost, path: "/auth/password", token: tok, body: changePasswordRequest{CurrentPassword: testPassword, NewPassword: "violet-harbour-42-lamps"}})
		}},
		{"role change", func(u store.User, _ string) resp {
			return e.do(req{method: http.MethodPatch, path: fmt.Sprintf("/admin/users/%d", u.ID), token: admin, body: map[string]any{"role": "viewer"}})
		}},
		{"deactivation", func(u store.User, _ string) resp {
			return e.do(req{method: http.MethodPatch, path: fmt.Sprintf("/admin/users/%d", u.ID), token: admin, body: map[string]any{"active": false}})
		}},
		{"deletion", func(u store.User, _ string) resp {
			return e.do(req{method: http.MethodDelete, path: fmt.Sprintf("/admin/users/%d", u.ID), token: admin})
		}},
		{"logout", func(_ store.User, tok string) resp {
			return e.do(req{method: http.MethodPost, path: "/auth/logout", token: tok})
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			u, tok := e.newUser(auth.Operator, false)
			if r := e.do(req{method: http.MethodGet, path: "/admin/db/tasks", token: tok}); r.status != http.StatusOK {
				t.Fatalf("before: %d %s", r.status, r.body)
			}
			if r := tc.revoke(u, tok); r.status >= 300 {
				t.Fatalf("%s: %d %s", tc.name, r.status, r.body)
			}
			if r := e.do(req{method: http.MethodGet, path: "/admin/db/tasks", token: tok}); r.status != http.StatusUnauthorized || codeOf(t, r) != CodeUnauthorized {
				t.Fatalf("next request after the %s: %d %s, want 401 (want CodeUnauthorized)", tc.name, r.status, r.body)
			}
		})
	}
}

// TestServiceTokenRunsABackupUntilRevoked: an admin creates an operator
// service token (secret shown once, listed without it), the token queues
// a backup named as its actor, and after DELETE it is refused at once.
func TestServiceTokenRunsABackupUntilRevoked(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	admin := e.token(auth.Admin)
	r := e.do(req{method: http.MethodPost, path: "/admin/tokens", token: admin, body: map[string]any{"name": "ci-backup", "role": "operator", "expires_in_days": 7}})
	if r.status != http.StatusCreated {
		t.Fatalf("create: %d %s", r.status, r.body)
	}
	created := decode[createTokenResponse](t, r)
	if !auth.IsServiceToken(created.Token) || created.CreatedBy != testUsers[auth.Admin] {
		t.Fatalf("created %s", r.body)
	}
	r = e.do(req{method: http.MethodPost, path: "/admin/db/backup", token: created.Token})
	if r.status != http.StatusAccepted {
		t.Fatalf("backup with the service token: %d %s", r.status, r.body)
	}
	acc := decode[Accepted](t, r)
	if acc.Job.SubmittedBy != "token:ci-backup" {
		t.Errorf("job submitted by %q, want token:ci-backup", acc.Job.SubmittedBy)
	}
	if r := e.do(req{method: http.MethodPost, path: "/admin/db/backup/restore/x.tar.zst?confirm=true", token: created.Token}); r.status != http.StatusForbidden || codeOf(t, r) != CodeForbidden {
		t.Errorf("operator service token restoring: %d %s, want 403 (want CodeForbidden)", r.status, r.body)
	}
	r = e.do(req{method: http.MethodGet, path: "/admin/tokens", token: admin})
	list := decode[tokensResponse](t, r)
	if len(list.Tokens) != 1 || list.Tokens[0].LastUsedAt == nil || strings.Contains(string(r.body), created.Token) {
		t.Fatalf("list: %s", r.body)
	}
	if r := e.do(req{method: http.MethodDelete, path: fmt.Sprintf("/admin/tokens/%d", created.ID), token: admin}); r.status != http.StatusNoContent {
		t.Fatalf("revoke: %d %s", r.status, r.body)
	}
	if r := e.do(req{method: http.MethodPost, path: "/admin/db/backup", token: created.Token}); r.status != http.StatusUnauthorized || codeOf(t, r) != CodeUnauthorized {
		t.Fatalf("after revocation: %d %s, want 401 (want CodeUnauthorized)", r.status, r.body)
	}
	evs, raws := e.auditEvents("audit.>")
	named := false
	for i, ev := range evs {
		if ev.Actor == "token:ci-backup" && strings.HasPrefix(ev.Action, "backup") {
			named = true
		}
		if strings.Contains(string(raws[i]), created.Token) {
			t.Errorf("audit event holds the token: %s", raws[i])
		}
	}
	if !named {
		t.Error("no backup audit event names the service token as actor")
	}
}

// TestPasswordChangeAttemptsCountAgainstTheLoginLimit: guessing the
// current password through /auth/password is rate-limited like a login.
func TestPasswordChangeAttemptsCountAgainstTheLoginLimit(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	_, tok := e.newUser(auth.Viewer, false)
	statuses := map[int]int{}
	for range LoginLimitPerEmail.Burst + 2 {
		r := e.do(req{method: http.MethodPost, path: "/auth/password", token: tok, body: changePasswordRequest{CurrentPassword: "guess-guess-guess", NewPassword: "violet-harbour-42-lamps"}})
		statuses[r.status]++
	}
	if statuses[http.StatusForbidden] != LoginLimitPerEmail.Burst || statuses[http.StatusTooManyRequests] != 2 {
		t.Fatalf("statuses %v, want %d×403 wrong_password then 2×429", statuses, LoginLimitPerEmail.Burst)
	}
}

// TestProductionRefusesToStartWhileAnAdminHasADefaultPassword: with
// APP_ENV=production, New fails naming the admin whose password is the
// development default, and starts once that password was changed.
func TestProductionRefusesToStartWhileAnAdminHasADefaultPassword(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := context.Background()
	h, err := auth.HashPassword(KnownDefaultPasswords[0])
	if err != nil {
		t.Fatal(err)
	}
	u, err := e.db.CreateUser(ctx, store.NewUser{Email: "dev-admin@example.com", PasswordHash: h, Role: store.RoleAdmin})
	if err != nil {
		t.Fatal(err)
	}
	prod := e.cfg
	prod.AppEnv = "production"
	prod.JWTSecret = strings.Repeat("p", 32)
	_, err = New(Deps{Config: prod, Bus: e.bus, DB: e.db})
	if !errors.Is(err, ErrDefaultAdminPassword) || !strings.Contains(err.Error(), u.Email) || strings.Contains(err.Error(), KnownDefaultPasswords[0]) {
		t.Fatalf("New in production with a default admin password: %v; want ErrDefaultAdminPassword naming %s, without the password", err, u.Email)
	}
	if _, err := New(Deps{Config: e.cfg, Bus: e.bus, DB: e.db}); err != nil {
		t.Fatalf("New in development: %v", err)
	}
	h2, err := auth.HashPassword("violet-harbour-42-lamps")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.db.SetPassword(ctx, u.ID, h2, false); err != nil {
		t.Fatal(err)
	}
	if _, err := New(Deps{Config: prod, Bus: e.bus, DB: e.db}); err != nil {
		t.Fatalf("New in production after the change: %v", err)
	}
}

// TestAccountActionsAreAuditedWithoutSecrets: every account action is an
// audit event naming actor, target and outcome; none holds a password,
// hash or token.
func TestAccountActionsAreAuditedWithoutSecrets(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	admin := e.token(auth.Admin)
	secrets := []string{admin, "$2a$", testPassword}
	r := e.do(req{method: http.MethodPost, path: "/admin/users", token: admin, body: map[string]any{"email": "audited@example.com", "role": "viewer", "password": "orchid-lantern-9-rivers"}})
	u := decode[createUserResponse](t, r).User
	secrets = append(secrets, "orchid-lantern-9-rivers")
	userPath := fmt.Sprintf("/admin/users/%d", u.ID)
	e.do(req{method: http.MethodPatch, path: userPath, token: admin, body: map[string]any{"role": "operator"}})
	e.do(req{method: http.MethodPatch, path: fmt.Sprintf("/admin/users/%d", e.adminUser().ID), token: admin, body: map[string]any{"active": false}})
	e.do(req{method: http.MethodDelete, path: userPath, token: admin})
	tok := decode[createTokenResponse](t, e.do(req{method: http.MethodPost, path: "/admin/tokens", token: admin, body: map[string]any{"name": "audited", "role": "viewer"}}))
	secrets = append(secrets, tok.Token, auth.HashServiceToken(tok.Token))
	e.do(req{method: http.MethodDelete, path: fmt.Sprintf("/admin/tokens/%d", tok.ID), token: admin})
	_, own := e.newUser(auth.Viewer, false)
	secrets = append(secrets, own, "violet-harbour-42-lamps")
	fresh := decode[loginResponse](t, e.do(req{method: http.MethodPost, path: "/auth/password", token: own, body: changePasswordRequest{CurrentPassword: testPassword, NewPassword: "violet-harbour-42-lamps"}}))
	secrets = append(secrets, fresh.Token)
	e.do(req{method: http.MethodPost, path: "/auth/logout", token: fresh.Token})

	want := map[string]string{ // action → outcome
		"user.created": "success", "user.updated": "success", "user.deleted": "success",
		"token.created": "success", "token.revoked": "success", "user.password_changed": "success", "auth.logout": "success",
	}
	evs, raws := e.auditEvents("audit.>")
	seen := map[string]bool{}
	deniedLastAdmin := false
	for i, ev := range evs {
		for _, s := range secrets {
			if strings.Contains(string(raws[i]), s) {
				t.Errorf("audit event %s holds a secret", raws[i])
			}
		}
		if ev.Action == "user.updated" && ev.Outcome == "denied" && ev.Detail["reason"] == CodeLastAdmin {
			deniedLastAdmin = true
		}
		if w, ok := want[ev.Action]; ok && ev.Outcome == w {
			if ev.Actor == "" {
				t.Errorf("%s without an actor: %s", ev.Action, raws[i])
			}
			if ev.Action != "auth.logout" && ev.Detail["user_id"] == nil && ev.Detail["token_id"] == nil {
				t.Errorf("%s without a target: %s", ev.Action, raws[i])
			}
			seen[ev.Action] = true
		}
	}
	for a := range want {
		if !seen[a] {
			t.Errorf("no %s event", a)
		}
	}
	if !deniedLastAdmin {
		t.Error("the refused deactivation of the last admin is not audited")
	}
}
