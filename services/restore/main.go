// Command restore runs one replica of the insightops restore worker against
// NATS_URL (or an embedded server when it is empty), with the System DB
// (DATABASE_URL, or SQLite under DATA_DIR) it restores into.
package main

import (
	"github.com/insightops/insightops/services/restore/restoreworker"
	"github.com/insightops/insightops/shared/app"
)

func main() {
	app.Main(restoreworker.AppOptions, restoreworker.Run)
}
