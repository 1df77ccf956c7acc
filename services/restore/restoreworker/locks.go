package restoreworker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/insightops/insightops/shared/jobs"
	"github.com/insightops/insightops/shared/locks"
	"github.com/insightops/insightops/shared/worker"
)

// lockReportEvery is how often a waiting restore repeats who holds the
// lease in its step.
const lockReportEvery = 5 * time.Second

// acquire takes the leases of names for job with locks.Take under the
// restore's policy: while one is held by another operation it polls every
// LockPoll, reporting who holds it through job.Step (also the cancellation
// point) at most every lockReportEvery, for up to LockWait; then it
// returns the retryable lock_held error, so the runtime retries the job
// with backoff. A lease held by an earlier attempt of this very job (its
// worker died before releasing it) is taken over. The wait is audited
// (restore.lock_wait once per blocking holder, restore.lock_acquired).
func (w *Worker) acquire(ctx context.Context, job *worker.Job, names []string) (locks.Set, error) {
	if w.Deps.Bus == nil || w.Deps.Bus.Locks == nil {
		return nil, errors.New("restore: no LOCKS bucket")
	}
	refresh := w.LockRefresh
	if refresh <= 0 {
		refresh = DefaultLockRefresh
	}
	poll := w.LockPoll
	if poll <= 0 {
		poll = DefaultLockPoll
	}
	log := job.Logger()
	what := strings.Join(names, ", ")
	if err := job.Step(ctx, pctLocks, "taking the locks of "+what); err != nil {
		return nil, err
	}
	set, err := locks.Take(ctx, w.Deps.Bus.Locks, names, locks.Holder{Owner: job.ID(), Operation: job.Record.Kind}, locks.TakeOptions{
		Refresh: refresh, Wait: w.LockWait, Poll: poll, ReportEvery: lockReportEvery, TakeOverOwn: true,
		Progress: func(ctx context.Context, held *locks.HeldError) error {
			return job.Step(ctx, pctLocks, "waiting: "+held.Error())
		},
		Audit: job.Audit, Log: log,
	})
	var held *locks.HeldError
	switch {
	case errors.As(err, &held):
		return nil, jobs.Retryable(jobs.CodeLockHeld, fmt.Errorf("restore: waited %s for the locks: %w; the job will be retried", w.LockWait, held))
	case err != nil && (errors.Is(err, jobs.ErrCancelled) || ctx.Err() != nil):
		return nil, err
	case err != nil:
		return nil, fmt.Errorf("restore: take the locks of %s: %w", what, err)
	}
	log.Info("locks taken", "locks", names)
	return set, nil
}

// release releases the leases, detached from ctx so it also runs after a
// cancellation; a failure is logged (the TTL frees them anyway).
func (w *Worker) release(ctx context.Context, set locks.Set, log *slog.Logger) {
	if err := set.ReleaseDetached(ctx); err != nil {
		log.Warn("release the locks", "err", err)
		return
	}
	log.Info("locks released")
}
