package testkit_test

import (
	"context"
	"testing"
	"time"

	"github.com/insightops/insightops/shared/audit"
	"github.com/insightops/insightops/shared/bus"
	"github.com/insightops/insightops/shared/testkit"
)

// TestNewEnvBuildsWhatAppOpenBuilds checks, on each dialect, that NewEnv
// gives a configuration with the test's variables over a temp DATA_DIR, a
// migrated System DB of that dialect, a provisioned bus on an embedded
// server and an audit publisher on it, and that Deps hands over those very
// parts.
func TestNewEnvBuildsWhatAppOpenBuilds(t *testing.T) {
	t.Parallel()
	for _, d := range testkit.Dialects {
		t.Run(d.Name, func(t *testing.T) {
			t.Parallel()
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			e := testkit.NewEnv(t, testkit.WithDialect(d), testkit.WithVars(map[string]string{"WORKER_ID": "env-test"}))
			if e.Config.WorkerID != "env-test" || e.Config.DataDir == "" {
				t.Errorf("config: worker id %q, data dir %q", e.Config.WorkerID, e.Config.DataDir)
			}
			if (d.Name == "sqlite") != (e.Config.DatabaseURL == "") {
				t.Errorf("%s: DATABASE_URL %q", d.Name, e.Config.DatabaseURL)
			}
			if got := string(e.DB.Dialect()); got != d.Name {
				t.Errorf("System DB dialect %s, want %s", got, d.Name)
			}
			if v, pending, err := e.DB.SchemaVersion(ctx); err != nil || pending || v == 0 {
				t.Errorf("schema version %d, pending %v, %v: want migrated", v, pending, err)
			}
			if e.NATS == nil || e.Bus.Conn.ConnectedUrl() != e.NATS.ClientURL() {
				t.Errorf("bus not on the env's embedded server")
			}
			for _, stream := range []string{bus.StreamJobs, bus.StreamDLQ, bus.StreamAudit} {
				if _, err := e.Bus.JS.Stream(ctx, stream); err != nil {
					t.Errorf("stream %s: %v", stream, err)
				}
			}
			ev := audit.Event{Actor: "env@example.com", Action: "test.env", Resource: "test", Outcome: audit.Success}
			if err := e.Audit.Publish(ctx, ev); err != nil {
				t.Fatal(err)
			}
			if evs, err := audit.Read(ctx, e.Bus.JS, "audit.>"); err != nil || len(evs) != 1 || evs[0].Action != "test.env" {
				t.Errorf("audit stream holds %+v, %v; want the one event", evs, err)
			}
			deps := e.Deps()
			if deps.Bus != e.Bus || deps.DB != e.DB || deps.Audit != e.Audit || deps.Config.WorkerID != e.Config.WorkerID {
				t.Errorf("Deps do not hand over the env's parts")
			}
		})
	}
}

// TestNewEnvUsesThePartsItIsGiven checks that WithConfig, WithDB and
// WithBus replace what NewEnv would build, so two envs can share them.
func TestNewEnvUsesThePartsItIsGiven(t *testing.T) {
	t.Parallel()
	first := testkit.NewEnv(t)
	second := testkit.NewEnv(t, testkit.WithConfig(first.Config), testkit.WithDB(first.DB), testkit.WithBus(first.Bus))
	if second.Config.DataDir != first.Config.DataDir || second.DB != first.DB || second.Bus != first.Bus || second.NATS != nil {
		t.Errorf("second env: data dir %q (want %q), same DB %v, same bus %v, own NATS %v",
			second.Config.DataDir, first.Config.DataDir, second.DB == first.DB, second.Bus == first.Bus, second.NATS != nil)
	}
}
