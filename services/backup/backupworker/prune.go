package backupworker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"time"

	"github.com/insightops/insightops/shared/app"
	"github.com/insightops/insightops/shared/archiver"
	"github.com/insightops/insightops/shared/backupstore"
	"github.com/insightops/insightops/shared/jobs"
	"github.com/insightops/insightops/shared/jobspec"
	"github.com/insightops/insightops/shared/locks"
	"github.com/insightops/insightops/shared/retention"
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
	if len(p.Pin)+len(p.Unpin) > 0 {
		if err := job.Step(ctx, 2, "pinning archives"); err != nil {
			return jobspec.BackupPruneResult{}, err
		}
		if err := w.setPins(ctx, p.Pin, p.Unpin, job.Logger()); err != nil {
			return jobspec.BackupPruneResult{}, err
		}
	}
	if err := job.Step(ctx, 5, "listing archives"); err != nil {
		return jobspec.BackupPruneResult{}, err
	}
	res, err := w.prune(ctx, p.DryRun, job.Logger())
	if err != nil {
		return jobspec.BackupPruneResult{}, err
	}
	return res, nil
}

// setPins sets the pin of the archives pin and clears that of unpin, in
// their Meta. An archive that is not in the store fails the job
// (not_found) before any pin is changed.
func (w *Worker) setPins(ctx context.Context, pin, unpin []string, log *slog.Logger) error {
	st, err := w.Store(ctx)
	if err != nil {
		return jobs.Retryable(jobs.CodeStoreUnavailable, err)
	}
	metas := map[string]backupstore.Meta{}
	for _, name := range slices.Concat(pin, unpin) {
		m, err := st.Meta(ctx, name)
		if errors.Is(err, backupstore.ErrNotFound) {
			return jobs.Permanent(jobs.CodeNotFound, fmt.Errorf("pin: archive %s is not in the %s", name, st.Describe()))
		}
		if err != nil {
			return jobs.Retryable(jobs.CodeStoreUnavailable, fmt.Errorf("pin: meta of %s: %w", name, err))
		}
		metas[name] = m
	}
	for _, name := range slices.Concat(pin, unpin) {
		m := metas[name]
		m.Pinned = slices.Contains(pin, name)
		if err := st.SetMeta(ctx, name, m); err != nil {
			return jobs.Retryable(jobs.CodeStoreUnavailable, fmt.Errorf("pin: record the pin of %s: %w", name, err))
		}
		log.Info("archive pin set", "archive", name, "pinned", m.Pinned)
	}
	return nil
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

// prune applies the retention policy (package retention: keep-last,
// daily, weekly, monthly, within; pinned archives and the newest verified
// one always) to the archives by manifest creation time, and deletes the
// others (unless dryRun: then they are listed with the reason they go).
// While a restore holds a lease it deletes nothing ("lock_held",
// retryable): the archive being restored might be among the oldest.
func (w *Worker) prune(ctx context.Context, dryRun bool, log *slog.Logger) (jobspec.BackupPruneResult, error) {
	policy := w.deps.Config.BackupRetention
	policy.Last = w.deps.Config.BackupRetentionCount
	if policy.Last < 1 {
		policy.Last = DefaultRetentionCount
	}
	res := jobspec.BackupPruneResult{DryRun: dryRun, RetentionCount: policy.Last, Policy: policy.String(), Kept: []jobspec.PrunedArchive{}, Deleted: []jobspec.PrunedArchive{}}
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
	infoOf := map[string]backupstore.Info{}
	var archives []retention.Archive
	for _, e := range entries {
		infoOf[e.info.Name] = e.info
		archives = append(archives, retention.Archive{Name: e.info.Name, Created: e.created, Pinned: e.info.Meta.Pinned, Verified: e.info.Meta.Verified()})
	}
	for _, d := range retention.Apply(policy, archives) {
		a := jobspec.PrunedArchive{Name: d.Name, CreatedAt: d.Created, Bytes: infoOf[d.Name].Size, Verified: d.Verified, Pinned: d.Pinned, Reason: d.Reason()}
		switch {
		case d.Keep:
			res.Kept = append(res.Kept, a)
		case dryRun:
			res.WouldDelete = append(res.WouldDelete, a)
		default:
			err := st.Delete(ctx, a.Name)
			if errors.Is(err, backupstore.ErrLocked) {
				// Object lock outlives the policy: kept, and said so.
				a.Reason = jobspec.KeptLocked + " (" + a.Reason + ")"
				res.Kept = append(res.Kept, a)
				continue
			}
			if err != nil && !errors.Is(err, backupstore.ErrNotFound) {
				return res, jobs.Retryable(jobs.CodeStoreUnavailable, fmt.Errorf("delete %s: %w", a.Name, err))
			}
			log.Info("archive deleted by retention", "archive", a.Name, "created_at", a.CreatedAt, "reason", a.Reason)
			res.Deleted = append(res.Deleted, a)
		}
	}
	return res, nil
}
