// Command restore runs one replica of the insightops restore worker against
// NATS_URL (or an embedded server when it is empty), with the System DB
// (DATABASE_URL, or SQLite under DATA_DIR) it restores into.
package main

import (
	"github.com/insightops/insightops/services/restore/restoreworker"
	"github.com/insightops/insightops/shared/app"
)

func main() {
	ctx, stop := app.SignalContext()
	defer stop()
	deps, closeAll, err := app.Open(ctx, app.Options{Name: "insightops-restore", SystemDB: true})
	if err != nil {
		app.Exit(err)
	}
	app.StartMetrics(ctx, deps)
	err = restoreworker.Run(ctx, deps)
	closeAll()
	app.Exit(err)
}
