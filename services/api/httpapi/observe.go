package httpapi

import (
	"log/slog"

	"github.com/insightops/insightops/shared/bus"
	"github.com/insightops/insightops/shared/jobs"
	"github.com/insightops/insightops/shared/metrics"
)

// registerBusMetrics exports, from the API, the live workers per kind and
// the AUDIT and JOBS_DLQ streams' bytes against their limits (read from
// the bus at scrape time).
func registerBusMetrics(b *bus.Bus, log *slog.Logger) {
	if err := metrics.RegisterBus(b.JS, b.Workers, jobs.WorkerKinds, []string{bus.StreamAudit, bus.StreamDLQ}); err != nil {
		log.Warn("bus metrics", "err", err)
	}
}
