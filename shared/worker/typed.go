package worker

import (
	"context"
	"fmt"
	"reflect"

	"github.com/insightops/insightops/shared/jobs"
)

// Typed is a handler bound to the job kind of its args type; build it with
// Handle and register it with Handlers.
type Typed struct {
	kind string
	h    Handler
}

// Kind is the job kind the handler is registered under: its args type's Kind.
func (t Typed) Kind() string { return t.kind }

// Handler is the runtime handler: decode, validate, run, return the result.
func (t Typed) Handler() Handler { return t.h }

// Handle turns fn, the handler of the job kind whose params are A, into a
// Typed handler. The runtime handler it makes decodes the job's params
// strictly into A (unknown fields refused; no params is A's zero value),
// calls A's Validate, then fn; a decode or validation failure is a
// permanent invalid_params error, and fn is not called. fn's result is
// the job's result; with an error, a result that is not R's zero value is
// stored too (a failed verification's report), a zero one is not.
func Handle[A jobs.Args, R any](fn func(ctx context.Context, job *Job, args A) (R, error)) Typed {
	var zero A
	kind := zero.Kind()
	return Typed{kind: kind, h: func(ctx context.Context, job *Job) (any, error) {
		if job.Record.Kind != kind {
			return nil, jobs.Permanent(jobs.CodeUnknownKind, fmt.Errorf("a %s handler got a %s job", kind, job.Record.Kind))
		}
		var args A
		if err := job.Decode(&args); err != nil {
			return nil, err
		}
		if err := args.Validate(); err != nil {
			return nil, err
		}
		res, err := fn(ctx, job, args)
		if err != nil && reflect.ValueOf(&res).Elem().IsZero() {
			return nil, err
		}
		return res, err
	}}
}

// Handlers returns the handler map of Options.Handlers: each typed
// handler under its own kind, so none can be registered under another.
// Registering a kind twice is a programming error: it panics.
func Handlers(hs ...Typed) map[string]Handler {
	m := make(map[string]Handler, len(hs))
	for _, t := range hs {
		if _, dup := m[t.kind]; dup || t.kind == "" {
			panic(fmt.Sprintf("worker: handler kind %q registered twice or empty", t.kind))
		}
		m[t.kind] = t.h
	}
	return m
}
