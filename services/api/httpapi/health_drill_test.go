package httpapi

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/insightops/insightops/shared/auth"
	"github.com/insightops/insightops/shared/backupstore"
)

// TestLastDrillHealth: the "last_drill" component of GET /admin/db/health
// under BACKUP_DRILL_SCHEDULE=@daily, from the drills recorded in the
// archives' Meta: disabled without the schedule, ok before any archive
// and after a recent passed drill, degraded after a failed drill, when
// drills stopped (two ticks without one) and when archives older than two
// ticks were never drilled.
func TestLastDrillHealth(t *testing.T) {
	t.Parallel()
	now := time.Now().UTC()
	drill := func(ago time.Duration, outcome string) *backupstore.Verification {
		return &backupstore.Verification{VerifiedAt: now.Add(-ago), Outcome: outcome, Error: map[bool]string{true: "", false: "target/vanna_db.db: count 3, manifest says 4"}[outcome == backupstore.OutcomePassed], JobID: "01JD5ZQ8W3K9V4T7X2M6N1P0RS"}
	}
	for _, tc := range []struct {
		name       string
		schedule   string
		archiveAgo time.Duration // 0: no archive
		drill      *backupstore.Verification
		wantStatus string
		wantDetail string
	}{
		{"no schedule", "", time.Hour, nil, StatusDisabled, "BACKUP_DRILL_SCHEDULE is not set"},
		{"no archive yet", "@daily", 0, nil, StatusOK, "no restore drill yet"},
		{"a new archive not drilled yet", "@daily", time.Hour, nil, StatusOK, "no restore drill yet"},
		{"archives for days, never drilled", "@daily", 72 * time.Hour, nil, StatusDegraded, "no restore drill recorded"},
		{"a recent drill passed", "@daily", 72 * time.Hour, drill(time.Hour, backupstore.OutcomePassed), StatusOK, "passed at"},
		{"the last drill failed", "@daily", 72 * time.Hour, drill(time.Hour, backupstore.OutcomeFailed), StatusDegraded, "failed: target/vanna_db.db: count 3"},
		{"drills stopped", "@daily", 96 * time.Hour, drill(72*time.Hour, backupstore.OutcomePassed), StatusDegraded, "but none since"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			vars := map[string]string{}
			if tc.schedule != "" {
				vars["BACKUP_DRILL_SCHEDULE"] = tc.schedule
			}
			e := newEnvWith(t, vars)
			if tc.archiveAgo > 0 {
				name, st := putArchive(t, e, now.Add(-tc.archiveAgo))
				if tc.drill != nil {
					ctx := context.Background()
					m, err := st.Meta(ctx, name)
					if err != nil {
						t.Fatal(err)
					}
					m.Drill = tc.drill
					if err := st.SetMeta(ctx, name, m); err != nil {
						t.Fatal(err)
					}
				}
			}
			res := e.do(req{method: http.MethodGet, path: "/admin/db/health", token: e.token(auth.Viewer)})
			c := decode[HealthReport](t, res).Components["last_drill"]
			if c.Status != tc.wantStatus || !strings.Contains(c.Detail, tc.wantDetail) {
				t.Fatalf("last_drill = %+v, want %s with %q", c, tc.wantStatus, tc.wantDetail)
			}
			if tc.drill != nil && (c.VerifiedAt == nil || !c.VerifiedAt.Equal(tc.drill.VerifiedAt.UTC())) {
				t.Fatalf("verified_at %v, want %v", c.VerifiedAt, tc.drill.VerifiedAt)
			}
		})
	}
}
