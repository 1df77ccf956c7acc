package httpapi

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/insightops/insightops/shared/auth"
	"github.com/insightops/insightops/shared/jobs"
	"github.com/insightops/insightops/shared/presence"
	"github.com/insightops/insightops/shared/store"
	"github.com/insightops/insightops/shared/testkit"
)

// announceAllKinds keeps one live worker of every kind in WORKERS until the
// test ends, so the health report's roll-up depends on the other
// components only.
func announceAllKinds(t *testing.T, e *env) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	var dones []chan struct{}
	for _, k := range jobs.WorkerKinds {
		d := make(chan struct{})
		dones = append(dones, d)
		go func() {
			defer close(d)
			presence.NewAnnouncer(e.bus.Workers, k, k+"-health", 1, 200*time.Millisecond, testkit.Logger(t)).Run(ctx)
		}()
	}
	t.Cleanup(func() {
		cancel()
		for _, d := range dones {
			<-d
		}
	})
}

// TestBackupFreshnessRollsIntoHealth: the "backups" component counts in
// the overall status. A backup older than 25 h is degraded; with no backup
// at all, a system initialised less than 25 h ago (or not yet) is ok —
// "no backup yet", so a fresh install is not degraded — and one
// initialised longer ago is degraded.
func TestBackupFreshnessRollsIntoHealth(t *testing.T) {
	t.Parallel()
	now := time.Now().UTC()
	for _, tc := range []struct {
		name       string
		initAgo    time.Duration // 0: never initialised
		backupAgo  time.Duration // 0: no backup
		wantStatus string
		wantDetail string
	}{
		{"fresh install, not initialised, no backup", 0, 0, StatusOK, "no backup yet"},
		{"initialised an hour ago, no backup", time.Hour, 0, StatusOK, "no backup yet"},
		{"initialised 30 h ago, no backup", 30 * time.Hour, 0, StatusDegraded, "no backup at all"},
		{"recent backup", 30 * time.Hour, 2 * time.Hour, StatusOK, "last backup"},
		{"backup older than 25 h", 30 * time.Hour, 26 * time.Hour, StatusDegraded, "no backup in the last 25 hours"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t)
			ctx := context.Background()
			if tc.initAgo > 0 {
				if err := e.db.SetConfig(ctx, store.ConfigInitCompletedAt, now.Add(-tc.initAgo).Format(time.RFC3339)); err != nil {
					t.Fatal(err)
				}
			}
			if tc.backupAgo > 0 {
				putArchive(t, e, now.Add(-tc.backupAgo))
			}
			announceAllKinds(t, e)
			viewer := e.token(auth.Viewer)
			var rep HealthReport
			var status int
			eventually(t, 10*time.Second, "every worker kind to show", func() bool {
				res := e.do(req{method: http.MethodGet, path: "/admin/db/health", token: viewer})
				status, rep = res.status, decode[HealthReport](t, res)
				return rep.Components["workers"].Status == StatusOK
			})
			b := rep.Components["backups"]
			if b.Status != tc.wantStatus || !strings.Contains(b.Detail, tc.wantDetail) {
				t.Errorf("backups component %+v, want %s with %q", b, tc.wantStatus, tc.wantDetail)
			}
			if rep.Status != tc.wantStatus || status != http.StatusOK {
				t.Errorf("overall %s (HTTP %d), want %s; components %+v", rep.Status, status, tc.wantStatus, rep.Components)
			}
			if tc.backupAgo > 0 && (b.CreatedAt == nil || b.CreatedAt.Sub(now.Add(-tc.backupAgo)).Abs() > time.Second) {
				t.Errorf("created_at %v, want %v", b.CreatedAt, now.Add(-tc.backupAgo))
			}
		})
	}
}
