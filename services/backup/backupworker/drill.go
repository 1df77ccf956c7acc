package backupworker

// # Restore drills (BACKUP_DRILL_SCHEDULE)
//
// A backup nobody ever restored is a hope. With BACKUP_DRILL_SCHEDULE every
// backup replica runs a second Scheduler (the same machinery as scheduled
// backups: one job per tick across replicas, idempotency key DrillKey)
// that submits a backup.verify job with drill set and no archive name.
// Its handler picks the newest archive when it runs and verifies it with
// archiver.Verify — the verification backup.verify always does, nothing
// copied: every part restored into scratch stores (pg_restore into a
// scratch PostgreSQL database, or pg_restore --list without one; the
// SQLite files opened and integrity-checked; the Chroma JSONL parsed) and
// every count compared with the manifest's. The outcome is recorded in
// the archive's Meta twice: as its last verification and as its last
// drill (Meta.Drill), which GET /admin/db/health reports as the
// "last_drill" component; the worker exports insightops_backup_drills_total
// {outcome}, insightops_backup_last_drill_timestamp_seconds and
// insightops_backup_last_drill_passed.

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/insightops/insightops/shared/app"
	"github.com/insightops/insightops/shared/backupstore"
	"github.com/insightops/insightops/shared/config"
	"github.com/insightops/insightops/shared/jobs"
	"github.com/insightops/insightops/shared/jobspec"
	"github.com/insightops/insightops/shared/metrics"
	"github.com/insightops/insightops/shared/worker"
)

// DrillKey is the idempotency key of the restore drill of schedule s at
// tick, the same for every replica.
func DrillKey(s config.Schedule, tick time.Time) string {
	return "drill-" + TickKey(s, tick)
}

// NewDrillScheduler returns the scheduler of
// deps.Config.BackupDrillSchedule, or nil when there is none (or no bus).
func NewDrillScheduler(deps app.Deps) *Scheduler {
	s := newScheduler(deps, deps.Config.BackupDrillSchedule, "drill-scheduler")
	if s == nil {
		return nil
	}
	s.job = tickJob{
		what: "restore drill",
		args: func(tick time.Time) jobs.Args { return DrillArgs(s.sched, tick) },
		key:  func(tick time.Time) string { return DrillKey(s.sched, tick) },
		detail: func(tick time.Time) map[string]any {
			return map[string]any{"drill_schedule": s.sched.String(), "tick": tick.UTC().Format(time.RFC3339)}
		},
	}
	return s
}

// DrillArgs are the backup.verify params of the drill of schedule s at
// tick: no archive name (the newest when it runs), the trigger recorded.
func DrillArgs(s config.Schedule, tick time.Time) jobspec.BackupVerifyArgs {
	return jobspec.BackupVerifyArgs{Drill: &jobspec.ScheduleTrigger{Schedule: s.String(), Tick: tick.UTC()}}
}

// drill runs a restore drill: verify the named archive (the newest when
// none is named), then record the outcome as its last drill and in the
// drill metrics.
func (w *Worker) drill(ctx context.Context, job *worker.Job, p jobspec.BackupVerifyArgs) (jobspec.BackupVerifyResult, error) {
	log := job.Logger()
	res, err := w.runDrill(ctx, job, p.Name)
	outcome := res.Outcome
	if outcome == "" {
		outcome = metrics.DrillError
	}
	metrics.BackupDrills.WithLabelValues(outcome).Inc()
	metrics.LastBackupDrill.SetToCurrentTime()
	if outcome == backupstore.OutcomePassed {
		metrics.LastBackupDrillPassed.Set(1)
		log.Info("restore drill passed", "archive", res.Archive, "files", len(res.Files))
	} else {
		metrics.LastBackupDrillPassed.Set(0)
		log.Error("restore drill did not pass", "archive", res.Archive, "outcome", outcome, "err", err)
	}
	if err != nil && res.Archive == "" {
		return jobspec.BackupVerifyResult{}, err
	}
	return res, err
}

// runDrill verifies the archive and records its verification as its
// drill too.
func (w *Worker) runDrill(ctx context.Context, job *worker.Job, name string) (jobspec.BackupVerifyResult, error) {
	st, err := w.Store(ctx)
	if err != nil {
		return jobspec.BackupVerifyResult{}, jobs.Retryable(jobs.CodeStoreUnavailable, err)
	}
	if name == "" {
		if err := job.Step(ctx, 1, "looking for the newest archive"); err != nil {
			return jobspec.BackupVerifyResult{}, err
		}
		infos, err := st.List(ctx)
		if err != nil {
			return jobspec.BackupVerifyResult{}, jobs.Retryable(jobs.CodeStoreUnavailable, fmt.Errorf("list archives: %w", err))
		}
		if len(infos) == 0 {
			return jobspec.BackupVerifyResult{}, jobs.Permanent(jobs.CodeNotFound, fmt.Errorf("restore drill: no archive in the %s", st.Describe()))
		}
		name = infos[0].Name // List is newest first
	}
	res, verr := w.archiver.Verify(ctx, name, w.run(ctx, job))
	if res.Archive == "" {
		return res, verr
	}
	meta, err := st.Meta(ctx, name)
	if err != nil && !errors.Is(err, backupstore.ErrNotFound) {
		return res, jobs.Retryable(jobs.CodeStoreUnavailable, fmt.Errorf("record the drill of %s: %w", name, err))
	}
	if meta.Verification != nil && meta.Verification.JobID == job.ID() {
		d := *meta.Verification
		meta.Drill = &d
		if err := st.SetMeta(ctx, name, meta); err != nil {
			return res, jobs.Retryable(jobs.CodeStoreUnavailable, fmt.Errorf("record the drill of %s: %w", name, err))
		}
	}
	return res, verr
}
