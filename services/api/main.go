// Command api serves the insightops HTTP API: it authenticates callers,
// validates requests and queues jobs on NATS JetStream for the workers,
// and runs the audit sink that copies the AUDIT stream into the System DB.
// Configuration comes from the environment (see shared/config).
package main

import (
	"github.com/insightops/insightops/services/api/httpapi"
	"github.com/insightops/insightops/shared/app"
)

func main() {
	ctx, stop := app.SignalContext()
	defer stop()
	deps, closeAll, err := app.Open(ctx, app.Options{Name: "insightops-api", SystemDB: true, FailFastWhenDisconnected: true})
	if err != nil {
		app.Exit(err)
	}
	err = httpapi.RunWithAuditSink(ctx, httpapi.Deps{Config: deps.Config, Bus: deps.Bus, DB: deps.DB, Log: deps.Log})
	closeAll()
	app.Exit(err)
}
