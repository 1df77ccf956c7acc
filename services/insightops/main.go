// Command insightops is the all-in-one binary: the API and every worker in
// one process, on an embedded NATS server and SQLite by default (`make run`),
// or on NATS_URL and DATABASE_URL when they are set.
package main

import (
	"context"
	"os"

	"github.com/insightops/insightops/services/insightops/allinone"
	"github.com/insightops/insightops/shared/app"
	"github.com/insightops/insightops/shared/config"
)

func main() {
	// Run audits a configuration it refuses (config.invalid) when a NATS
	// server can be reached, and its warnings once the bus is open.
	app.Main(app.Options{Name: "insightops", Role: config.RoleAllInOne, SystemDB: true, MetricsOnOwnPort: true},
		func(ctx context.Context, deps app.Deps) error { return allinone.Run(ctx, deps, os.Stdout) })
}
