package backupworker

import (
	"context"

	"github.com/insightops/insightops/shared/archiver"
	"github.com/insightops/insightops/shared/jobspec"
	"github.com/insightops/insightops/shared/worker"
)

// handleCreate is the backup.create handler: the archive (archiver.Create,
// the job's leases, progress and audit), then retention, then the verify
// job when asked.
func (w *Worker) handleCreate(ctx context.Context, job *worker.Job, p jobspec.BackupCreateArgs) (jobspec.BackupCreateResult, error) {
	log := job.Logger()
	res, err := w.archiver.Create(ctx, p, w.run(ctx, job))
	if err != nil {
		return jobspec.BackupCreateResult{}, err
	}
	out := jobspec.BackupCreateResult{ArchiveSummary: res}
	if err := job.Step(ctx, 99, "applying retention"); err != nil {
		return jobspec.BackupCreateResult{}, err
	}
	pr, err := w.prune(ctx, false, log)
	if err != nil {
		// The archive is made and listed: a retention failure is reported,
		// not a reason to redo the backup; the next backup or prune job
		// applies it again.
		log.Warn("retention after backup failed", "err", err)
		out.RetentionError = err.Error()
	} else {
		out.Retention = &pr
	}
	if p.VerifyAfter {
		if err := w.submitVerifyAfter(ctx, job, res.Archive); err != nil {
			return jobspec.BackupCreateResult{}, err // redelivered: the archive is reused, the verify job too
		}
	}
	return out, nil
}

// handleVerify is the backup.verify handler (archiver.Verify).
func (w *Worker) handleVerify(ctx context.Context, job *worker.Job, p jobspec.BackupVerifyArgs) (jobspec.BackupVerifyResult, error) {
	if p.Drill != nil {
		return w.drill(ctx, job, p)
	}
	res, err := w.archiver.Verify(ctx, p.Name, w.run(ctx, job))
	if err != nil && res.Archive == "" {
		return jobspec.BackupVerifyResult{}, err
	}
	return res, err
}

// run is the archiver.Run of job: its id, progress, audit and logger.
func (w *Worker) run(ctx context.Context, job *worker.Job) archiver.Run {
	return archiver.Run{
		JobID:    job.ID(),
		Progress: func(pct int, step string) error { return job.Step(ctx, pct, step) },
		Audit:    job.Audit,
		Log:      job.Logger(),
	}
}
