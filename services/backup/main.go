// Command backup runs one replica of the insightops backup worker against
// NATS_URL (or an embedded server when it is empty), with the System DB
// (DATABASE_URL or SQLite under DATA_DIR) it backs up.
package main

import (
	"github.com/insightops/insightops/services/backup/backupworker"
	"github.com/insightops/insightops/shared/app"
)

func main() {
	ctx, stop := app.SignalContext()
	defer stop()
	deps, closeAll, err := app.Open(ctx, app.Options{Name: "insightops-backup", SystemDB: true})
	if err != nil {
		app.Exit(err)
	}
	app.StartMetrics(ctx, deps)
	err = backupworker.Run(ctx, deps)
	closeAll()
	app.Exit(err)
}
