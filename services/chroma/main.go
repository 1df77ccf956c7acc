// Command chroma runs one replica of the insightops chroma worker against
// NATS_URL (or an embedded server when it is empty).
package main

import (
	"github.com/insightops/insightops/services/chroma/chromaworker"
	"github.com/insightops/insightops/shared/app"
)

func main() {
	app.Main(chromaworker.AppOptions, chromaworker.Run)
}
