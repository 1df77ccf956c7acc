// Command init runs one replica of the insightops init worker against
// NATS_URL (or an embedded server when it is empty).
//
// With --once it runs the init steps a single time without a bus job, for
// a deployment's init container: it prints the result JSON on stdout and
// exits 0 on success, 1 on failure. The bus is opened then only when
// AUTO_TRAIN_CHROMA needs it to publish the train job, and only on an
// external NATS_URL: a one-shot process does not start an embedded server
// (auto-train is then reported as a warning).
//
// With --reset-admin-password=EMAIL it gives that admin a generated
// password (printed once), reactivates it and forces a change at its next
// login: the way back in for a locked-out operator.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"

	"github.com/insightops/insightops/services/init/initworker"
	"github.com/insightops/insightops/shared/app"
	"github.com/insightops/insightops/shared/audit"
	"github.com/insightops/insightops/shared/bus"
	"github.com/insightops/insightops/shared/config"
	"github.com/insightops/insightops/shared/store"
)

func main() {
	once := flag.Bool("once", false, "run the init steps once without the bus job, print the result JSON and exit 0/1")
	reset := flag.String("reset-admin-password", "", "give this admin a generated password (printed once), reactivate it and force a change at the next login; audited")
	flag.Parse()
	if !*once && *reset == "" {
		app.Main(initworker.AppOptions, initworker.Run)
	}
	ctx, stop := app.SignalContext()
	err := runOnce(ctx, *reset)
	stop()
	app.Exit(err)
}

// runOnce opens the System DB (and the bus when auto-train needs it), runs
// the steps and prints the result, partial results of a failed run included.
// With resetEmail it resets that admin's password instead (audited on an
// external NATS_URL's AUDIT stream, logged either way).
func runOnce(ctx context.Context, resetEmail string) error {
	cfg, err := config.LoadRole(os.Getenv, config.RoleInit)
	if err != nil {
		return err
	}
	log := app.NewLoggerFormat(os.Stderr, cfg.LogLevel, cfg.LogFormat)
	db, err := store.Open(ctx, cfg.DatabaseURL, cfg.SQLitePath())
	if err != nil {
		return fmt.Errorf("open system db: %w", err)
	}
	defer db.Close()
	deps := app.Deps{Config: cfg, DB: db, Log: log}
	// The bus is opened for the train job, and to provision it (the init
	// Job is the provisioner of the cluster deploys: NATS_PROVISION=true).
	if (cfg.AutoTrainChroma || cfg.NATSProvision || resetEmail != "") && !cfg.Embedded() {
		b, err := bus.Open(ctx, cfg, "insightops-init-once", log)
		if err != nil {
			return fmt.Errorf("open bus (AUTO_TRAIN_CHROMA publishes a train job): %w", err)
		}
		defer b.Close()
		deps.Bus, deps.Audit = b, audit.NewPublisher(b.JS, log)
	}
	if resetEmail != "" {
		return initworker.ResetAdminPassword(ctx, deps, resetEmail, os.Stdout)
	}
	res, runErr := initworker.RunOnce(ctx, deps)
	enc := json.NewEncoder(os.Stdout)
	enc.SetIndent("", "  ")
	if err := enc.Encode(res); err != nil && runErr == nil {
		runErr = fmt.Errorf("print result: %w", err)
	}
	return runErr
}
