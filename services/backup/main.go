// Command backup runs one replica of the insightops backup worker against
// NATS_URL (or an embedded server when it is empty), with the System DB
// (DATABASE_URL or SQLite under DATA_DIR) it backs up.
package main

import (
	"github.com/insightops/insightops/services/backup/backupworker"
	"github.com/insightops/insightops/shared/app"
)

func main() {
	app.Main(backupworker.AppOptions, backupworker.Run)
}
