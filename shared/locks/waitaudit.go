package locks

import (
	"context"
	"time"

	"github.com/insightops/insightops/shared/audit"
	"github.com/insightops/insightops/shared/jobs"
)

// Audit actions of a job that meets a held lease after it was submitted
// (the API's refusal at submission is <kind>.lock_contention).
const (
	// PhaseLockWait is audited (outcome denied) once per wait episode: the
	// first time an attempt of the job finds a lease held by another
	// operation.
	PhaseLockWait = "lock_wait"
	// PhaseLockAcquired is audited (outcome success) when an attempt that
	// waited takes its leases, with how long it waited.
	PhaseLockAcquired = "lock_acquired"
)

// WaitAuditor turns a job's lease wait loop into audit events: call Held
// each time the loop finds a lease held by someone else and Acquired when
// it takes its leases. One wait episode (one blocking holder: its owner
// and the time it took the lease) gives one <kind>.lock_wait event, whose
// id is derived from the job, the lease and the holder, so the retried
// attempts of a job that keep meeting the same holder publish it again
// with the same id and it is stored once. A zero WaitAuditor (no Publish)
// audits nothing.
type WaitAuditor struct {
	// Kind is the job kind ("backup.create", "restore.run", …).
	Kind string
	// JobID is the waiting job's id.
	JobID string
	// Actor is who submitted the job; empty lets Publish fill it in.
	Actor string
	// Publish records one event (worker.Job.Audit or
	// audit.Publisher.Record); nil audits nothing.
	Publish func(context.Context, audit.Event)

	first   *HeldError // the holder that started this episode
	started time.Time
	seen    map[string]bool // episodes audited, by event id
}

// Held notes that the lease he names is held; the first time another
// operation's holder blocks the job it publishes <kind>.lock_wait. A
// lease held by the job itself (an earlier attempt that crashed, taken
// over by the caller) is not a wait and is ignored.
func (a *WaitAuditor) Held(ctx context.Context, he *HeldError) {
	if he == nil || he.Holder.Owner == a.JobID {
		return
	}
	if a.first == nil {
		a.first, a.started = he, time.Now()
	}
	id := audit.DerivedID(a.JobID, PhaseLockWait, he.Name, he.Holder.Owner, he.Holder.Since.UTC().Format(time.RFC3339Nano))
	if a.seen[id] {
		return
	}
	if a.seen == nil {
		a.seen = map[string]bool{}
	}
	a.seen[id] = true
	a.publish(ctx, audit.Event{
		ID: id, Action: jobs.AuditAction(a.Kind, PhaseLockWait), Resource: he.Name, Outcome: audit.Denied,
		Detail: map[string]any{
			"lock": he.Name,
			"holder": map[string]any{
				"operation": he.Holder.Operation, "job_id": he.Holder.Owner, "since": he.Holder.Since.UTC(),
			},
			"message": he.Error(),
		},
	})
}

// Waited reports whether Held was called since the last Acquired.
func (a *WaitAuditor) Waited() bool { return a.first != nil }

// Acquired notes that the job took the leases names; after a wait it
// publishes <kind>.lock_acquired with the wait's duration. It ends the
// episode.
func (a *WaitAuditor) Acquired(ctx context.Context, names []string) {
	if a.first == nil {
		return
	}
	first, waited := a.first, time.Since(a.started)
	a.first = nil
	a.publish(ctx, audit.Event{
		ID:     audit.DerivedID(a.JobID, PhaseLockAcquired, first.Name, first.Holder.Owner, first.Holder.Since.UTC().Format(time.RFC3339Nano)),
		Action: jobs.AuditAction(a.Kind, PhaseLockAcquired), Resource: first.Name, Outcome: audit.Success,
		Detail: map[string]any{
			"locks":          names,
			"waited_ms":      waited.Milliseconds(),
			"waited_for_job": first.Holder.Owner,
		},
	})
}

func (a *WaitAuditor) publish(ctx context.Context, e audit.Event) {
	if a.Publish == nil {
		return
	}
	e.JobID, e.Actor = a.JobID, a.Actor
	// The wait may end because ctx was cancelled; the event still goes out.
	pctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	a.Publish(pctx, e)
}
