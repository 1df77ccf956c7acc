// Package restoreworker is the restore worker: it consumes jobs.restore.* on the
// shared durable consumer "restore" and restores an archive into the three stores.
//
// The consumer, presence and drain are in place; the handlers land with
// their own issue, and until then each job kind fails at once with the
// permanent error "not_implemented" rather than being retried or lost.
package restoreworker

import (
	"context"

	"github.com/insightops/insightops/shared/app"
	"github.com/insightops/insightops/shared/jobs"
	"github.com/insightops/insightops/shared/worker"
)

// Kind is the worker kind and durable consumer name.
const Kind = "restore"

// Handlers returns the handler of every job kind this worker consumes.
func Handlers(deps app.Deps) map[string]worker.Handler {
	h := map[string]worker.Handler{}
	for _, k := range []string{jobs.KindRestore} {
		h[k] = worker.NotYetImplemented(k)
	}
	return h
}

// Run consumes restore jobs until ctx ends, then drains.
func Run(ctx context.Context, deps app.Deps) error {
	return worker.Run(ctx, deps.Bus, worker.OptionsFrom(deps.Config, Kind, Handlers(deps), deps.Audit, deps.Log))
}
