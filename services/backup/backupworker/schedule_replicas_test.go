package backupworker

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/insightops/insightops/shared/audit"
	"github.com/insightops/insightops/shared/backupfmt"
	"github.com/insightops/insightops/shared/config"
	"github.com/insightops/insightops/shared/jobs"
	"github.com/insightops/insightops/shared/jobspec"
	"github.com/insightops/insightops/shared/reliability"
)

// startScheduledReplica runs Run — the backup worker binary's loop, with
// its scheduler when cfg has a BACKUP_SCHEDULE — on a new NATS connection
// to e's server, as one pod would. stop cancels it and waits for it.
func startScheduledReplica(t *testing.T, e *env, id string, cfg config.Config) (stop func()) {
	t.Helper()
	b, log := replicaBus(t, e, id)
	nc := b.Conn
	ctx, cancel := context.WithCancel(context.Background())
	deps := e.deps
	cfg.WorkerID = id
	deps.Config, deps.Bus, deps.Log, deps.Audit = cfg, b, slog.New(startRecorder{Handler: log.Handler(), rec: &e.starts}), audit.NewPublisher(b.JS, log)
	done := make(chan struct{})
	go func() {
		defer close(done)
		// A replica stopped before its consumer was set up returns the
		// cancellation: not a failure.
		if err := Run(ctx, deps); err != nil && !errors.Is(err, context.Canceled) {
			t.Errorf("replica %s: %v", id, err)
		}
	}()
	stopped := false
	stop = func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		select {
		case <-done:
		case <-time.After(2 * time.Minute):
			t.Errorf("replica %s did not stop", id)
		}
		nc.Close()
	}
	t.Cleanup(stop)
	return stop
}

// scheduledJob is a backup.create job the scheduler submitted.
type scheduledJob struct {
	rec  jobs.Record
	tick time.Time
}

// scheduledJobs lists the scheduler's backup.create jobs by tick.
func (e *env) scheduledJobs() map[time.Time][]scheduledJob {
	e.t.Helper()
	recs, err := jobs.NewStore(e.bus.Jobs).List(context.Background(), jobs.Filter{Kind: jobs.KindBackupCreate, Limit: 100000})
	if err != nil {
		e.t.Fatal(err)
	}
	out := map[time.Time][]scheduledJob{}
	for _, r := range recs {
		var p jobspec.BackupCreateArgs
		if err := json.Unmarshal(r.Params, &p); err != nil || p.Schedule == nil {
			e.t.Errorf("job %s (submitted by %q) is not a scheduled backup: %s", r.ID, r.SubmittedBy, r.Params)
			continue
		}
		if r.SubmittedBy != SchedulerActor || !p.VerifyAfter || r.IdempotencyKey != TickKey(e.cfg.BackupSchedule, p.Schedule.Tick) {
			e.t.Errorf("job %s: submitted by %q, verify_after %v, key %q", r.ID, r.SubmittedBy, p.VerifyAfter, r.IdempotencyKey)
		}
		out[p.Schedule.Tick.UTC()] = append(out[p.Schedule.Tick.UTC()], scheduledJob{rec: r, tick: p.Schedule.Tick.UTC()})
	}
	return out
}

// verifyJobs lists the backup.verify jobs by archive name.
func (e *env) verifyJobs() map[string][]jobs.Record {
	e.t.Helper()
	recs, err := jobs.NewStore(e.bus.Jobs).List(context.Background(), jobs.Filter{Kind: jobs.KindBackupVerify, Limit: 100000})
	if err != nil {
		e.t.Fatal(err)
	}
	out := map[string][]jobs.Record{}
	for _, r := range recs {
		var p jobspec.BackupVerifyArgs
		if err := json.Unmarshal(r.Params, &p); err != nil {
			e.t.Errorf("verify job %s params %s: %v", r.ID, r.Params, err)
			continue
		}
		out[p.Name] = append(out[p.Name], r)
	}
	return out
}

// auditByJob reads every event on the AUDIT subject given (audit.Read)
// and counts them per job id, keeping only events whose actor is actor.
func (e *env) auditByJob(actor, subject string) map[string]int {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	evs, err := audit.Read(ctx, e.bus.JS, subject)
	if err != nil {
		e.t.Fatal(err)
	}
	out := map[string]int{}
	for _, ev := range evs {
		if ev.Actor == actor {
			out[ev.JobID]++
		}
	}
	return out
}

// TestScheduleRunsOncePerTickAcrossThreeReplicas: three backup worker
// replicas (Run, each on its own NATS connection, each running the
// scheduler) on BACKUP_SCHEDULE="@every 2s" with BACKUP_VERIFY_AFTER=true
// for several ticks. Every tick from the one before the first replica
// started (the single catch-up) to the last one waited for has exactly one
// backup.create job submitted by "scheduler", exactly one archive, and
// exactly one backup.verify job of that archive, which succeeds; each job
// has exactly one backup.requested / backup.verify.requested audit event.
// The replicas are then stopped and one replica without a schedule
// finishes what they left queued (as a rolling restart would). On SQLite
// and on PostgreSQL as the System DB.
func TestScheduleRunsOncePerTickAcrossThreeReplicas(t *testing.T) {
	t.Parallel()
	ticks := 4 // after the catch-up tick
	if reliability.Full() {
		ticks = 15
	}
	for _, db := range []string{"sqlite", "postgres"} {
		t.Run(db, func(t *testing.T) {
			t.Parallel()
			name := reliability.FaultScheduleThreeReplicas
			if db == "postgres" {
				name = reliability.FaultScheduleThreeReplicasPG
			}
			scheduleAcrossReplicas(t, db == "postgres", ticks, name)
		})
	}
}

func scheduleAcrossReplicas(t *testing.T, postgres bool, ticks int, name string) {
	began := time.Now()
	e := newEnv(t, envOpts{Postgres: postgres, Vars: map[string]string{
		"BACKUP_SCHEDULE": "@every 2s", "BACKUP_VERIFY_AFTER": "true",
		"BACKUP_RETENTION_COUNT": "10000", "JOB_MAX_ATTEMPTS": "20",
		"WORKER_CONCURRENCY": "2", "SHUTDOWN_TIMEOUT": "5s",
	}})
	sched := e.cfg.BackupSchedule

	// The first replica's start decides the catch-up tick: the schedule's
	// previous tick, which nobody has submitted on this fresh bus. Start
	// early in a period so that it is the one before now.
	if next := sched.Next(time.Now()); time.Until(next) < 1500*time.Millisecond {
		time.Sleep(time.Until(next) + 50*time.Millisecond)
	}
	first := sched.Prev(time.Now())
	var stops []func()
	for i := range 3 {
		stops = append(stops, startScheduledReplica(t, e, fmt.Sprintf("backup-s%d", i+1), e.cfg))
	}
	expected := []time.Time{first}
	for len(expected) < ticks+1 {
		expected = append(expected, sched.Next(expected[len(expected)-1]))
	}

	// Wait (generously: 2 shared cores) until every expected tick has a
	// job; a tick that never gets one is counted lost, not waited for.
	last := expected[len(expected)-1]
	deadline := last.Add(2 * time.Minute)
	for {
		byTick := e.scheduledJobs()
		missing := 0
		for _, tk := range expected {
			if len(byTick[tk]) == 0 {
				missing++
			}
		}
		if missing == 0 || time.Now().After(deadline) {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	var wg sync.WaitGroup // stop them together, or the last ones go on ticking
	for _, stop := range stops {
		wg.Go(stop)
	}
	wg.Wait()
	stopped := time.Now()

	// One replica without a schedule finishes the queued backups and the
	// verify jobs they submit.
	noSchedule := e.cfg
	noSchedule.BackupSchedule = config.Schedule{}
	finisher := startScheduledReplica(t, e, "backup-finisher", noSchedule)
	eventually(t, 5*time.Minute, "every scheduled backup and its verify job to end", func() bool {
		verifies := e.verifyJobs()
		for _, js := range e.scheduledJobs() {
			for _, j := range js {
				rec := e.record(j.rec.ID)
				if !rec.State.Final() {
					return false
				}
				if rec.State != jobs.Succeeded {
					continue
				}
				var res jobspec.BackupCreateResult
				if err := json.Unmarshal(rec.Result, &res); err != nil {
					t.Fatalf("job %s result: %v", rec.ID, err)
				}
				vs := verifies[res.Archive]
				if len(vs) == 0 {
					return false
				}
				for _, v := range vs {
					if !v.State.Final() {
						return false
					}
				}
			}
		}
		return true
	})
	finisher()

	// Count per tick: jobs, archives, verify jobs, audit events.
	byTick := e.scheduledJobs()
	verifies := e.verifyJobs()
	archivesByJob := map[string][]string{}
	for _, info := range e.listed() {
		n, err := backupfmt.ParseArchiveName(info.Name)
		if err != nil {
			t.Errorf("listed %s: %v", info.Name, err)
			continue
		}
		archivesByJob[n.JobID] = append(archivesByJob[n.JobID], info.Name)
	}
	requested := e.auditByJob(SchedulerActor, "audit.backup.requested")
	verifyRequested := e.auditByJob(SchedulerActor, "audit.backup.verify.requested")

	f := reliability.Fault{
		Name:  name,
		Fault: "three replicas race to submit every tick of BACKUP_SCHEDULE=@every 2s (plus the one catch-up tick at start), then all stop and a replica without a schedule finishes the queue",
		Setup: "embedded NATS, 3 backup worker replicas (Run, own connection, scheduler, concurrency 2) + 1 finisher, BACKUP_VERIFY_AFTER=true, System DB " + map[bool]string{false: "SQLite", true: "PostgreSQL"}[postgres],
	}
	if len(byTick[first]) == 0 {
		// Excused only when every replica's scheduler started after the
		// next tick (a loaded machine), as their "started" log lines show
		// (the next tick they name is past expected[1]): then that tick was
		// their catch-up. A scheduler that started before it and did not
		// submit the catch-up tick leaves it counted lost below.
		if earliest := e.starts.earliest(); !earliest.IsZero() && earliest.After(expected[1]) {
			t.Logf("catch-up tick %s has no job: every scheduler started after %s (earliest next tick %s)", first.Format(time.TimeOnly), expected[1].Format(time.TimeOnly), earliest.Format(time.TimeOnly))
			expected = expected[1:]
		} else {
			t.Logf("catch-up tick %s has no job, though a scheduler started before %s (earliest next tick %s)", first.Format(time.TimeOnly), expected[1].Format(time.TimeOnly), earliest.Format(time.TimeOnly))
		}
	}
	allTicks := slices.Clone(expected)
	for tk := range byTick {
		if !slices.ContainsFunc(allTicks, tk.Equal) {
			allTicks = append(allTicks, tk)
		}
		if tk.Before(first) {
			t.Errorf("a job for tick %s, before the catch-up tick %s: more than one tick was backfilled", tk, first)
		}
	}
	slices.SortFunc(allTicks, func(a, b time.Time) int { return a.Compare(b) })
	f.Submitted = len(allTicks)
	var verifyJobs, archives int
	for _, tk := range allTicks {
		js := byTick[tk]
		switch {
		case len(js) == 0 && slices.ContainsFunc(expected, tk.Equal):
			f.Lost++
			t.Errorf("tick %s: no backup job", tk.Format(time.RFC3339))
			continue
		case len(js) > 1:
			f.Duplicated += len(js) - 1
			t.Errorf("tick %s: %d backup jobs", tk.Format(time.RFC3339), len(js))
		}
		for _, j := range js {
			rec := e.record(j.rec.ID)
			f.AuditExpected++
			f.AuditFound += min(requested[rec.ID], 1)
			f.AuditDuplicated += max(requested[rec.ID]-1, 0)
			if requested[rec.ID] != 1 {
				t.Errorf("job %s: %d backup.requested events by %q, want 1", rec.ID, requested[rec.ID], SchedulerActor)
			}
			switch rec.State {
			case jobs.Succeeded:
				f.Succeeded++
			case jobs.Failed:
				f.Failed++
			case jobs.Cancelled:
				f.Cancelled++
			}
			if rec.State != jobs.Succeeded {
				t.Errorf("tick %s: job %s ended %s: %+v", tk.Format(time.RFC3339), rec.ID, rec.State, rec.Error)
				continue
			}
			var res jobspec.BackupCreateResult
			_ = json.Unmarshal(rec.Result, &res)
			archives += len(archivesByJob[rec.ID])
			if got := archivesByJob[rec.ID]; len(got) != 1 || got[0] != res.Archive {
				t.Errorf("tick %s: job %s archived %s, listed %v", tk.Format(time.RFC3339), rec.ID, res.Archive, got)
			}
			vs := verifies[res.Archive]
			verifyJobs += len(vs)
			if len(vs) != 1 {
				t.Errorf("archive %s: %d verify jobs, want 1", res.Archive, len(vs))
				f.Duplicated += max(len(vs)-1, 0)
				continue
			}
			v := vs[0]
			if v.State != jobs.Succeeded || v.SubmittedBy != SchedulerActor || v.IdempotencyKey != VerifyAfterKey(rec.ID) {
				t.Errorf("verify of %s: %s by %q key %q: %+v", res.Archive, v.State, v.SubmittedBy, v.IdempotencyKey, v.Error)
			}
			f.AuditExpected++
			f.AuditFound += min(verifyRequested[v.ID], 1)
			f.AuditDuplicated += max(verifyRequested[v.ID]-1, 0)
			if verifyRequested[v.ID] != 1 {
				t.Errorf("verify job %s: %d backup.verify.requested events, want 1", v.ID, verifyRequested[v.ID])
			}
		}
	}
	var total int
	for _, js := range archivesByJob {
		total += len(js)
	}
	if total != archives {
		t.Errorf("%d archives listed, %d belong to scheduled backups", total, archives)
	}
	f.Duration = time.Since(began)
	f.Notes = []string{
		fmt.Sprintf("ticks %s … %s (%d expected incl. the catch-up tick %s; %d ticks had jobs)",
			expected[0].Format(time.TimeOnly), last.Format(time.TimeOnly), len(expected), first.Format(time.TimeOnly), len(byTick)),
		"archives " + strconv.Itoa(total) + ", verify jobs " + strconv.Itoa(verifyJobs),
		"schedulers ran " + stopped.Sub(began).Round(time.Second).String() + " (incl. setup); the first to start named next tick " + e.starts.earliest().Format(time.TimeOnly),
	}
	reliability.Write(t, reliability.Result{Fault: &f})
	if f.Lost != 0 || f.Duplicated != 0 || f.AuditDuplicated != 0 || f.AuditFound != f.AuditExpected {
		t.Errorf("lost %d, duplicated %d, audit %d/%d (%d duplicated)", f.Lost, f.Duplicated, f.AuditFound, f.AuditExpected, f.AuditDuplicated)
	}
	if f.Succeeded == 0 {
		t.Error("no scheduled backup succeeded")
	}
}

// TestVerifyAfterSurvivesACrashBeforeItsSubmission: a backup.create job
// with verify_after whose first attempt wrote its archive and died before
// submitting the verify (and before its final state) is run again by
// another replica: the archive is reused, not made twice, and exactly one
// verify job of it — keyed by the create job's id — is submitted and
// succeeds.
func TestVerifyAfterSurvivesACrashBeforeItsSubmission(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOpts{})
	p := jobspec.BackupCreateArgs{VerifyAfter: true, Note: "crash test"}
	id := e.submit(p)
	// The first attempt, as far as it got: the archive of this job id.
	first, err := e.createID(id, p)
	if err != nil {
		t.Fatal(err)
	}
	if got := e.verifyJobs(); len(got) != 0 {
		t.Fatalf("verify jobs before the retry: %v", got)
	}
	startReplica(t, e, "backup-after-crash", Options{}, nil)
	rec := e.waitFinal(id, time.Minute)
	if rec.State != jobs.Succeeded {
		t.Fatalf("create %s: %+v", rec.State, rec.Error)
	}
	var res jobspec.BackupCreateResult
	if err := json.Unmarshal(rec.Result, &res); err != nil {
		t.Fatal(err)
	}
	if !res.Reused || res.Archive != first.Archive {
		t.Errorf("the retry made %s (reused %v), want the first attempt's %s reused", res.Archive, res.Reused, first.Archive)
	}
	if got := e.listed(); len(got) != 1 {
		t.Errorf("%d archives listed, want 1", len(got))
	}
	var vs []jobs.Record
	eventually(t, time.Minute, "the verify job to end", func() bool {
		vs = e.verifyJobs()[first.Archive]
		return len(vs) == 1 && vs[0].State.Final()
	})
	if all := e.verifyJobs(); len(all) != 1 || len(vs) != 1 {
		t.Fatalf("verify jobs %v, want exactly one of %s", all, first.Archive)
	}
	if v := vs[0]; v.State != jobs.Succeeded || v.IdempotencyKey != VerifyAfterKey(id) || v.SubmittedBy != rec.SubmittedBy {
		t.Errorf("verify job %s by %q key %q: %+v", v.State, v.SubmittedBy, v.IdempotencyKey, v.Error)
	}
}

// schedulerStarts collects the next tick each scheduler names in its
// "backup scheduler started" log line.
type schedulerStarts struct {
	mu   sync.Mutex
	next []time.Time
}

// earliest is the smallest next tick logged (zero if none was).
func (s *schedulerStarts) earliest() time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	var early time.Time
	for _, n := range s.next {
		if early.IsZero() || n.Before(early) {
			early = n
		}
	}
	return early
}

// startRecorder passes records on to Handler and notes the next_tick of
// the scheduler's start line (whether or not Handler logs Info).
type startRecorder struct {
	slog.Handler
	rec *schedulerStarts
}

func (h startRecorder) Enabled(ctx context.Context, l slog.Level) bool {
	return l >= slog.LevelInfo || h.Handler.Enabled(ctx, l)
}

func (h startRecorder) Handle(ctx context.Context, r slog.Record) error {
	if r.Message == "backup scheduler started" {
		r.Attrs(func(a slog.Attr) bool {
			if tm, ok := a.Value.Any().(time.Time); ok && a.Key == "next_tick" {
				h.rec.mu.Lock()
				h.rec.next = append(h.rec.next, tm)
				h.rec.mu.Unlock()
			}
			return true
		})
	}
	if !h.Handler.Enabled(ctx, r.Level) {
		return nil
	}
	return h.Handler.Handle(ctx, r)
}

func (h startRecorder) WithAttrs(as []slog.Attr) slog.Handler {
	return startRecorder{Handler: h.Handler.WithAttrs(as), rec: h.rec}
}

func (h startRecorder) WithGroup(name string) slog.Handler {
	return startRecorder{Handler: h.Handler.WithGroup(name), rec: h.rec}
}
