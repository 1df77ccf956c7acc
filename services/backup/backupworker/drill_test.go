package backupworker

import (
	"context"
	"encoding/json"
	"slices"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/insightops/insightops/shared/backupstore"
	"github.com/insightops/insightops/shared/jobs"
	"github.com/insightops/insightops/shared/jobspec"
	"github.com/insightops/insightops/shared/metrics"
	"github.com/insightops/insightops/shared/testkit"
)

// s3Vars are the variables of BACKUP_STORE=s3 on a fresh bucket of a real
// S3 server (versitygw) started for the test.
// With locking the bucket has object lock enabled.
func s3Vars(t *testing.T, locking bool) map[string]string {
	t.Helper()
	srv := testkit.S3(t)
	return map[string]string{
		"BACKUP_STORE": "s3", "BACKUP_S3_ENDPOINT": srv.Endpoint, "BACKUP_S3_BUCKET": srv.Bucket(t, locking),
		"BACKUP_S3_PREFIX": "insightops/", "BACKUP_S3_REGION": srv.Region, "BACKUP_S3_PATH_STYLE": "true",
		"AWS_ACCESS_KEY_ID": srv.AccessKey, "AWS_SECRET_ACCESS_KEY": srv.SecretKey, "BACKUP_S3_PART_SIZE_MB": "5",
	}
}

// TestDrillSchedulerRestoresTheNewestArchive: with BACKUP_DRILL_SCHEDULE
// the drill scheduler submits backup.verify jobs with drill set; on an
// empty store such a drill fails with not_found, and once there are
// archives (in S3) it verifies the newest one — scratch restores, counts
// against the manifest — and records the outcome as that archive's last
// drill, in Meta and in the drill metrics.
func TestDrillSchedulerRestoresTheNewestArchive(t *testing.T) {
	t.Parallel()
	vars := s3Vars(t, false)
	vars["BACKUP_DRILL_SCHEDULE"] = "@every 2s"
	e := newEnv(t, envOpts{Vars: vars})
	ctx := context.Background()
	startReplica(t, e, "backup-drill", Options{}, nil)

	empty := e.waitFinal(e.submit(DrillArgs(e.cfg.BackupDrillSchedule, time.Now())), 30*time.Second)
	if empty.State != jobs.Failed || empty.Error == nil || empty.Error.Code != jobs.CodeNotFound {
		t.Fatalf("drill of an empty store: %s %+v", empty.State, empty.Error)
	}

	older := e.create(jobspec.BackupCreateArgs{}).Archive
	newest := e.create(jobspec.BackupCreateArgs{}).Archive
	if list := e.listed(); len(list) != 2 || list[0].Name != newest {
		t.Fatalf("listed %+v, want %s newest", list, newest)
	}

	s := NewDrillScheduler(e.deps)
	if s == nil {
		t.Fatal("no drill scheduler with BACKUP_DRILL_SCHEDULE set")
	}
	sctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { defer close(done); _ = s.Run(sctx) }()
	t.Cleanup(func() { cancel(); <-done })

	var drilled backupstore.Meta
	eventually(t, 90*time.Second, "a drill of the newest archive", func() bool {
		m, err := e.st.Meta(ctx, newest)
		drilled = m
		return err == nil && m.Drill != nil
	})
	if drilled.Drill.Outcome != backupstore.OutcomePassed || !drilled.Verified() || drilled.Drill.JobID != drilled.Verification.JobID {
		t.Fatalf("drill of %s: %+v (verification %+v)", newest, drilled.Drill, drilled.Verification)
	}
	if m, _ := e.st.Meta(ctx, older); m.Drill != nil {
		t.Fatalf("the older archive was drilled: %+v", m.Drill)
	}
	rec := e.record(drilled.Drill.JobID)
	var args jobspec.BackupVerifyArgs
	var res jobspec.BackupVerifyResult
	if err := json.Unmarshal(rec.Params, &args); err != nil || args.Drill == nil || args.Name != "" || rec.SubmittedBy != SchedulerActor {
		t.Fatalf("drill job params %s by %s: %v", rec.Params, rec.SubmittedBy, err)
	}
	if err := json.Unmarshal(rec.Result, &res); err != nil || res.Archive != newest || len(res.Files) == 0 {
		t.Fatalf("drill job result %s: %v", rec.Result, err)
	}
	// The databases were restored into scratch files and counted (the
	// counts are checked against the manifest by the verification).
	restored := slices.IndexFunc(res.Files, func(f jobspec.VerifiedFile) bool {
		return f.Check == jobspec.CheckSQLite && f.Count > 0
	})
	if restored < 0 {
		t.Fatalf("no database was restored and counted: %+v", res.Files)
	}
	if got := testutil.ToFloat64(metrics.LastBackupDrillPassed); got != 1 {
		t.Fatalf("last drill passed gauge = %v", got)
	}
	if got := testutil.ToFloat64(metrics.BackupDrills.WithLabelValues(backupstore.OutcomePassed)); got < 1 {
		t.Fatalf("passed drills = %v", got)
	}
}
