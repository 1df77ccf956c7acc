package httpapi

import (
	"context"
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

func TestTargetTest(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	path := filepath.Join(t.TempDir(), "copy.db")
	syncDemo(t, path)
	want := demoInfo(t, path)

	for _, u := range []string{path, "file:" + path, "file://" + path + "?mode=ro"} {
		res, r := e.targetTest(map[string]string{"url": u})
		if !r.OK || r.Kind != TargetKindSQLite || r.Tables != want.Tables || r.Error != "" {
			t.Errorf("%s: %d %s", u, res.status, res.body)
		}
		if strings.Contains(string(res.body), path) {
			t.Errorf("%s: the path is echoed: %s", u, res.body)
		}
	}

	missing := filepath.Join(t.TempDir(), "nope.db")
	res, r := e.targetTest(map[string]string{"url": missing})
	if res.status != http.StatusOK || r.OK || r.Kind != TargetKindSQLite || r.Error == "" || strings.Contains(string(res.body), missing) {
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
		res, r := e.targetTest(map[string]string{"url": pg})
		if !r.OK || r.Kind != TargetKindPostgres || r.Error != "" || r.Tables != 0 {
			t.Errorf("%d %s", res.status, res.body)
		}

		// A role that does not exist, with a password: refused whatever
		// the server's authentication method, and nothing of it echoed.
		const secret = "Wr0ng-Pa55-q7x9z"
		const user = "insightops_nobody_k3j"
		u, err := url.Parse(pg)
		if err != nil {
			t.Fatal(err)
		}
		u.User = url.UserPassword(user, secret)
		res, r = e.targetTest(map[string]string{"url": u.String()})
		if res.status != http.StatusOK || r.OK || r.Kind != TargetKindPostgres || r.Error == "" {
			t.Errorf("wrong credentials: %d %s", res.status, res.body)
		}
		for _, leak := range []string{secret, user, u.String()} {
			if strings.Contains(string(res.body), leak) {
				t.Errorf("response leaks %q: %s", leak, res.body)
			}
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
