package restoreworker

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"

	"github.com/insightops/insightops/shared/app"
	"github.com/insightops/insightops/shared/archiver"
	"github.com/insightops/insightops/shared/backupfmt"
	"github.com/insightops/insightops/shared/backupstore"
	"github.com/insightops/insightops/shared/jobs"
	"github.com/insightops/insightops/shared/jobspec"
	"github.com/insightops/insightops/shared/worker"
)

// archiverSafety is the SafetyBackupFunc of deps: archiver.Create with
// SkipLocks (the restore holds the leases). Create is idempotent per job
// id and applies no retention, so the archive being restored is never
// pruned by its own safety backup.
func archiverSafety(deps app.Deps) SafetyBackupFunc {
	return func(ctx context.Context, components []string, note string, progress func(int, string) error, jobID string) (jobspec.SafetyBackup, error) {
		res, err := archiver.Create(ctx, deps, jobspec.BackupCreateArgs{Components: components, Note: note}, archiver.Run{JobID: jobID, SkipLocks: true, Progress: progress})
		if err != nil {
			return jobspec.SafetyBackup{}, err
		}
		return jobspec.SafetyBackup{Archive: res.Archive, SHA256: res.SHA256, Bytes: res.Bytes, Reused: res.Reused}, nil
	}
}

// safetyBackup archives the current state of the components about to be
// restored, under the restore job's id: a retried job gets the archive of
// its first attempt back (Reused) rather than a copy of a half-restored
// state. Its failure fails the attempt before anything is changed
// (retryable unless the backup says otherwise).
func (w *Worker) safetyBackup(ctx context.Context, job *worker.Job, st backupstore.Store, p jobspec.RestoreArgs, components []string) (*jobspec.SafetyBackup, error) {
	components = w.existing(components)
	if len(components) == 0 {
		job.Logger().Info("no safety backup: none of the stores to restore holds anything yet")
		return nil, nil
	}
	if w.SafetyBackup == nil {
		return nil, jobs.Permanent(jobs.CodeSafetyBackupFailed, errors.New("restore: no safety backup function configured; nothing was changed"))
	}
	if err := job.Step(ctx, pctSafety, "taking the pre-restore safety backup"); err != nil {
		return nil, err
	}
	note := fmt.Sprintf("pre-restore safety backup: state before restore job %s restored %s", job.ID(), p.Archive)
	progress := func(pct int, step string) error {
		return job.Step(ctx, pctSafety+min(max(pct, 0), 100)*(pctRestore-pctSafety)/100, "safety backup: "+step)
	}
	sb, err := w.SafetyBackup(ctx, components, note, progress, job.ID())
	if err != nil {
		var ce *jobs.CodedError
		switch {
		case errors.Is(err, jobs.ErrCancelled), errors.Is(err, context.Canceled):
			return nil, err
		case errors.As(err, &ce):
			return nil, &jobs.CodedError{Code: jobs.CodeSafetyBackupFailed, Permanent: ce.Permanent,
				Err: fmt.Errorf("restore: the pre-restore safety backup failed (%s), nothing was changed: %w", string(ce.Code), err)}
		}
		return nil, jobs.Retryable(jobs.CodeSafetyBackupFailed, fmt.Errorf("restore: the pre-restore safety backup failed, nothing was changed: %w", err))
	}
	job.Logger().Info("safety backup taken", "archive", sb.Archive, "bytes", sb.Bytes, "reused", sb.Reused)
	if _, err := st.Meta(ctx, p.Archive); errors.Is(err, backupstore.ErrNotFound) {
		return nil, jobs.Permanent(jobs.CodeArchiveNotFound, fmt.Errorf("restore: %s was deleted while the safety backup %s was taken; nothing was changed", p.Archive, sb.Archive))
	}
	return &sb, nil
}

// existing drops from components those with nothing to save: the Target
// DB when its runtime copy does not exist yet (a fresh install).
func (w *Worker) existing(components []string) []string {
	return slices.DeleteFunc(slices.Clone(components), func(c string) bool {
		if c != backupfmt.ComponentTarget {
			return false
		}
		_, err := os.Stat(w.Deps.Config.TargetDBPath)
		return errors.Is(err, os.ErrNotExist)
	})
}
