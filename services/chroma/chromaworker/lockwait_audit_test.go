package chromaworker_test

import (
	"context"
	"testing"
	"time"

	"github.com/insightops/insightops/services/chroma/chromaworker"
	"github.com/insightops/insightops/shared/audit"
	"github.com/insightops/insightops/shared/jobs"
	"github.com/insightops/insightops/shared/jobspec"
	"github.com/insightops/insightops/shared/locks"
	"github.com/insightops/insightops/shared/testkit"
)

// TestLockWaitIsAuditedOnceAcrossRetries: a train job that meets the
// chroma lease held by a restore is retried with backoff until the lease
// is free; however many attempts meet the same holder, the AUDIT stream
// holds exactly one chroma.train.lock_wait event for it (its id is derived
// from the job and the holder), with the holder in its detail.
func TestLockWaitIsAuditedOnceAcrossRetries(t *testing.T) {
	t.Parallel()
	chroma := testkit.Chroma(t)
	cfg := newConfig(t, map[string]string{"CHROMA_URL": chroma.URL, "TARGET_DB_PATH": targetCopy(t)})
	deps := busDeps(t, cfg, systemDB(t, cfg))
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	restoreID := jobs.NewID()
	lease, err := locks.Acquire(ctx, deps.Bus.Locks, locks.Chroma, locks.Holder{Owner: restoreID, Operation: jobs.KindRestore}, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	startWorker(t, deps, chromaworker.New(deps, chromaworker.Options{}))
	id := submit(t, deps.Bus, jobspec.ChromaTrainArgs{}, 20).ID
	st := jobs.NewStore(deps.Bus.Jobs)
	deadline := time.Now().Add(60 * time.Second)
	for {
		r, _, err := st.Get(ctx, id)
		if err == nil && r.Attempt >= 3 && r.Error != nil && r.Error.Code == "lock_held" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no third attempt meeting the lease: %+v %v", r, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err := lease.Release(ctx); err != nil {
		t.Fatal(err)
	}
	rec := waitFinal(t, deps.Bus, id)
	if rec.State != jobs.Succeeded {
		t.Fatalf("job %s: %+v", rec.State, rec.Error)
	}
	waits, err := audit.Read(ctx, deps.Bus.JS, "audit.chroma.train.lock_wait")
	if err != nil {
		t.Fatal(err)
	}
	if len(waits) != 1 {
		t.Fatalf("%d chroma.train.lock_wait events after %d attempts, want 1: %+v", len(waits), rec.Attempt, waits)
	}
	ev := waits[0]
	holder, _ := ev.Detail["holder"].(map[string]any)
	if ev.Action != "chroma.train.lock_wait" || ev.Resource != locks.Chroma || ev.Outcome != audit.Denied || ev.JobID != id ||
		ev.Actor != "ops@example.com" || holder["job_id"] != restoreID || holder["operation"] != jobs.KindRestore {
		t.Errorf("lock_wait event %+v", ev)
	}
	t.Logf("attempts %d, lock_wait events %d", rec.Attempt, len(waits))
}
