package restoreworker

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/insightops/insightops/shared/jobs"
	"github.com/insightops/insightops/shared/locks"
	"github.com/insightops/insightops/shared/worker"
)

// acquire takes the leases of names for job with locks.AcquireAll. While
// one is held by another operation it polls every LockPoll, reporting
// who holds it through job.Step (also the cancellation point), for up to
// LockWait; then it returns the retryable lock_held error, so the runtime
// retries the job with backoff. A lease held by an earlier attempt of this
// very job (its worker died before releasing it) is taken over.
func (w *Worker) acquire(ctx context.Context, job *worker.Job, names []string) (locks.Set, error) {
	if w.Deps.Bus == nil || w.Deps.Bus.Locks == nil {
		return nil, errors.New("restore: no LOCKS bucket")
	}
	kv := w.Deps.Bus.Locks
	h := locks.Holder{Owner: job.ID(), Operation: job.Record.Kind}
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
	deadline := time.Now().Add(w.LockWait)
	var lastReport time.Time
	// Each wait for a lease held by another operation is audited once
	// (restore.lock_wait), and the end of a wait (restore.lock_acquired).
	waits := &locks.WaitAuditor{Kind: job.Record.Kind, JobID: job.ID(), Publish: job.Audit}
	for {
		set, err := locks.AcquireAll(ctx, kv, names, h, refresh)
		if err == nil {
			log.Info("locks taken", "locks", names)
			waits.Acquired(ctx, names)
			return set, nil
		}
		var held *locks.HeldError
		if !errors.As(err, &held) {
			return nil, fmt.Errorf("restore: take the locks of %s: %w", what, err)
		}
		if held.Holder.Owner == job.ID() && takeOver(ctx, kv, held.Name, job.ID()) {
			log.Warn("taking over a lease of an earlier attempt of this job", "lock", held.Name)
			continue
		}
		waits.Held(ctx, held)
		if time.Now().After(deadline) {
			return nil, jobs.Retryable(CodeLockHeld, fmt.Errorf("restore: waited %s for the locks: %w; the job will be retried", w.LockWait, held))
		}
		if time.Since(lastReport) >= 5*time.Second {
			log.Info("waiting for a lock", "lock", held.Name, "holder", held.Holder.Owner, "operation", held.Holder.Operation)
			if err := job.Step(ctx, pctLocks, "waiting: "+held.Error()); err != nil {
				return nil, err
			}
			lastReport = time.Now()
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(poll):
		}
	}
}

// takeOver deletes the lease name if its holder is owner, guarded by the
// revision read, and reports whether it did.
func takeOver(ctx context.Context, kv jetstream.KeyValue, name, owner string) bool {
	e, err := kv.Get(ctx, name)
	if err != nil {
		return false
	}
	var cur locks.Holder
	if json.Unmarshal(e.Value(), &cur) != nil || cur.Owner != owner {
		return false
	}
	return kv.Delete(ctx, name, jetstream.LastRevision(e.Revision())) == nil
}

// release releases the leases, detached from ctx so it also runs after a
// cancellation; a failure is logged (the TTL frees them anyway).
func (w *Worker) release(ctx context.Context, set locks.Set, log *slog.Logger) {
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	if err := set.Release(rctx); err != nil {
		log.Warn("release the locks (they expire by themselves)", "err", err)
		return
	}
	log.Info("locks released")
}
