package backupworker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"time"

	"github.com/insightops/insightops/shared/app"
	"github.com/insightops/insightops/shared/archiver"
	"github.com/insightops/insightops/shared/backupstore"
	"github.com/insightops/insightops/shared/jobs"
	"github.com/insightops/insightops/shared/jobspec"
	"github.com/insightops/insightops/shared/locks"
	"github.com/insightops/insightops/shared/worker"
)

// DefaultRetentionCount is the retention when the configuration has none.
const DefaultRetentionCount = 7

// Prune applies retention to the store BACKUP_STORE selects (see
// jobspec.BackupPruneResult and the package documentation).
func Prune(ctx context.Context, deps app.Deps, dryRun bool) (jobspec.BackupPruneResult, error) {
	w := New(deps, Options{})
	return w.prune(ctx, dryRun, w.deps.Log)
}

// handlePrune is the backup.prune handler.
func (w *Worker) handlePrune(ctx context.Context, job *worker.Job, p jobspec.BackupPruneArgs) (jobspec.BackupPruneResult, error) {
	if err := job.Step(ctx, 5, "listing archives"); err != nil {
		return jobspec.BackupPruneResult{}, err
	}
	res, err := w.prune(ctx, p.DryRun, job.Logger())
	if err != nil {
		return jobspec.BackupPruneResult{}, err
	}
	return res, nil
}

// restoreHolder returns the restore holding a lease, if any.
func (w *Worker) restoreHolder(ctx context.Context) (string, *locks.HeldError, error) {
	if w.deps.Bus == nil || w.deps.Bus.Locks == nil {
		return "", nil, nil
	}
	hs, err := locks.Holders(ctx, w.deps.Bus.Locks, locks.Order...)
	if err != nil {
		return "", nil, err
	}
	for _, n := range locks.Order {
		if h, ok := hs[n]; ok && h.Operation == jobs.KindRestore {
			return n, &locks.HeldError{Name: n, Holder: h}, nil
		}
	}
	return "", nil, nil
}

// prune keeps the newest RetentionCount archives by manifest creation time
// and the newest verified one, and deletes the others (unless dryRun).
// While a restore holds a lease it deletes nothing ("lock_held",
// retryable): the archive being restored might be among the oldest.
func (w *Worker) prune(ctx context.Context, dryRun bool, log *slog.Logger) (jobspec.BackupPruneResult, error) {
	keep := w.deps.Config.BackupRetentionCount
	if keep < 1 {
		keep = DefaultRetentionCount
	}
	res := jobspec.BackupPruneResult{DryRun: dryRun, RetentionCount: keep, Kept: []jobspec.PrunedArchive{}, Deleted: []jobspec.PrunedArchive{}}
	if !dryRun {
		if _, held, err := w.restoreHolder(ctx); err != nil {
			return res, jobs.Retryable(jobs.CodeLockError, fmt.Errorf("read leases: %w", err))
		} else if held != nil {
			return res, jobs.Retryable(jobs.CodeLockHeld, fmt.Errorf("retention waits for the restore to end: %w", held))
		}
	}
	st, err := w.Store(ctx)
	if err != nil {
		return res, jobs.Retryable(jobs.CodeStoreUnavailable, err)
	}
	infos, err := st.List(ctx)
	if err != nil {
		return res, jobs.Retryable(jobs.CodeStoreUnavailable, fmt.Errorf("list archives: %w", err))
	}
	type entry struct {
		info    backupstore.Info
		created time.Time
	}
	var entries []entry
	for _, info := range infos {
		created := info.Meta.CreatedAt
		if created.IsZero() {
			// No summary (an archive copied in by hand, or a Meta write
			// that failed): read the manifest itself, never trust the name.
			m, err := archiver.ReadManifest(ctx, st, info)
			switch {
			case err == nil:
				meta, err := archiver.RecordSummary(ctx, st, info, m)
				if err != nil {
					log.Warn("record the summary of an archive without one", "archive", info.Name, "err", err)
				}
				info.Meta = meta
				created = m.CreatedAt
			case archiver.Invalid(err):
				res.Unreadable = append(res.Unreadable, jobspec.PrunedArchive{Name: info.Name, Bytes: info.Size, Reason: err.Error()})
				continue
			case errors.Is(err, backupstore.ErrNotFound):
				continue
			default:
				return res, jobs.Retryable(jobs.CodeStoreUnavailable, fmt.Errorf("read the manifest of %s: %w", info.Name, err))
			}
		}
		entries = append(entries, entry{info: info, created: created.UTC()})
	}
	sort.SliceStable(entries, func(i, j int) bool {
		if !entries[i].created.Equal(entries[j].created) {
			return entries[i].created.After(entries[j].created)
		}
		return entries[i].info.Name > entries[j].info.Name
	})
	newestVerified := -1
	for i, e := range entries {
		if e.info.Meta.Verified() {
			newestVerified = i
			break
		}
	}
	for i, e := range entries {
		a := jobspec.PrunedArchive{Name: e.info.Name, CreatedAt: e.created, Bytes: e.info.Size, Verified: e.info.Meta.Verified()}
		switch {
		case i < keep:
			a.Reason = jobspec.KeptNewest
			res.Kept = append(res.Kept, a)
		case i == newestVerified:
			a.Reason = jobspec.KeptNewestVerified
			res.Kept = append(res.Kept, a)
		case dryRun:
			res.WouldDelete = append(res.WouldDelete, a)
		default:
			if err := st.Delete(ctx, a.Name); err != nil && !errors.Is(err, backupstore.ErrNotFound) {
				return res, jobs.Retryable(jobs.CodeStoreUnavailable, fmt.Errorf("delete %s: %w", a.Name, err))
			}
			log.Info("archive deleted by retention", "archive", a.Name, "created_at", a.CreatedAt)
			res.Deleted = append(res.Deleted, a)
		}
	}
	return res, nil
}
