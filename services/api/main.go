// Command api serves the insightops HTTP API: it authenticates callers,
// validates requests and queues jobs on NATS JetStream for the workers,
// and runs the audit sink that copies the AUDIT stream into the System DB.
// Configuration comes from the environment (see shared/config).
package main

import (
	"context"

	"github.com/insightops/insightops/services/api/httpapi"
	"github.com/insightops/insightops/shared/app"
	"github.com/insightops/insightops/shared/config"
)

func main() {
	app.Main(app.Options{Name: "insightops-api", Role: config.RoleAPI, SystemDB: true, FailFastWhenDisconnected: true, MetricsOnOwnPort: true},
		func(ctx context.Context, deps app.Deps) error {
			return httpapi.RunWithAuditSink(ctx, httpapi.Deps{Config: deps.Config, Bus: deps.Bus, DB: deps.DB, Log: deps.Log})
		})
}
