package httpapi

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/insightops/insightops/shared/auth"
	"github.com/insightops/insightops/shared/backupstore"
	"github.com/insightops/insightops/shared/golden"
	"github.com/insightops/insightops/shared/testkit"
)

// demoDB is the shipped demo target database.
const demoDB = "../../../assets/databases/vanna_db.db"

// syncDemo installs the demo DB at dest as init does.
func syncDemo(t *testing.T, dest string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := golden.Sync(ctx, demoDB, dest); err != nil {
		t.Fatal(err)
	}
}

func demoInfo(t *testing.T, path string) golden.Info {
	t.Helper()
	ctx := context.Background()
	db, err := golden.OpenReadOnly(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	info, err := golden.Inspect(ctx, db, 10)
	if err != nil {
		t.Fatal(err)
	}
	return info
}

func (e *env) targetHealth() TargetHealth {
	e.t.Helper()
	res := e.do(req{method: http.MethodGet, path: "/admin/db/target/health", token: e.token(auth.Viewer)})
	if res.status != http.StatusOK {
		e.t.Fatalf("target health: %d %s", res.status, res.body)
	}
	return decode[TargetHealth](e.t, res)
}

func TestTargetHealth(t *testing.T) {
	t.Parallel()
	t.Run("disabled", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t)
		th := e.targetHealth()
		if th.Enabled || th.Status != TargetDisabled || th.SampleTables == nil || th.Error != "" {
			t.Errorf("%+v", th)
		}
		c := e.healthReport().Components["target_db"]
		if c.Status != StatusDisabled {
			t.Errorf("target_db component %+v", c)
		}
	})
	t.Run("enabled but missing", func(t *testing.T) {
		t.Parallel()
		e := newEnvWith(t, map[string]string{"ENABLE_TARGET_DB": "true"})
		th := e.targetHealth()
		if !th.Enabled || th.Status != TargetDown || !strings.Contains(th.Error, "init") || th.Path != e.cfg.TargetDBPath {
			t.Errorf("%+v", th)
		}
		c := e.healthReport().Components["target_db"]
		if c.Status != StatusDegraded || !strings.Contains(c.Detail, "does not exist") {
			t.Errorf("target_db component %+v", c)
		}
	})
	t.Run("demo copy", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t) // ENABLE_TARGET_DB off, but a runtime copy exists
		syncDemo(t, e.cfg.TargetDBPath)
		want := demoInfo(t, e.cfg.TargetDBPath)
		th := e.targetHealth()
		if !th.Enabled || th.Status != TargetHealthy || th.Path != e.cfg.TargetDBPath || th.Error != "" {
			t.Fatalf("%+v", th)
		}
		if th.Tables != want.Tables || th.Views != want.Views || th.Tables == 0 || strings.Join(th.SampleTables, ",") != strings.Join(want.TableNames, ",") || len(th.SampleTables) > 10 {
			t.Errorf("got %+v, want %+v", th, want)
		}
		c := e.healthReport().Components["target_db"]
		if c.Status != StatusOK || !strings.Contains(c.Detail, e.cfg.TargetDBPath) {
			t.Errorf("target_db component %+v", c)
		}
	})
	t.Run("external postgres", func(t *testing.T) {
		t.Parallel()
		pg := testkit.Postgres(t)
		e := newEnvWith(t, map[string]string{"TARGET_DATABASE_URL": pg})
		th := e.targetHealth()
		if !th.Enabled || th.Status != TargetHealthy || th.Error != "" {
			t.Fatalf("%+v", th)
		}
		if u, _ := url.Parse(pg); strings.Contains(th.Path, "@") || !strings.Contains(th.Path, u.Host) {
			t.Errorf("path %q", th.Path)
		}
	})
}

func (e *env) targetTest(body any) (resp, TargetTestResult) {
	e.t.Helper()
	res := e.do(req{method: http.MethodPost, path: "/admin/db/target/test", token: e.token(auth.Admin), body: body})
	if res.status != http.StatusOK {
		return res, TargetTestResult{}
	}
	return res, decode[TargetTestResult](e.t, res)
}

// lenientTargetLimit lifts the per-user probe limit for tests that probe
// more often than TargetTestLimit allows.
func (e *env) lenientTargetLimit() {
	e.srv.targetTests = newKeyedLimiter(Limit{Every: time.Millisecond, Burst: 1000})
}

func TestTargetTest(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	e := newEnvWith(t, map[string]string{"TARGET_TEST_ALLOWED_PATHS": dir})
	e.lenientTargetLimit()
	path := filepath.Join(dir, "copy.db")
	syncDemo(t, path)
	want := demoInfo(t, path)

	for _, u := range []string{path, "file:" + path, "file://" + path + "?mode=ro"} {
		res, r := e.targetTest(map[string]string{"url": u})
		if !r.OK || r.Kind != TargetKindSQLite || r.Tables != want.Tables || r.Error != "" || r.ErrorCode != "" {
			t.Errorf("%s: %d %s", u, res.status, res.body)
		}
		if strings.Contains(string(res.body), path) {
			t.Errorf("%s: the path is echoed: %s", u, res.body)
		}
	}

	missing := filepath.Join(dir, "nope.db")
	res, r := e.targetTest(map[string]string{"url": missing})
	if res.status != http.StatusOK || r.OK || r.Kind != TargetKindSQLite || r.ErrorCode != TargetErrNotFound || strings.Contains(string(res.body), missing) {
		t.Errorf("missing file: %d %s", res.status, res.body)
	}
	if _, err := os.Stat(missing); err == nil {
		t.Errorf("probing a missing file created it")
	}

	// Bad input is a 400.
	for _, body := range []any{`{"url":`, map[string]string{"url": ""}, map[string]string{"url": "mysql://u:p@h/db"}, map[string]any{"url": 5}, map[string]string{"uri": path}} {
		res, _ := e.targetTest(body)
		if res.status != http.StatusBadRequest {
			t.Errorf("%v: %d %s", body, res.status, res.body)
		}
		errorOf(t, res)
	}
	// Viewers and operators may not probe.
	for _, role := range []auth.Role{auth.Viewer, auth.Operator} {
		if res := e.do(req{method: http.MethodPost, path: "/admin/db/target/test", token: e.token(role), body: map[string]string{"url": path}}); res.status != http.StatusForbidden || codeOf(t, res) != CodeForbidden {
			t.Errorf("%s: %d (want CodeForbidden; body %s)", role, res.status, res.body)
		}
	}

	t.Run("postgres", func(t *testing.T) {
		pg := testkit.Postgres(t)
		u, err := url.Parse(pg)
		if err != nil {
			t.Fatal(err)
		}
		e := newEnvWith(t, map[string]string{"TARGET_TEST_ALLOWED_HOSTS": u.Host})
		e.lenientTargetLimit()
		res, r := e.targetTest(map[string]string{"url": pg})
		if !r.OK || r.Kind != TargetKindPostgres || r.Error != "" || r.Tables != 0 {
			t.Errorf("%d %s", res.status, res.body)
		}

		// A role that does not exist, with a password: refused whatever
		// the server's authentication method, answered as auth_failed,
		// nothing of it echoed.
		const secret = "Wr0ng-Pa55-q7x9z"
		const user = "insightops_nobody_k3j"
		u.User = url.UserPassword(user, secret)
		res, r = e.targetTest(map[string]string{"url": u.String()})
		if res.status != http.StatusOK || r.OK || r.Kind != TargetKindPostgres || r.ErrorCode != TargetErrAuthFailed || r.Error != targetErrMessages[TargetErrAuthFailed] {
			t.Errorf("wrong credentials: %d %s", res.status, res.body)
		}
		for _, leak := range []string{secret, user, u.String()} {
			if strings.Contains(string(res.body), leak) {
				t.Errorf("response leaks %q: %s", leak, res.body)
			}
		}
		// A database that does not exist: not_found, not the server's words.
		nodb := *u
		nodb.User, nodb.Path = url.User("postgres"), "/insightops_no_such_db_q8"
		res, r = e.targetTest(map[string]string{"url": nodb.String()})
		if r.OK || r.ErrorCode != TargetErrNotFound || strings.Contains(string(res.body), "insightops_no_such_db_q8") {
			t.Errorf("missing database: %d %s", res.status, res.body)
		}
		// The probes are audited with the scheme and host only.
		evs, raws := e.auditEvents("audit.target.test")
		if len(evs) < 2 {
			t.Fatalf("%d target.test events", len(evs))
		}
		for i, raw := range raws {
			if strings.Contains(string(raw), secret) || strings.Contains(string(raw), user) || strings.Contains(string(raw), path) {
				t.Errorf("audit event leaks: %s", raw)
			}
			if evs[i].Actor != testUsers[auth.Admin] {
				t.Errorf("actor %q", evs[i].Actor)
			}
		}
		last := evs[len(evs)-1]
		if last.Outcome != "failure" || last.Detail["scheme"] != "postgres" || last.Detail["host"] != u.Hostname() {
			t.Errorf("last event %+v", last)
		}
	})
}

// TestTargetTestRefusals: every way out of the policy is refused with its
// code before anything is opened or dialled, and audited as denied.
func TestTargetTestRefusals(t *testing.T) {
	t.Parallel()
	allowed := t.TempDir()
	outside := t.TempDir()
	secretFile := filepath.Join(outside, "secret.db")
	syncDemo(t, secretFile)
	if err := os.Symlink(secretFile, filepath.Join(allowed, "link.db")); err != nil {
		t.Fatal(err)
	}
	e := newEnvWith(t, map[string]string{
		"TARGET_TEST_ALLOWED_PATHS": allowed,
		"TARGET_TEST_ALLOWED_HOSTS": "db.internal:5432,127.0.0.1",
	})
	e.lenientTargetLimit()
	cases := []struct {
		name, url string
		status    int
		code      string
	}{
		{"file outside the allowed directories", secretFile, http.StatusForbidden, CodeTargetNotAllowed},
		{"file: URL outside", "file://" + secretFile, http.StatusForbidden, CodeTargetNotAllowed},
		{"dot-dot out of the allowed directory", allowed + "/../" + filepath.Base(outside) + "/secret.db", http.StatusForbidden, CodeTargetNotAllowed},
		{"link inside pointing outside", filepath.Join(allowed, "link.db"), http.StatusForbidden, CodeTargetNotAllowed},
		{"system file", "/etc/passwd", http.StatusForbidden, CodeTargetNotAllowed},
		{"relative path", "copy.db", http.StatusForbidden, CodeTargetNotAllowed},
		{"host not allowed", "postgres://u:p@evil.example.com:5432/db", http.StatusForbidden, CodeTargetNotAllowed},
		{"allowed host, other port", "postgres://u:p@db.internal:6543/db", http.StatusForbidden, CodeTargetNotAllowed},
		{"fallback host not allowed", "postgres://u:p@127.0.0.1:5432,evil.example.com:5432/db", http.StatusForbidden, CodeTargetNotAllowed},
		{"default host (unix socket)", "postgres:///db", http.StatusForbidden, CodeTargetNotAllowed},
		{"host override in the query", "postgres://u:p@127.0.0.1/db?host=evil.example.com", http.StatusBadRequest, CodeTargetParamRefused},
		{"passfile", "postgres://u@127.0.0.1/db?passfile=/etc/shadow", http.StatusBadRequest, CodeTargetParamRefused},
		{"servicefile", "postgres://u@127.0.0.1/db?servicefile=/etc/passwd&service=x", http.StatusBadRequest, CodeTargetParamRefused},
		{"service", "postgres://u@127.0.0.1/db?service=prod", http.StatusBadRequest, CodeTargetParamRefused},
		{"sslkey", "postgres://u@127.0.0.1/db?sslmode=require&sslkey=/root/.ssh/id_rsa", http.StatusBadRequest, CodeTargetParamRefused},
		{"sslcert", "postgres://u@127.0.0.1/db?sslcert=/etc/ssl/private/key.pem", http.StatusBadRequest, CodeTargetParamRefused},
		{"sslrootcert", "postgres://u@127.0.0.1/db?SSLROOTCERT=/etc/passwd", http.StatusBadRequest, CodeTargetParamRefused},
		{"sslcrl", "postgres://u@127.0.0.1/db?sslcrl=/etc/passwd", http.StatusBadRequest, CodeTargetParamRefused},
	}
	for _, tc := range cases {
		res, _ := e.targetTest(map[string]string{"url": tc.url})
		code, msg := errorOf(t, res)
		if res.status != tc.status || code != tc.code {
			t.Errorf("%s: %d %s, want %d %s", tc.name, res.status, res.body, tc.status, tc.code)
		}
		for _, leak := range []string{"root:", "/etc/shadow", secretFile} {
			if strings.Contains(msg, leak) {
				t.Errorf("%s: message leaks %q: %s", tc.name, leak, msg)
			}
		}
	}
	evs, _ := e.auditEvents("audit.target.test")
	denied := 0
	for _, ev := range evs {
		if ev.Outcome == "denied" {
			denied++
		}
	}
	if denied != len(cases) {
		t.Errorf("%d denied target.test events, want %d", denied, len(cases))
	}
}

// TestTargetTestCategories: failures answer a category and its fixed
// sentence, never the driver's or the file system's words.
func TestTargetTestCategories(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	garbage := filepath.Join(dir, "garbage.db")
	if err := os.WriteFile(garbage, []byte("root:x:0:0:root:/root:/bin/bash\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	// A port nothing listens on: take one and close it.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closedPort := ln.Addr().(*net.TCPAddr).Port
	_ = ln.Close()
	e := newEnvWith(t, map[string]string{"TARGET_TEST_ALLOWED_PATHS": dir, "TARGET_TEST_ALLOWED_HOSTS": "127.0.0.1"})
	e.lenientTargetLimit()
	for _, tc := range []struct {
		name, url, code string
	}{
		{"not a database", garbage, TargetErrNotADatabase},
		{"missing file", filepath.Join(dir, "missing.db"), TargetErrNotFound},
		{"closed port", fmt.Sprintf("postgres://u:p@127.0.0.1:%d/db?connect_timeout=2", closedPort), TargetErrRefused},
	} {
		res, r := e.targetTest(map[string]string{"url": tc.url})
		if res.status != http.StatusOK || r.OK || r.ErrorCode != tc.code || r.Error != targetErrMessages[tc.code] {
			t.Errorf("%s: %d %s, want error_code %s", tc.name, res.status, res.body, tc.code)
		}
		if strings.Contains(string(res.body), "root:") {
			t.Errorf("%s: file content leaked: %s", tc.name, res.body)
		}
	}
}

// TestTargetTestRateLimit: beyond TargetTestLimit's burst a user gets
// 429 rate_limited with Retry-After.
func TestTargetTestRateLimit(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	body := map[string]string{"url": filepath.Join(filepath.Dir(e.cfg.TargetDBPath), "none.db")}
	for i := range TargetTestLimit.Burst {
		if res, _ := e.targetTest(body); res.status != http.StatusOK {
			t.Fatalf("probe %d: %d %s", i+1, res.status, res.body)
		}
	}
	res, _ := e.targetTest(body)
	if code, _ := errorOf(t, res); res.status != http.StatusTooManyRequests || code != CodeRateLimited || res.header.Get("Retry-After") == "" {
		t.Fatalf("probe beyond the burst: %d %s", res.status, res.body)
	}
}

func (e *env) healthReport() HealthReport {
	e.t.Helper()
	res := e.do(req{method: http.MethodGet, path: "/admin/db/health", token: e.token(auth.Viewer)})
	if res.status != http.StatusOK && res.status != http.StatusServiceUnavailable {
		e.t.Fatalf("health: %d %s", res.status, res.body)
	}
	return decode[HealthReport](e.t, res)
}

func TestHealthBackupsComponent(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	// A fresh install (not initialised, no backup) is not degraded; see
	// TestBackupFreshnessRollsIntoHealth for the 25 h after init.
	c := e.healthReport().Components["backups"]
	if c.Status != StatusOK || !strings.Contains(c.Detail, "no backup yet") || c.CreatedAt != nil {
		t.Errorf("no backup: %+v", c)
	}

	old := time.Now().Add(-30 * time.Hour).UTC().Truncate(time.Second)
	name, st := putArchive(t, e, old)
	c = e.healthReport().Components["backups"]
	if c.Status != StatusDegraded || !strings.Contains(c.Detail, "no backup in the last 25 hours") || c.CreatedAt == nil || !c.CreatedAt.Equal(old) {
		t.Errorf("stale backup: %+v", c)
	}
	verified := time.Now().Add(-time.Hour).UTC().Truncate(time.Second)
	m, err := st.Meta(context.Background(), name)
	if err != nil {
		t.Fatal(err)
	}
	m.Verification = &backupstore.Verification{VerifiedAt: verified, Outcome: backupstore.OutcomePassed}
	if err := st.SetMeta(context.Background(), name, m); err != nil {
		t.Fatal(err)
	}

	recent := time.Now().Add(-time.Hour).UTC().Truncate(time.Second)
	putArchive(t, e, recent)
	c = e.healthReport().Components["backups"]
	if c.Status != StatusOK || c.CreatedAt == nil || !c.CreatedAt.Equal(recent) || c.VerifiedAt == nil || !c.VerifiedAt.Equal(verified) {
		t.Errorf("recent backup: %+v", c)
	}

	// An unreadable backup store is degraded, never a 500.
	blocker := filepath.Join(t.TempDir(), "not-a-dir")
	if err := os.WriteFile(blocker, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	e2 := newEnvWith(t, map[string]string{"BACKUP_DIR": filepath.Join(blocker, "backups")})
	res := e2.do(req{method: http.MethodGet, path: "/admin/db/health", token: e2.token(auth.Viewer)})
	if res.status != http.StatusOK {
		t.Fatalf("health with a broken backup store: %d %s", res.status, res.body)
	}
	rep := decode[HealthReport](t, res)
	if c := rep.Components["backups"]; c.Status != StatusDegraded || !strings.Contains(c.Detail, "unavailable") {
		t.Errorf("broken store: %+v", c)
	}
	if rep.Components["target_db"].Status != StatusDisabled {
		t.Errorf("target_db %+v", rep.Components["target_db"])
	}
}
