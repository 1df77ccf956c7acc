package backupworker

import (
	"context"
	"testing"
	"time"

	"github.com/insightops/insightops/shared/audit"
	"github.com/insightops/insightops/shared/jobs"
	"github.com/insightops/insightops/shared/jobspec"
	"github.com/insightops/insightops/shared/locks"
	"github.com/insightops/insightops/shared/testkit"
	"github.com/insightops/insightops/shared/worker"
)

// TestLockWaitIsAuditedOnce: a backup job that meets the system lease held
// by a restore waits (several polls, and several attempts since LockWait is
// short), then runs once the lease is released. The AUDIT stream holds
// exactly one backup.lock_wait event for it — denied, on the system store,
// naming the holder, as the submitter — and at most one
// backup.lock_acquired (none when the attempt after the release found the
// lease free without waiting), which names the job it waited for.
func TestLockWaitIsAuditedOnce(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOpts{})
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	restoreID := jobs.NewID()
	lease, err := locks.Acquire(ctx, e.bus.Locks, locks.System, locks.Holder{Owner: restoreID, Operation: jobs.KindRestore}, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	pub := audit.NewPublisher(e.bus.JS, e.deps.Log)
	deps := e.deps
	deps.Audit = pub
	w := New(deps, Options{ChunkSize: 64 << 10, LockWait: 600 * time.Millisecond})
	testkit.RunWorker(t, e.bus, worker.Options{
		Kind: Kind, Handlers: w.Handlers(), WorkerID: "backup-audit", Audit: pub,
		Backoff: func(int) time.Duration { return 100 * time.Millisecond },
	})
	id := e.submit(jobspec.BackupCreateArgs{Components: []string{"system"}})
	eventually(t, 60*time.Second, "a second attempt to meet the held lease", func() bool {
		rec := e.record(id)
		return rec.Attempt >= 2 && rec.Error != nil && rec.Error.Code == "lock_held"
	})
	if err := lease.Release(ctx); err != nil {
		t.Fatal(err)
	}
	if rec := e.waitFinal(id, 60*time.Second); rec.State != jobs.Succeeded {
		t.Fatalf("job %s: %+v", rec.State, rec.Error)
	}

	waits, err := audit.Read(ctx, e.bus.JS, "audit.system.backup.lock_wait")
	if err != nil {
		t.Fatal(err)
	}
	if len(waits) != 1 {
		t.Fatalf("%d backup.lock_wait events, want 1: %+v", len(waits), waits)
	}
	ev := waits[0]
	holder, _ := ev.Detail["holder"].(map[string]any)
	if ev.Action != "backup.lock_wait" || ev.Resource != locks.System || ev.Outcome != audit.Denied || ev.JobID != id ||
		ev.Actor != "test@example.com" || holder["job_id"] != restoreID || holder["operation"] != jobs.KindRestore || holder["since"] == nil {
		t.Errorf("lock_wait event %+v", ev)
	}
	// The attempt that found the lease free took it at once: no wait to
	// report. An attempt that waited and then took it reports the wait.
	acquired, err := audit.Read(ctx, e.bus.JS, "audit.system.backup.lock_acquired")
	if err != nil {
		t.Fatal(err)
	}
	if len(acquired) > 1 {
		t.Errorf("%d lock_acquired events, want at most 1", len(acquired))
	}
	for _, a := range acquired {
		if a.JobID != id || a.Outcome != audit.Success || a.Detail["waited_for_job"] != restoreID {
			t.Errorf("lock_acquired event %+v", a)
		}
	}
	t.Logf("attempts %d, lock_wait events %d, lock_acquired events %d", e.record(id).Attempt, len(waits), len(acquired))
}
