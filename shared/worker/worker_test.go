package worker_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/insightops/insightops/shared/bus"
	"github.com/insightops/insightops/shared/jobs"
	"github.com/insightops/insightops/shared/metrics"
	"github.com/insightops/insightops/shared/presence"
	"github.com/insightops/insightops/shared/testkit"
	"github.com/insightops/insightops/shared/worker"
)

// replica runs one worker replica on its own NATS connection, as a
// separate process would; kill closes that connection without acking.
type replica struct {
	stop func()
	kill func()
}

func startReplica(t *testing.T, url string, opts worker.Options) *replica {
	t.Helper()
	log := testkit.Logger(t)
	nc, err := bus.Connect(url, opts.WorkerID, "", log)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close) // runs after the replica's own cleanup stopped it
	b, err := bus.Attach(context.Background(), nc, bus.Settings{Replicas: 1}, false, log)
	if err != nil {
		t.Fatal(err)
	}
	opts.Log = log
	return &replica{stop: testkit.RunWorker(t, b, opts), kill: nc.Close}
}

func submit(t *testing.T, b *bus.Bus, kind string, maxAttempts int) jobs.Record {
	t.Helper()
	p := jobs.NewPublisher(b.JS, jobs.NewStore(b.Jobs), maxAttempts)
	rec, created, err := p.Submit(context.Background(), jobs.Submission{Args: jobs.RawArgs{JobKind: kind}, SubmittedBy: "test@example.com"})
	if err != nil || !created {
		t.Fatalf("submit %s: created=%v err=%v", kind, created, err)
	}
	return rec
}

// TestKilledWorkerJobIsRedeliveredAndFinishedOnce kills the replica running
// a job halfway through; the other replica gets it after AckWait, finishes
// it as attempt 2, and the side effect of the step done before the crash
// is not done again.
func TestKilledWorkerJobIsRedeliveredAndFinishedOnce(t *testing.T) {
	t.Parallel()
	b, ns := testkit.Bus(t)
	store := jobs.NewStore(b.Jobs)

	var mu sync.Mutex
	effects := map[string]int{} // side effects by (job, step), kept idempotent by the handler
	runs := map[string]int{}    // how often each step ran
	inStep2 := make(chan string, 1)
	block := make(chan struct{})
	t.Cleanup(func() { close(block) })

	handler := func(victim bool) worker.Handler {
		return func(ctx context.Context, job *worker.Job) (any, error) {
			if err := job.Step(ctx, 10, "step 1"); err != nil {
				return nil, err
			}
			mu.Lock()
			key := job.ID() + "/step1"
			runs[key]++            // every time step 1 runs, one per delivery
			if effects[key] == 0 { // idempotent side effect: done once per job
				effects[key]++
			}
			mu.Unlock()
			if err := job.Step(ctx, 50, "step 2"); err != nil {
				return nil, err
			}
			if victim {
				inStep2 <- job.ID()
				select { // the process dies here
				case <-block:
				case <-ctx.Done():
				}
				return nil, errors.New("unreachable")
			}
			mu.Lock()
			effects[job.ID()+"/step2"]++
			mu.Unlock()
			return map[string]int{"steps": 2}, nil
		}
	}
	victim := startReplica(t, ns.ClientURL(), worker.Options{Kind: "test", WorkerID: "victim", ShutdownTimeout: 100 * time.Millisecond, Handlers: map[string]worker.Handler{"test.crash": handler(true)}})
	rec := submit(t, b, "test.crash", 3)

	var id string
	select {
	case id = <-inStep2:
	case <-time.After(10 * time.Second):
		t.Fatal("victim never reached step 2")
	}
	if id != rec.ID {
		t.Fatalf("victim ran %s, want %s", id, rec.ID)
	}
	victim.kill() // like SIGKILL: connection gone, no ack, no nak, no heartbeat

	startReplica(t, ns.ClientURL(), worker.Options{Kind: "test", WorkerID: "survivor", Handlers: map[string]worker.Handler{"test.crash": handler(false)}})
	final := testkit.WaitFinal(t, store, rec.ID, 20*time.Second)

	if final.State != jobs.Succeeded || final.Attempt != 2 || final.Worker != "survivor" {
		t.Fatalf("final = state %s attempt %d worker %s, want succeeded/2/survivor", final.State, final.Attempt, final.Worker)
	}
	mu.Lock()
	defer mu.Unlock()
	// Step 1 ran on both deliveries (the redelivery starts the handler
	// over), its idempotent effect once; step 2's effect only on the
	// attempt that finished.
	if runs[rec.ID+"/step1"] != 2 || effects[rec.ID+"/step1"] != 1 || effects[rec.ID+"/step2"] != 1 {
		t.Fatalf("step 1 ran %d times (want 2), side effects %v (want each step once)", runs[rec.ID+"/step1"], effects)
	}
	if string(final.Result) != `{"steps":2}` {
		t.Fatalf("result %s", final.Result)
	}
}

func TestAlwaysFailingJobFailsAfterMaxAttemptsAndIsDeadLettered(t *testing.T) {
	t.Parallel()
	b, ns := testkit.Bus(t)
	var calls atomic.Int32
	startReplica(t, ns.ClientURL(), worker.Options{Kind: "test", WorkerID: "w1", Handlers: map[string]worker.Handler{
		"test.fail": func(ctx context.Context, job *worker.Job) (any, error) {
			calls.Add(1)
			return nil, fmt.Errorf("disk on fire (attempt %d)", job.Attempt())
		},
	}})
	rec := submit(t, b, "test.fail", 3)
	final := testkit.WaitFinal(t, jobs.NewStore(b.Jobs), rec.ID, 20*time.Second)
	if final.State != jobs.Failed || final.Attempt != 3 || calls.Load() != 3 {
		t.Fatalf("state %s attempt %d calls %d, want failed after 3", final.State, final.Attempt, calls.Load())
	}
	if final.Error == nil || final.Error.Message != "disk on fire (attempt 3)" {
		t.Fatalf("error %+v", final.Error)
	}
	msg := dlqMessage(t, b, rec.ID)
	var cmd jobs.Command
	if err := json.Unmarshal(msg.Data, &cmd); err != nil || cmd.ID != rec.ID || cmd.Kind != "test.fail" {
		t.Fatalf("dlq body %s: %v", msg.Data, err)
	}
	if got := msg.Header.Get("Insightops-Error"); got != "disk on fire (attempt 3)" {
		t.Fatalf("dlq error header %q", got)
	}
	assertJobsStreamEmpty(t, b)
}

func TestPermanentErrorTerminatesAtOnceWithoutRetry(t *testing.T) {
	t.Parallel()
	b, ns := testkit.Bus(t)
	var calls atomic.Int32
	startReplica(t, ns.ClientURL(), worker.Options{Kind: "test", WorkerID: "w1", Handlers: map[string]worker.Handler{
		"test.bad": func(ctx context.Context, job *worker.Job) (any, error) {
			calls.Add(1)
			var p struct{ Name string }
			return nil, job.Decode(&p)
		},
	}})
	p := jobs.NewPublisher(b.JS, jobs.NewStore(b.Jobs), 5)
	// The unknown field is a deliberate misspelling of "name" (misspell would fix it).
	bad := json.RawMessage(`{"nmae": "typo"}`) //nolint:misspell // the typo is the test
	rec, _, err := p.Submit(context.Background(), jobs.Submission{Args: jobs.RawArgs{JobKind: "test.bad", Params: bad}})
	if err != nil {
		t.Fatal(err)
	}
	final := testkit.WaitFinal(t, jobs.NewStore(b.Jobs), rec.ID, 10*time.Second)
	if final.State != jobs.Failed || final.Attempt != 1 || calls.Load() != 1 || final.Error.Code != jobs.CodeInvalidParams {
		t.Fatalf("state %s attempt %d calls %d err %+v", final.State, final.Attempt, calls.Load(), final.Error)
	}
	assertJobsStreamEmpty(t, b)
}

func TestCancelledRunningJobStopsAtNextStep(t *testing.T) {
	t.Parallel()
	b, ns := testkit.Bus(t)
	store := jobs.NewStore(b.Jobs)
	reached := make(chan struct{})
	var stepsAfterCancel atomic.Int32
	startReplica(t, ns.ClientURL(), worker.Options{Kind: "test", WorkerID: "w1", Handlers: map[string]worker.Handler{
		"test.long": func(ctx context.Context, job *worker.Job) (any, error) {
			if err := job.Step(ctx, 1, "first"); err != nil {
				return nil, err
			}
			close(reached)
			for i := 2; i < 1000; i++ {
				time.Sleep(20 * time.Millisecond)
				if err := job.Step(ctx, i/10, "looping"); err != nil {
					return nil, err
				}
				stepsAfterCancel.Add(1)
			}
			return nil, nil
		},
	}})
	rec := submit(t, b, "test.long", 3)
	<-reached
	if _, err := store.Cancel(context.Background(), rec.ID); err != nil {
		t.Fatal(err)
	}
	n := stepsAfterCancel.Load()
	final := testkit.WaitFinal(t, store, rec.ID, 10*time.Second)
	if final.State != jobs.Cancelled || final.Error == nil || final.Error.Code != jobs.CodeCancelled {
		t.Fatalf("final %s %+v", final.State, final.Error)
	}
	if after := stepsAfterCancel.Load(); after > n+1 {
		t.Fatalf("handler ran %d more steps after cancel", after-n)
	}
	if _, err := store.Cancel(context.Background(), rec.ID); !errors.Is(err, jobs.ErrTransition) {
		t.Fatalf("cancel of a final job: %v, want ErrTransition", err)
	}
}

func TestQueuedJobCancelledBeforeStartNeverRuns(t *testing.T) {
	t.Parallel()
	b, ns := testkit.Bus(t)
	store := jobs.NewStore(b.Jobs)
	rec := submit(t, b, "test.never", 3)
	if r, err := store.Cancel(context.Background(), rec.ID); err != nil || r.State != jobs.Cancelled {
		t.Fatalf("cancel queued: %v %v", r.State, err)
	}
	var calls atomic.Int32
	startReplica(t, ns.ClientURL(), worker.Options{Kind: "test", WorkerID: "w1", Handlers: map[string]worker.Handler{
		"test.never": func(ctx context.Context, job *worker.Job) (any, error) { calls.Add(1); return nil, nil },
	}})
	assertJobsStreamEmptyWithin(t, b, 10*time.Second)
	if calls.Load() != 0 {
		t.Fatal("a cancelled job ran")
	}
}

// TestShutdownDrainsInFlightJobs stops a replica while a job runs: the job
// finishes inside the drain timeout and is acknowledged.
func TestShutdownDrainsInFlightJobs(t *testing.T) {
	t.Parallel()
	b, ns := testkit.Bus(t)
	started := make(chan struct{})
	r := startReplica(t, ns.ClientURL(), worker.Options{Kind: "test", WorkerID: "w1", ShutdownTimeout: 10 * time.Second, Handlers: map[string]worker.Handler{
		"test.slow": func(ctx context.Context, job *worker.Job) (any, error) {
			close(started)
			time.Sleep(500 * time.Millisecond)
			return "finished", nil
		},
	}})
	rec := submit(t, b, "test.slow", 3)
	<-started
	r.stop()
	final := testkit.WaitFinal(t, jobs.NewStore(b.Jobs), rec.ID, time.Second)
	if final.State != jobs.Succeeded || string(final.Result) != `"finished"` {
		t.Fatalf("final %s result %s", final.State, final.Result)
	}
	assertJobsStreamEmpty(t, b)
}

// TestShutdownPastTimeoutReleasesJobToAnotherReplica: a job that outlives
// the drain timeout is cancelled and handed back at once (Nak), so another
// replica runs it without waiting for AckWait.
func TestShutdownPastTimeoutReleasesJobToAnotherReplica(t *testing.T) {
	t.Parallel()
	b, ns := testkit.Bus(t)
	started := make(chan struct{}, 1)
	h := func(ctx context.Context, job *worker.Job) (any, error) {
		if job.Attempt() == 1 {
			started <- struct{}{}
			<-ctx.Done()
			return nil, ctx.Err()
		}
		return "second", nil
	}
	r := startReplica(t, ns.ClientURL(), worker.Options{Kind: "test", WorkerID: "w1", AckWait: time.Minute, ShutdownTimeout: 200 * time.Millisecond, Handlers: map[string]worker.Handler{"test.stuck": h}})
	rec := submit(t, b, "test.stuck", 3)
	<-started
	r.stop()
	startReplica(t, ns.ClientURL(), worker.Options{Kind: "test", WorkerID: "w2", AckWait: time.Minute, Handlers: map[string]worker.Handler{"test.stuck": h}})
	final := testkit.WaitFinal(t, jobs.NewStore(b.Jobs), rec.ID, 10*time.Second) // far below AckWait
	if final.State != jobs.Succeeded || final.Attempt != 2 || final.Worker != "w2" {
		t.Fatalf("final %s attempt %d worker %s", final.State, final.Attempt, final.Worker)
	}
}

func TestReplicasShareTheWorkAndAnnouncePresence(t *testing.T) {
	t.Parallel()
	b, ns := testkit.Bus(t)
	var mu sync.Mutex
	byWorker := map[string]int{}
	h := func(name string) worker.Handler {
		return func(ctx context.Context, job *worker.Job) (any, error) {
			time.Sleep(5 * time.Millisecond)
			mu.Lock()
			byWorker[name]++
			mu.Unlock()
			return nil, nil
		}
	}
	for _, name := range []string{"a", "b"} {
		startReplica(t, ns.ClientURL(), worker.Options{Kind: "test", WorkerID: name, Concurrency: 4, Handlers: map[string]worker.Handler{"test.share": h(name)}})
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		live, err := presence.List(context.Background(), b.Workers)
		if err != nil {
			t.Fatal(err)
		}
		if len(live["test"]) == 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("live workers %v, want 2 of kind test", live)
		}
		time.Sleep(50 * time.Millisecond)
	}
	var ids []string
	for range 200 {
		ids = append(ids, submit(t, b, "test.share", 3).ID)
	}
	store := jobs.NewStore(b.Jobs)
	for _, id := range ids {
		if r := testkit.WaitFinal(t, store, id, 20*time.Second); r.State != jobs.Succeeded || r.Attempt != 1 {
			t.Fatalf("job %s: %s attempt %d", id, r.State, r.Attempt)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if byWorker["a"]+byWorker["b"] != 200 || byWorker["a"] == 0 || byWorker["b"] == 0 {
		t.Fatalf("work split %v, want 200 jobs shared by both", byWorker)
	}
}

func dlqMessage(t *testing.T, b *bus.Bus, id string) *jetstream.RawStreamMsg {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	s, err := b.JS.Stream(ctx, bus.StreamDLQ)
	if err != nil {
		t.Fatal(err)
	}
	for {
		info, err := s.Info(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if info.State.Msgs > 0 {
			if info.State.Msgs != 1 {
				t.Fatalf("DLQ holds %d messages, want 1", info.State.Msgs)
			}
			m, err := s.GetMsg(ctx, info.State.FirstSeq)
			if err != nil {
				t.Fatal(err)
			}
			if m.Header.Get("Insightops-Job-Id") != id {
				t.Fatalf("DLQ message for %q, want %s", m.Header.Get("Insightops-Job-Id"), id)
			}
			return m
		}
		select {
		case <-ctx.Done():
			t.Fatal("nothing on JOBS_DLQ")
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func assertJobsStreamEmpty(t *testing.T, b *bus.Bus) {
	t.Helper()
	assertJobsStreamEmptyWithin(t, b, 5*time.Second)
}

func assertJobsStreamEmptyWithin(t *testing.T, b *bus.Bus, within time.Duration) {
	t.Helper()
	ctx := context.Background()
	s, err := b.JS.Stream(ctx, bus.StreamJobs)
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(within)
	for {
		info, err := s.Info(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if info.State.Msgs == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("JOBS still holds %d messages: not acknowledged or terminated", info.State.Msgs)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func TestMetricsCountFinishedRetriedAndDeadLetteredJobs(t *testing.T) {
	// Not parallel: reads the process-wide metrics registry, whose queue-depth collector follows the last worker started.
	b, ns := testkit.Bus(t)
	before := testutil.ToFloat64(metrics.JobsDeadLettered.WithLabelValues("test.metrics"))
	retriedBefore := testutil.ToFloat64(metrics.JobRetries.WithLabelValues("test.metrics"))
	failedBefore := testutil.ToFloat64(metrics.JobsFinished.WithLabelValues("test.metrics", "failed"))
	startReplica(t, ns.ClientURL(), worker.Options{Kind: "test", WorkerID: "w1", Handlers: map[string]worker.Handler{
		"test.metrics": func(ctx context.Context, job *worker.Job) (any, error) { return nil, errors.New("no") },
	}})
	rec := submit(t, b, "test.metrics", 2)
	testkit.WaitFinal(t, jobs.NewStore(b.Jobs), rec.ID, 10*time.Second)
	// The runtime counts a final state just after it writes the record:
	// wait for the count (bounded) rather than read it at once.
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if testutil.ToFloat64(metrics.JobsFinished.WithLabelValues("test.metrics", "failed"))-failedBefore >= 1 {
			break
		}
	}
	if d := testutil.ToFloat64(metrics.JobsDeadLettered.WithLabelValues("test.metrics")) - before; d != 1 {
		t.Errorf("dead-lettered +%v, want +1", d)
	}
	if d := testutil.ToFloat64(metrics.JobRetries.WithLabelValues("test.metrics")) - retriedBefore; d != 1 {
		t.Errorf("retries +%v, want +1", d)
	}
	if d := testutil.ToFloat64(metrics.JobsFinished.WithLabelValues("test.metrics", "failed")) - failedBefore; d != 1 {
		t.Errorf("finished{failed} +%v, want +1", d)
	}
	// Queue depth is collected from the consumer at scrape time.
	n, err := testutil.GatherAndCount(metrics.Registry, "insightops_consumer_pending_messages")
	if err != nil || n == 0 {
		t.Errorf("queue depth samples %d (%v)", n, err)
	}
}
