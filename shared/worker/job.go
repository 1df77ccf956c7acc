package worker

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"sync"

	"github.com/insightops/insightops/shared/audit"
	"github.com/insightops/insightops/shared/jobs"
	"github.com/insightops/insightops/shared/tracing"
)

// Job is the running job handed to a Handler.
type Job struct {
	mu     sync.Mutex
	Record jobs.Record
	rev    uint64 // revision of Record in JOB_PROGRESS
	store  *jobs.Store
	log    *slog.Logger
	audit  *audit.Publisher // nil: the job's own events are not audited
	steps  tracing.Steps    // the running step's span
}

// ID is the job id.
func (j *Job) ID() string { return j.Record.ID }

// Attempt is this delivery's attempt number (1 for the first).
func (j *Job) Attempt() int { return j.Record.Attempt }

// Logger logs with job_id, kind and attempt on every line.
func (j *Job) Logger() *slog.Logger { return j.log }

// Decode unmarshals the job's params into v, rejecting unknown fields; a
// failure is permanent (bad input is never retried).
func (j *Job) Decode(v any) error {
	if len(j.Record.Params) == 0 {
		return nil
	}
	dec := json.NewDecoder(bytes.NewReader(j.Record.Params))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return jobs.Invalid("decode %s params: %v", j.Record.Kind, err)
	}
	return nil
}

// Step records progress (0–100, never going backwards) and the step now
// running. It is the cancellation point: when cancellation was requested
// it writes nothing and returns jobs.ErrCancelled, which the handler
// returns to end the job as cancelled.
func (j *Job) Step(ctx context.Context, progress int, step string) error {
	j.mu.Lock()
	defer j.mu.Unlock()
	if err := ctx.Err(); err != nil {
		return err
	}
	rec, rev, err := j.store.UpdateFrom(ctx, j.Record, j.rev, func(r *jobs.Record) error {
		if r.CancelRequested {
			return jobs.ErrCancelled
		}
		if progress > r.Progress {
			r.Progress = min(progress, 99) // 100 is written with the final state
		}
		r.Step = step
		return nil
	})
	if err != nil {
		return err
	}
	j.Record, j.rev = rec, rev
	j.steps.Step(ctx, step, rec.Progress)
	j.log.Info("job step", "step", step, "progress", rec.Progress)
	return nil
}

// endSteps ends the last step's span (the handler has returned).
func (j *Job) endSteps() {
	j.mu.Lock()
	defer j.mu.Unlock()
	j.steps.End()
}

// Audit publishes e as an event of this job: JobID is the job's id, Actor
// (when empty) who submitted it, Resource (when empty) the worker kind.
// Give e.ID with audit.DerivedID when a retried attempt may publish the
// same fact again, so it is stored once. A failure to publish is logged,
// never returned: the job goes on. Without an audit publisher (the
// runtime's Options.Audit) it does nothing.
func (j *Job) Audit(ctx context.Context, e audit.Event) {
	if j == nil || j.audit == nil {
		return
	}
	e.JobID = j.Record.ID
	if e.Actor == "" {
		e.Actor = j.Record.SubmittedBy
	}
	if e.Resource == "" {
		e.Resource = jobs.WorkerKind(j.Record.Kind)
	}
	j.audit.Record(ctx, e)
}
