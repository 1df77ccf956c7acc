// Command insightops-api serves the insightops HTTP API: it authenticates
// callers, validates requests and queues jobs on NATS JetStream for the
// workers. Configuration comes from the environment (see shared/config).
package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/insightops/insightops/services/api/httpapi"
	"github.com/insightops/insightops/shared/bus"
	"github.com/insightops/insightops/shared/config"
	"github.com/insightops/insightops/shared/store"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "insightops-api:", err)
		os.Exit(1)
	}
}

func run() error {
	cfg, err := config.Load(os.Getenv)
	if err != nil {
		return err
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(cfg.LogLevel)); err != nil {
		return fmt.Errorf("LOG_LEVEL: %w", err)
	}
	log := slog.New(slog.NewJSONHandler(os.Stderr, &slog.HandlerOptions{Level: level}))

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()

	b, err := bus.Open(ctx, cfg, "insightops-api", log)
	if err != nil {
		return fmt.Errorf("open bus: %w", err)
	}
	defer b.Close()

	db, err := store.Open(ctx, cfg.DatabaseURL, cfg.SQLitePath())
	if err != nil {
		return fmt.Errorf("open system db: %w", err)
	}
	defer func() { _ = db.Close() }()
	res, err := db.Migrate(ctx)
	if err != nil {
		return fmt.Errorf("migrate system db: %w", err)
	}
	log.Info("system db ready", "db", db.Describe(), "schema_version", res.Version, "applied", len(res.Applied))

	return httpapi.Run(ctx, httpapi.Deps{Config: cfg, Bus: b, DB: db, Log: log})
}
