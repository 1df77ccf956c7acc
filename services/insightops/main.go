// Command insightops is the all-in-one binary: the API and every worker in
// one process, on an embedded NATS server and SQLite by default (`make run`),
// or on NATS_URL and DATABASE_URL when they are set.
package main

import (
	"os"

	"github.com/insightops/insightops/services/insightops/allinone"
	"github.com/insightops/insightops/shared/app"
)

func main() {
	ctx, stop := app.SignalContext()
	defer stop()
	// OpenEnv audits a configuration it refuses (config.invalid) when a
	// NATS server can be reached, and its warnings once the bus is open.
	deps, closeAll, err := app.OpenEnv(ctx, os.Getenv, os.Stderr, app.Options{Name: "insightops", SystemDB: true})
	if err != nil {
		app.Exit(err)
	}
	err = allinone.Run(ctx, deps, os.Stdout)
	closeAll()
	app.Exit(err)
}
