package restoreworker_test

import (
	"strings"
	"testing"
	"time"

	"github.com/insightops/insightops/shared/audit"
	"github.com/insightops/insightops/shared/jobs"
	"github.com/insightops/insightops/shared/jobspec"
	"github.com/insightops/insightops/shared/locks"
	"github.com/insightops/insightops/shared/testkit"
)

// TestLockWaitIsAudited: a restore that meets the system lease held by a
// backup waits for it (polling, reporting the holder in its step), then
// restores. The AUDIT stream holds exactly one restore.lock_wait event for
// it — denied, on the system store, naming the holder, as the submitter —
// and one restore.lock_acquired saying how long it waited.
func TestLockWaitIsAudited(t *testing.T) {
	t.Parallel()
	e := newEnv(t, testkit.SQLite)
	e.seed()
	archive := e.backup()
	backupID := jobs.NewID()
	lease, err := locks.Acquire(e.ctx, e.deps.Bus.Locks, locks.System, locks.Holder{Owner: backupID, Operation: jobs.KindBackupCreate}, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	released := false
	defer func() {
		if !released {
			_ = lease.Release(e.ctx)
		}
	}()
	id := e.submit(jobspec.RestoreArgs{Archive: archive.Archive})
	testkit.WaitJob(t, e.jobs, id, 60*time.Second, "the job to wait for the lock", func(r jobs.Record) bool {
		return r.State == jobs.Running && strings.Contains(r.Step, "system is locked by backup.create")
	})
	if err := lease.Release(e.ctx); err != nil {
		t.Fatal(err)
	}
	released = true
	if rec := e.final(id); rec.State != jobs.Succeeded {
		t.Fatalf("job %s, step %q, error %+v", rec.State, rec.Step, rec.Error)
	}

	waits, err := audit.Read(e.ctx, e.deps.Bus.JS, "audit.system.restore.lock_wait")
	if err != nil {
		t.Fatal(err)
	}
	if len(waits) != 1 {
		t.Fatalf("%d restore.lock_wait events, want 1: %+v", len(waits), waits)
	}
	ev := waits[0]
	holder, _ := ev.Detail["holder"].(map[string]any)
	if ev.Action != "restore.lock_wait" || ev.Resource != locks.System || ev.Outcome != audit.Denied || ev.JobID != id ||
		ev.Actor != "admin@example.com" || holder["job_id"] != backupID || holder["operation"] != jobs.KindBackupCreate {
		t.Errorf("lock_wait event %+v", ev)
	}
	acquired, err := audit.Read(e.ctx, e.deps.Bus.JS, "audit.system.restore.lock_acquired")
	if err != nil {
		t.Fatal(err)
	}
	if len(acquired) != 1 || acquired[0].JobID != id || acquired[0].Outcome != audit.Success ||
		acquired[0].Detail["waited_for_job"] != backupID || acquired[0].Detail["waited_ms"] == nil {
		t.Errorf("lock_acquired events %+v", acquired)
	}
	// The audit sink stored both in audit_logs.
	e.waitAudit([]string{ev.ID})
}
