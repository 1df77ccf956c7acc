// Package jobsubmit submits a job and audits who asked for it: it puts the
// submission on the bus through a jobs.Publisher, then publishes the job's
// "<kind>.requested" audit event through an audit.Publisher. It lives
// apart from shared/jobs and shared/audit, which do not import each other.
//
// A Policy says when the event is published and under which id: every
// call (EveryCall, e.g. an HTTP request, where a replayed request is
// audited too) or once per job (OncePerJob, e.g. replicas and redelivered
// handlers that submit the same job by one idempotency key).
package jobsubmit

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"time"

	"github.com/insightops/insightops/shared/audit"
	"github.com/insightops/insightops/shared/jobs"
)

// Policy says when Submit publishes the requested event and with which id.
// Its zero value is no policy: Submit refuses it.
type Policy int

const (
	// EveryCall publishes an event for every successful call, under a
	// fresh id, with Detail["replayed"] = !created: each request for a
	// job is audited, including one an idempotency key answered with an
	// existing job.
	EveryCall Policy = iota + 1
	// OncePerJob publishes the event under the id
	// audit.DerivedID(job id, "requested") when the call created the job
	// or found its record still queued (its creator may have died before
	// auditing it); the derived id makes the AUDIT stream and the audit
	// sink store it once however many submitters publish it. A job found
	// running or ended was audited by whoever got it there, so nothing is
	// published then.
	OncePerJob
)

// String names the policy.
func (p Policy) String() string {
	switch p {
	case EveryCall:
		return "every-call"
	case OncePerJob:
		return "once-per-job"
	}
	return fmt.Sprintf("Policy(%d)", int(p))
}

// Options say how Submit audits a submission.
type Options struct {
	// Policy is required.
	Policy Policy
	// AuditTimeout, when positive, bounds the event's publish on a clock
	// of its own, detached from the cancellation and deadline of Submit's
	// ctx (the job is queued whatever happens to the caller, and the event
	// saying who asked for it should not be lost with it). Zero publishes
	// within ctx (audit.PublishRetryFor when ctx has no deadline).
	AuditTimeout time.Duration
}

// ErrNoPolicy is returned, before anything is submitted, when
// Options.Policy is not one of the policies.
var ErrNoPolicy = errors.New("jobsubmit: no audit policy")

// Submit submits sub through pub and then publishes its requested event
// through ap (a nil ap audits nothing), as opts.Policy says. It returns
// what pub.Submit returns; the record is returned with an error too (for
// an idempotency conflict it is the job that holds the key), and nothing
// is audited then. A lost event is logged by ap, not returned: the job is
// queued either way.
//
// ev carries what the caller knows: Actor, Role, SourceIP, RequestID and
// Detail (copied, never modified). Submit sets Action
// (jobs.AuditAction(kind, "requested")), Resource (jobs.WorkerKind(kind)),
// JobID, Outcome (audit.Success), the id the policy gives, and in Detail
// "kind", "idempotency_key" (when sub has one) and, for EveryCall,
// "replayed".
func Submit(ctx context.Context, pub *jobs.Publisher, ap *audit.Publisher, sub jobs.Submission, ev audit.Event, opts Options) (jobs.Record, bool, error) {
	if opts.Policy != EveryCall && opts.Policy != OncePerJob {
		return jobs.Record{}, false, fmt.Errorf("submit %s: %w (%s)", sub.Kind(), ErrNoPolicy, opts.Policy)
	}
	rec, created, err := pub.Submit(ctx, sub)
	if err != nil {
		return rec, created, fmt.Errorf("submit %s: %w", sub.Kind(), err)
	}
	detail := make(map[string]any, len(ev.Detail)+3)
	maps.Copy(detail, ev.Detail)
	detail["kind"] = sub.Kind()
	if sub.IdempotencyKey != "" {
		detail["idempotency_key"] = sub.IdempotencyKey
	}
	ev.Action = jobs.AuditAction(sub.Kind(), "requested")
	ev.Resource = jobs.WorkerKind(sub.Kind())
	ev.JobID = rec.ID
	ev.Outcome = audit.Success
	ev.Detail = detail
	switch opts.Policy {
	case EveryCall:
		ev.ID = "" // the audit publisher makes a fresh one
		detail["replayed"] = !created
	case OncePerJob:
		if !created && rec.State != jobs.Queued {
			return rec, created, nil
		}
		ev.ID = RequestedID(rec.ID)
	}
	if opts.AuditTimeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(context.WithoutCancel(ctx), opts.AuditTimeout)
		defer cancel()
	}
	ap.Record(ctx, ev)
	return rec, created, nil
}

// RequestedID is the id of job jobID's requested event under OncePerJob.
func RequestedID(jobID string) string { return audit.DerivedID(jobID, "requested") }
