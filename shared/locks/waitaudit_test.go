package locks_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/insightops/insightops/shared/audit"
	"github.com/insightops/insightops/shared/jobs"
	"github.com/insightops/insightops/shared/locks"
	"github.com/insightops/insightops/shared/testkit"
)

// TestWaitAuditorAuditsOneEventPerWaitEpisode: a wait loop that meets the
// same holder many times, and a second attempt of the same job (a new
// auditor, as after a retry) that meets it again, leave exactly one
// lock_wait event in the AUDIT stream; taking the lease after the wait adds
// one lock_acquired event with the wait's duration.
func TestWaitAuditorAuditsOneEventPerWaitEpisode(t *testing.T) {
	t.Parallel()
	b, _ := testkit.Bus(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	pub := audit.NewPublisher(b.JS, testkit.Logger(t))
	restoreID, backupID := jobs.NewID(), jobs.NewID()
	lease, err := locks.Acquire(ctx, b.Locks, locks.System, locks.Holder{Owner: restoreID, Operation: jobs.KindRestore}, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	h := locks.Holder{Owner: backupID, Operation: jobs.KindBackupCreate}
	tryAttempt := func(polls int) *locks.WaitAuditor {
		w := &locks.WaitAuditor{Kind: jobs.KindBackupCreate, JobID: backupID, Actor: "ops@example.com", Publish: pub.Record}
		for range polls {
			_, err := locks.AcquireAll(ctx, b.Locks, []string{locks.System, locks.Target}, h, time.Second)
			var he *locks.HeldError
			if !errors.As(err, &he) {
				t.Fatalf("acquire while held: %v", err)
			}
			w.Held(ctx, he)
		}
		return w
	}
	tryAttempt(3)      // attempt 1 gives up
	w := tryAttempt(2) // attempt 2 meets the same holder
	if err := lease.Release(ctx); err != nil {
		t.Fatal(err)
	}
	set, err := locks.AcquireAll(ctx, b.Locks, []string{locks.System, locks.Target}, h, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = set.Release(ctx) }()
	w.Acquired(ctx, []string{locks.System, locks.Target})
	w.Acquired(ctx, []string{locks.System, locks.Target}) // no wait since: nothing more

	waits, err := audit.Read(ctx, b.JS, "audit.system.backup.lock_wait")
	if err != nil {
		t.Fatal(err)
	}
	if len(waits) != 1 {
		t.Fatalf("%d lock_wait events, want 1: %+v", len(waits), waits)
	}
	e := waits[0]
	holder, _ := e.Detail["holder"].(map[string]any)
	if e.Action != "backup.lock_wait" || e.Resource != locks.System || e.Outcome != audit.Denied || e.JobID != backupID ||
		e.Actor != "ops@example.com" || e.Detail["lock"] != locks.System || holder["job_id"] != restoreID ||
		holder["operation"] != jobs.KindRestore || holder["since"] == nil {
		t.Errorf("lock_wait event %+v", e)
	}
	acquired, err := audit.Read(ctx, b.JS, "audit.system.backup.lock_acquired")
	if err != nil {
		t.Fatal(err)
	}
	if len(acquired) != 1 || acquired[0].Outcome != audit.Success || acquired[0].JobID != backupID ||
		acquired[0].Detail["waited_for_job"] != restoreID || acquired[0].Detail["waited_ms"] == nil {
		t.Errorf("lock_acquired events %+v", acquired)
	}
}

// TestWaitAuditorWithoutPublisherDoesNothing: the zero value is safe, so
// callers without an audit publisher need no check.
func TestWaitAuditorWithoutPublisherDoesNothing(t *testing.T) {
	t.Parallel()
	var w locks.WaitAuditor
	w.Held(context.Background(), &locks.HeldError{Name: locks.Chroma, Holder: locks.Holder{Owner: "x"}})
	if !w.Waited() {
		t.Error("Held did not start a wait episode")
	}
	w.Acquired(context.Background(), []string{locks.Chroma})
	if w.Waited() {
		t.Error("Acquired did not end the wait episode")
	}
}
