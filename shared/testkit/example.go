package testkit

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/insightops/insightops/shared/bus"
)

// ExampleBus starts an embedded JetStream server with its store in a new
// temporary directory and returns a provisioned Bus on it, for Example
// functions (which have no testing.T; tests use Bus). stop closes the
// connection, shuts the server down and removes the directory.
func ExampleBus() (b *bus.Bus, stop func(), err error) {
	dir, err := os.MkdirTemp("", "insightops-example-")
	if err != nil {
		return nil, nil, fmt.Errorf("example bus: %w", err)
	}
	ns, err := bus.StartEmbedded(bus.EmbeddedOptions{Listen: "127.0.0.1:0", StoreDir: dir, ServerName: "example-" + RandomSuffix()})
	if err != nil {
		_ = os.RemoveAll(dir)
		return nil, nil, err
	}
	shutdown := func() {
		ns.Shutdown()
		ns.WaitForShutdown()
		_ = os.RemoveAll(dir)
	}
	nc, err := nats.Connect(ns.ClientURL())
	if err != nil {
		shutdown()
		return nil, nil, fmt.Errorf("example bus: %w", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	b, err = bus.Attach(ctx, nc, bus.Settings{Replicas: 1}, true, slog.New(slog.DiscardHandler))
	if err != nil {
		nc.Close()
		shutdown()
		return nil, nil, fmt.Errorf("example bus: %w", err)
	}
	return b, func() { nc.Close(); shutdown() }, nil
}
