package worker_test

import (
	"context"
	"testing"
	"time"

	"github.com/insightops/insightops/shared/audit"
	"github.com/insightops/insightops/shared/jobs"
	"github.com/insightops/insightops/shared/testkit"
	"github.com/insightops/insightops/shared/worker"
)

// TestJobAuditPublishesAsTheJob: a handler's job.Audit event (published
// twice with one derived id, as a retried attempt would) is stored once in
// the AUDIT stream with the job's id, its submitter as actor and the worker
// kind as resource.
func TestJobAuditPublishesAsTheJob(t *testing.T) {
	t.Parallel()
	b, _ := testkit.Bus(t)
	pub := audit.NewPublisher(b.JS, testkit.Logger(t))
	handler := func(ctx context.Context, job *worker.Job) (any, error) {
		for range 2 {
			job.Audit(ctx, audit.Event{ID: audit.DerivedID(job.ID(), "probe"), Action: "backup.probe", Outcome: audit.Success,
				Detail: map[string]any{"n": 1}})
		}
		return nil, nil
	}
	testkit.RunWorker(t, b, worker.Options{Kind: "backup", Handlers: map[string]worker.Handler{jobs.KindBackupCreate: handler}, WorkerID: "backup-audit", Audit: pub})
	rec := submit(t, b, jobs.KindBackupCreate, 3)
	if got := testkit.WaitFinal(t, jobs.NewStore(b.Jobs), rec.ID, 60*time.Second); got.State != jobs.Succeeded {
		t.Fatalf("job %s: %+v", got.State, got.Error)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	events, err := audit.Read(ctx, b.JS, "audit.backup.probe")
	if err != nil {
		t.Fatal(err)
	}
	if len(events) != 1 {
		t.Fatalf("%d probe events, want 1: %+v", len(events), events)
	}
	if e := events[0]; e.JobID != rec.ID || e.Actor != "test@example.com" || e.Resource != "backup" || e.ID != audit.DerivedID(rec.ID, "probe") {
		t.Errorf("event %+v", e)
	}
}
