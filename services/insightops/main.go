// Command insightops is the all-in-one binary: the API and every worker in
// one process, on an embedded NATS server and SQLite by default (`make run`),
// or on NATS_URL and DATABASE_URL when they are set.
package main

import (
	"os"

	"github.com/insightops/insightops/services/insightops/allinone"
	"github.com/insightops/insightops/shared/app"
	"github.com/insightops/insightops/shared/config"
)

func main() {
	cfg, err := config.Load(os.Getenv)
	if err != nil {
		app.Exit(err)
	}
	log := app.NewLogger(os.Stderr, cfg.LogLevel)
	ctx, stop := app.SignalContext()
	defer stop()
	deps, closeAll, err := app.OpenWith(ctx, cfg, log, app.Options{Name: "insightops", SystemDB: true})
	if err != nil {
		app.Exit(err)
	}
	err = allinone.Run(ctx, deps, os.Stdout)
	closeAll()
	app.Exit(err)
}
