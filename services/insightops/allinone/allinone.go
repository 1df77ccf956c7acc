// Package allinone runs insightops in one process: an embedded NATS server
// (when NATS_URL is empty), the System DB (SQLite under DATA_DIR unless
// DATABASE_URL is set), the API and one replica of every worker kind —
// the very Run functions the separate binaries call.
package allinone

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"time"

	"github.com/insightops/insightops/services/api/httpapi"
	"github.com/insightops/insightops/services/backup/backupworker"
	"github.com/insightops/insightops/services/chroma/chromaworker"
	"github.com/insightops/insightops/services/init/initworker"
	"github.com/insightops/insightops/services/restore/restoreworker"
	"github.com/insightops/insightops/shared/app"
	"github.com/insightops/insightops/shared/config"
	"github.com/insightops/insightops/shared/jobs"
	"github.com/insightops/insightops/shared/jobspec"
	"github.com/insightops/insightops/shared/store"
)

// FirstStartKey is the idempotency key of the init job the all-in-one
// submits when the System DB has never been initialised.
const FirstStartKey = "first-start"

// Run starts everything and blocks until ctx ends, then stops the API,
// drains the workers and shuts the embedded server down. banner (may be
// nil) receives a human-readable "where to reach me" message.
func Run(ctx context.Context, deps app.Deps, banner io.Writer) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	cfg := deps.Config

	listening := make(chan struct{})
	services := services(deps, func(net.Addr) { close(listening) })
	var wg sync.WaitGroup
	errs := make(chan error, len(services))
	for _, s := range services {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := s.Run(ctx); err != nil && !errors.Is(err, context.Canceled) {
				errs <- fmt.Errorf("%s: %w", s.Name, err)
				cancel() // one part down takes the process down: no half-running all-in-one
			}
		}()
	}

	initJob, err := firstStart(ctx, deps)
	if err != nil {
		cancel()
		wg.Wait()
		return err
	}
	if banner != nil {
		// Only once the API listens: a part that fails first (the
		// production guard refusing a default password, a taken port)
		// ends the process without a banner saying it runs.
		select {
		case <-listening:
			printBanner(banner, cfg, deps, initJob)
		case <-ctx.Done():
		}
	}
	<-ctx.Done()
	wg.Wait()
	close(errs)
	return errors.Join(collect(errs)...)
}

// Service is one part of the all-in-one: the API (with its audit sink) or
// one replica of a worker kind, running until its context ends.
type Service struct {
	// Name is "api" or the worker kind.
	Name string
	Run  func(context.Context) error
}

// Services returns the parts Run starts, all on deps: the API with its
// audit sink, then one replica of each worker kind (init, backup, restore,
// chroma). Tests call it to run the same parts on other wiring, e.g. two
// replicas per worker kind, each on its own NATS connection.
func Services(deps app.Deps) []Service { return services(deps, nil) }

// services is Services with listening called once the API listens.
func services(deps app.Deps, listening func(net.Addr)) []Service {
	return []Service{
		{"api", func(ctx context.Context) error {
			return httpapi.RunWithAuditSink(ctx, httpapi.Deps{Config: deps.Config, Bus: deps.Bus, DB: deps.DB, Log: deps.Log.With("service", "api"), Listening: listening})
		}},
		{"init", func(ctx context.Context) error { return initworker.Run(ctx, withService(deps, "init")) }},
		{"backup", func(ctx context.Context) error { return backupworker.Run(ctx, withService(deps, "backup")) }},
		{"restore", func(ctx context.Context) error { return restoreworker.Run(ctx, withService(deps, "restore")) }},
		{"chroma", func(ctx context.Context) error { return chromaworker.Run(ctx, withService(deps, "chroma")) }},
	}
}

func withService(d app.Deps, name string) app.Deps {
	d.Log = d.Log.With("service", name)
	return d
}

// firstStart submits the init job when the System DB was never
// initialised; the idempotency key makes two racing starts submit one.
func firstStart(ctx context.Context, deps app.Deps) (string, error) {
	_, err := deps.DB.GetConfig(ctx, store.ConfigInitCompletedAt)
	if err == nil {
		return "", nil
	}
	if !errors.Is(err, store.ErrNotFound) {
		return "", fmt.Errorf("read init state: %w", err)
	}
	p := jobs.NewPublisher(deps.Bus.JS, jobs.NewStore(deps.Bus.Jobs), deps.Config.JobMaxAttempts)
	sctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	rec, _, err := p.Submit(sctx, jobs.Submission{Args: jobspec.InitArgs{}, SubmittedBy: "system", IdempotencyKey: FirstStartKey})
	if err != nil {
		return "", fmt.Errorf("submit first-start init: %w", err)
	}
	deps.Log.Info("first start: init job submitted", "job_id", rec.ID)
	return rec.ID, nil
}

func printBanner(w io.Writer, cfg config.Config, deps app.Deps, initJob string) {
	host, port, _ := net.SplitHostPort(cfg.APIAddr)
	if host == "" || host == "0.0.0.0" || host == "::" {
		host = "127.0.0.1"
	}
	base := "http://" + net.JoinHostPort(host, port)
	nats := config.RedactURLs(cfg.NATSURL)
	if cfg.Embedded() && deps.Bus.Embedded != nil {
		nats = deps.Bus.Embedded.ClientURL() + " (embedded, store " + cfg.DataDir + "/jetstream)"
	}
	password := "<INIT_ADMIN_PASSWORD>"
	if cfg.AppEnv == config.Development && cfg.InitAdminPassword == config.DefaultAdminPassword {
		password = cfg.InitAdminPassword
	}
	fmt.Fprintf(w, "\ninsightops is running\n")
	fmt.Fprintf(w, "  API        %s   (health: %s/health)\n", base, base)
	fmt.Fprintf(w, "  console    %s/ui/   (sign in with the account below)\n", base)
	fmt.Fprintf(w, "  NATS       %s\n", nats)
	fmt.Fprintf(w, "  System DB  %s\n", deps.DB.Describe())
	if initJob != "" {
		fmt.Fprintf(w, "  first start: init job %s  (%s/admin/db/tasks/%s)\n", initJob, base, initJob)
	}
	fmt.Fprintf(w, "\nlog in:\n  curl -s -X POST %s/auth/login -H 'Content-Type: application/json' \\\n    -d '{\"email\":\"%s\",\"password\":\"%s\"}'\n", base, cfg.InitAdminUsername, password)
	fmt.Fprintf(w, "then:\n  curl -s -H \"Authorization: Bearer $TOKEN\" %s/admin/db/health\n\n", base)
}

func collect(ch <-chan error) []error {
	var out []error
	for err := range ch {
		out = append(out, err)
	}
	return out
}
