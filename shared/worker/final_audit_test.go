package worker_test

import (
	"context"
	"encoding/json"
	"sync/atomic"
	"testing"
	"time"

	"github.com/insightops/insightops/shared/audit"
	"github.com/insightops/insightops/shared/jobs"
	"github.com/insightops/insightops/shared/testkit"
	"github.com/insightops/insightops/shared/worker"
)

// TestFinalAuditEventOfACrashedWorkerIsPublishedOnceByTheRedelivery plays a
// worker killed after writing a job's final state but before its final
// audit event and ack: the redelivery must not run the job again, and must
// leave exactly one "<kind>.succeeded" event — also when two redeliveries
// (or a late original) publish it.
func TestFinalAuditEventOfACrashedWorkerIsPublishedOnceByTheRedelivery(t *testing.T) {
	t.Parallel()
	b, ns := testkit.Bus(t)
	ctx := context.Background()
	store := jobs.NewStore(b.Jobs)

	const kind = "test.finalaudit"
	rec := submit(t, b, kind, 3)
	// The crashed worker's last write: final, by worker "ghost", attempt 1.
	if _, err := store.Update(ctx, rec.ID, func(r *jobs.Record) error {
		now := time.Now().UTC()
		r.State, r.Attempt, r.Worker, r.StartedAt = jobs.Running, 1, "test-ghost", &now
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if _, err := store.Update(ctx, rec.ID, func(r *jobs.Record) error {
		now := time.Now().UTC()
		r.State, r.Progress, r.FinishedAt = jobs.Succeeded, 100, &now
		return nil
	}); err != nil {
		t.Fatal(err)
	}

	var ran atomic.Int32
	handler := func(ctx context.Context, job *worker.Job) (any, error) { ran.Add(1); return nil, nil }
	pub := audit.NewPublisher(b.JS, testkit.Logger(t))
	r := startReplica(t, ns.ClientURL(), worker.Options{
		Kind: "test", WorkerID: "test-1", Handlers: map[string]worker.Handler{kind: handler},
		AckWait: 2 * time.Second, Audit: pub,
	})
	assertJobsStreamEmptyWithin(t, b, 30*time.Second)
	r.stop()

	// A second redelivery of the same fact (another worker's late try).
	r2 := startReplica(t, ns.ClientURL(), worker.Options{
		Kind: "test", WorkerID: "test-2", Handlers: map[string]worker.Handler{kind: handler},
		AckWait: 2 * time.Second, Audit: pub,
	})
	if _, err := b.JS.Publish(ctx, jobs.Subject(kind), mustCommand(t, rec)); err != nil {
		t.Fatal(err)
	}
	assertJobsStreamEmptyWithin(t, b, 30*time.Second)
	r2.stop()

	if n := ran.Load(); n != 0 {
		t.Errorf("handler ran %d times for a job already final", n)
	}
	events, err := audit.Read(ctx, b.JS, "audit.>")
	if err != nil {
		t.Fatal(err)
	}
	var finals []audit.Event
	for _, e := range events {
		if e.JobID == rec.ID && e.Action == jobs.AuditAction(kind, string(jobs.Succeeded)) {
			finals = append(finals, e)
		}
	}
	if len(finals) != 1 {
		t.Fatalf("succeeded events for %s = %d, want exactly 1: %+v", rec.ID, len(finals), finals)
	}
	if got := finals[0].Detail["worker"]; got != "test-ghost" {
		t.Errorf("event names worker %v, want the one that finished the job (test-ghost)", got)
	}
}

// mustCommand is the command body of rec as the publisher sends it.
func mustCommand(t *testing.T, rec jobs.Record) []byte {
	t.Helper()
	data, err := json.Marshal(jobs.Command{ID: rec.ID, Kind: rec.Kind})
	if err != nil {
		t.Fatal(err)
	}
	return data
}
