// Command chroma runs one replica of the insightops chroma worker against
// NATS_URL (or an embedded server when it is empty).
package main

import (
	"github.com/insightops/insightops/services/chroma/chromaworker"
	"github.com/insightops/insightops/shared/app"
)

func main() {
	ctx, stop := app.SignalContext()
	defer stop()
	deps, closeAll, err := app.Open(ctx, app.Options{Name: "insightops-chroma", SystemDB: true})
	if err != nil {
		app.Exit(err)
	}
	err = chromaworker.Run(ctx, deps)
	closeAll()
	app.Exit(err)
}
