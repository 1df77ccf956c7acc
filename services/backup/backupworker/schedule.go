package backupworker

// # Scheduled backups (BACKUP_SCHEDULE, BACKUP_VERIFY_AFTER)
//
// Every backup replica runs a Scheduler; there is no leader. Each one
// computes the schedule's ticks (absolute instants, config.Schedule) and
// at tick T submits a backup.create through jobs.Publisher as the
// submitter "scheduler" with the idempotency key TickKey(schedule, T).
// The publisher claims that key with a KV Create in JOB_PROGRESS, so
// whichever replica comes first creates the job and the others get the
// same job back (created=false); a submitter that crashed between the
// claim and the publish is completed by the next replica's submission
// (the command keeps Nats-Msg-Id = job id). One job per tick, however many
// replicas run and however their clocks differ by less than a period.
//
// The job's params say it was scheduled (ScheduleTrigger: the schedule and
// the tick; the note says so too, and lands in the manifest) and whether
// it is to be verified after (BACKUP_VERIFY_AFTER). The audit event
// backup.requested has actor "scheduler" and is published by
// jobsubmit.OncePerJob: its id is derived from the job id, so the
// replicas that submit the same tick publish it once (Nats-Msg-Id on
// AUDIT, event_id in audit_logs).
//
// Verify-after is submitted by the backup.create handler itself, after the
// archive is complete and retention applied and before the handler
// returns success, with the idempotency key VerifyAfterKey(create job id),
// through the worker's one jobs.Publisher, and audited the same way
// (jobsubmit.OncePerJob, actor the create job's submitter).
// A crash between the two leaves the create job unacknowledged: its
// redelivery reuses the archive (see package archiver) and submits the verify
// again, which the key turns into the same job. So each successful
// scheduled backup gets exactly one backup.verify job.
//
// Missed ticks: a replica that starts (or finishes a submission that took
// longer than a period) submits only the latest tick not after now that
// it has not handled, at most once — never a backlog. At start that is
// the schedule's previous tick, submitted unless some replica already did
// (its key is claimed), provided it is younger than JOB_RETENTION (older
// keys may have expired with their records, so it cannot tell). Ticks
// before it are not backfilled.

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/insightops/insightops/shared/app"
	"github.com/insightops/insightops/shared/audit"
	"github.com/insightops/insightops/shared/config"
	"github.com/insightops/insightops/shared/jobs"
	"github.com/insightops/insightops/shared/jobspec"
	"github.com/insightops/insightops/shared/jobsubmit"
	"github.com/insightops/insightops/shared/worker"
)

// SchedulerActor is the submitter of scheduled jobs and the actor of
// their audit events.
const SchedulerActor = "scheduler"

// Scheduler knobs.
const (
	// submitTimeout bounds one submission attempt.
	submitTimeout = 15 * time.Second
	// maxSleep bounds one wait for the next tick, so a wall clock that
	// jumps (NTP, a suspended VM) is noticed within it.
	maxSleep = time.Minute
)

// TickKey is the idempotency key of the backup of schedule s at tick: the
// same for every replica (the tick in UTC to the second, the schedule by
// its hash), different for every tick and every schedule.
func TickKey(s config.Schedule, tick time.Time) string {
	h := sha256.Sum256([]byte(s.String()))
	return "schedule-" + hex.EncodeToString(h[:8]) + "-" + tick.UTC().Format("20060102T150405Z")
}

// VerifyAfterKey is the idempotency key of the backup.verify job that
// follows the backup.create job createID.
func VerifyAfterKey(createID string) string { return "verify-after-" + createID }

// Scheduler submits one job per tick of its schedule: a backup.create per
// tick of BACKUP_SCHEDULE (NewScheduler), or a restore drill per tick of
// BACKUP_DRILL_SCHEDULE (NewDrillScheduler, drill.go).
type Scheduler struct {
	job         tickJob
	sched       config.Schedule
	verifyAfter bool
	catchUp     time.Duration
	pub         *jobs.Publisher
	audit       *audit.Publisher
	log         *slog.Logger
	now         func() time.Time
	retry       func(attempt int) time.Duration
}

// tickJob is what a Scheduler submits at a tick: the same params, key
// and audit detail on every replica.
type tickJob struct {
	what   string // for logs: "backup", "restore drill"
	args   func(tick time.Time) jobs.Args
	key    func(tick time.Time) string
	detail func(tick time.Time) map[string]any
}

// NewScheduler returns the scheduler of deps.Config.BackupSchedule, or nil
// when there is none (or no bus to submit on).
func NewScheduler(deps app.Deps) *Scheduler {
	cfg := deps.Config
	s := newScheduler(deps, cfg.BackupSchedule, "backup-scheduler")
	if s == nil {
		return nil
	}
	s.verifyAfter = cfg.BackupVerifyAfter
	s.job = tickJob{
		what: "backup",
		args: func(tick time.Time) jobs.Args { return s.params(tick) },
		key:  func(tick time.Time) string { return TickKey(s.sched, tick) },
		detail: func(tick time.Time) map[string]any {
			return map[string]any{"schedule": s.sched.String(), "tick": tick.UTC().Format(time.RFC3339), "verify_after": s.verifyAfter}
		},
	}
	return s
}

// newScheduler is a Scheduler of sched without its job, nil when sched is
// zero or there is no bus.
func newScheduler(deps app.Deps, sched config.Schedule, component string) *Scheduler {
	cfg := deps.Config
	if sched.IsZero() || deps.Bus == nil {
		return nil
	}
	log := deps.Log
	if log == nil {
		log = slog.Default()
	}
	return &Scheduler{
		sched:   sched,
		catchUp: cfg.JobRetention,
		pub:     jobs.NewPublisher(deps.Bus.JS, jobs.NewStore(deps.Bus.Jobs), cfg.JobMaxAttempts),
		audit:   deps.Audit,
		log:     log.With("component", component, "schedule", sched.String()),
		now:     func() time.Time { return time.Now().UTC() },
		retry:   worker.ExponentialBackoff,
	}
}

// Run submits the backup of every tick until ctx ends; it returns nil
// then. A failed submission is retried with backoff until it succeeds or
// a later tick is due (which then supersedes it: at most one is caught up).
func (s *Scheduler) Run(ctx context.Context) error {
	s.log.Info(s.job.what+" scheduler started", "verify_after", s.verifyAfter, "next_tick", s.sched.Next(s.now()))
	var last time.Time // the latest tick handled
	for {
		now := s.now()
		due, handled, ok := s.due(now, last)
		last = handled
		if ok {
			s.fire(ctx, due)
			if ctx.Err() != nil {
				break
			}
			continue
		}
		next := s.sched.Next(now)
		if next.IsZero() {
			s.log.Warn("the schedule has no further tick; scheduler stopping")
			<-ctx.Done()
			break
		}
		if !sleep(ctx, min(next.Sub(now), maxSleep)) {
			break
		}
	}
	s.log.Info(s.job.what + " scheduler stopped")
	return nil //nolint:nilerr // a cancelled context is how the scheduler is stopped, not a failure
}

// due says which tick to submit at now, given the latest tick handled
// (zero at start): the latest tick not after now, if it is later than
// last — one tick however many were missed. At start (last zero) a tick
// older than the catch-up window is not submitted but counted as handled.
// It returns the tick, what to remember as the latest handled, and
// whether to submit.
func (s *Scheduler) due(now, last time.Time) (tick, handled time.Time, ok bool) {
	p := s.sched.Prev(now)
	switch {
	case p.IsZero() || !p.After(last):
		return time.Time{}, last, false
	case last.IsZero() && now.Sub(p) > s.catchUp:
		return time.Time{}, p, false // too old to tell whether it ran
	}
	return p, p, true
}

// fire submits the backup of tick, retrying until it is submitted, a
// later tick is due, or ctx ends.
func (s *Scheduler) fire(ctx context.Context, tick time.Time) {
	log := s.log.With("tick", tick.Format(time.RFC3339))
	for attempt := 1; ; attempt++ {
		rec, created, err := s.submit(ctx, tick)
		switch {
		case err == nil:
			log.Info("scheduled "+s.job.what+" submitted", "job_id", rec.ID, "created", created, "state", rec.State)
			return
		case errors.Is(err, jobs.ErrIdempotencyConflict):
			// A replica with other settings (BACKUP_VERIFY_AFTER during a
			// rolling update) submitted this tick first: it has its job.
			log.Warn("tick already submitted with other params", "job_id", rec.ID, "err", err)
			return
		case ctx.Err() != nil:
			return
		}
		delay := s.retry(attempt)
		if s.sched.Prev(s.now().Add(delay)).After(tick) {
			log.Error("scheduled "+s.job.what+" not submitted; a later tick supersedes it", "err", err, "attempts", attempt)
			return
		}
		log.Warn("submit scheduled "+s.job.what+" failed; retrying", "err", err, "attempt", attempt, "retry_in", delay.String())
		if !sleep(ctx, delay) {
			return
		}
	}
}

// submit submits the backup of tick once, and audits it as requested by
// the scheduler when this call created the job or found it still queued
// (jobsubmit.OncePerJob: its creator may have died before auditing it;
// the derived event id keeps it single). The submission and the event
// share the submitTimeout bound.
func (s *Scheduler) submit(ctx context.Context, tick time.Time) (jobs.Record, bool, error) {
	sctx, cancel := context.WithTimeout(ctx, submitTimeout)
	defer cancel()
	rec, created, err := jobsubmit.Submit(sctx, s.pub, s.audit,
		jobs.Submission{Args: s.job.args(tick), SubmittedBy: SchedulerActor, IdempotencyKey: s.job.key(tick)},
		audit.Event{Actor: SchedulerActor, Detail: s.job.detail(tick)},
		jobsubmit.Options{Policy: jobsubmit.OncePerJob})
	if err != nil {
		return rec, created, fmt.Errorf("scheduled %s: %w", s.job.what, err)
	}
	return rec, created, nil
}

// params are the backup.create params of tick: a function of the schedule,
// the tick and BACKUP_VERIFY_AFTER only, so every replica submits the
// same bytes.
func (s *Scheduler) params(tick time.Time) jobspec.BackupCreateArgs {
	return jobspec.BackupCreateArgs{
		Note:        fmt.Sprintf("scheduled backup: BACKUP_SCHEDULE %q, tick %s", s.sched.String(), tick.UTC().Format(time.RFC3339)),
		VerifyAfter: s.verifyAfter,
		Schedule:    &jobspec.ScheduleTrigger{Schedule: s.sched.String(), Tick: tick.UTC()},
	}
}

// submitVerifyAfter submits the backup.verify job of archive, made by the
// backup.create job, once per create job (VerifyAfterKey): a redelivered
// create job gets the same verify job back, and its requested event is
// published once per verify job (jobsubmit.OncePerJob), within the
// submitTimeout bound of the submission.
func (w *Worker) submitVerifyAfter(ctx context.Context, job *worker.Job, archive string) error {
	if w.pub == nil {
		return jobs.Permanent(jobs.CodeVerifyAfter, errors.New("verify_after needs the job bus"))
	}
	sctx, cancel := context.WithTimeout(ctx, submitTimeout)
	defer cancel()
	by := job.Record.SubmittedBy
	rec, created, err := jobsubmit.Submit(sctx, w.pub, w.deps.Audit,
		jobs.Submission{Args: jobspec.BackupVerifyArgs{Name: archive}, SubmittedBy: by, IdempotencyKey: VerifyAfterKey(job.ID())},
		audit.Event{Actor: by, Detail: map[string]any{"archive": archive, "after_job": job.ID()}},
		jobsubmit.Options{Policy: jobsubmit.OncePerJob})
	if err != nil {
		return jobs.Retryable(jobs.CodeVerifyAfter, fmt.Errorf("verify of %s: %w", archive, err))
	}
	job.Logger().Info("verify after backup submitted", "verify_job_id", rec.ID, "archive", archive, "created", created)
	return nil
}

// sleep waits d or until ctx ends; it reports whether ctx is still live.
func sleep(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return ctx.Err() == nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
