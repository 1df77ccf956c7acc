// Package archivertest builds the real parts the archive engine's tests
// (and the backup worker's) run on: an embedded NATS server with the
// streams and buckets provisioned, a migrated System DB with rows in
// several tables (SQLite in a temp dir, or a fresh PostgreSQL database),
// a generated target copy and, when asked, a Chroma URL.
package archivertest

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"

	"github.com/insightops/insightops/shared/app"
	"github.com/insightops/insightops/shared/bus"
	"github.com/insightops/insightops/shared/config"
	"github.com/insightops/insightops/shared/snapshot"
	"github.com/insightops/insightops/shared/store"
	"github.com/insightops/insightops/shared/testkit"
)

// Options choose the environment.
type Options struct {
	// Postgres puts the System DB in a fresh PostgreSQL database
	// (testkit.Postgres) instead of SQLite.
	Postgres bool
	// Chroma is the CHROMA_URL; empty disables the vector store.
	Chroma string
	// Vars are more configuration variables (they override the above).
	Vars map[string]string
	// NoTarget leaves the runtime target copy absent (a fresh install).
	NoTarget bool
}

// Env is the environment: its configuration, bus, server and System DB,
// and the app.Deps of a worker on them.
type Env struct {
	Config config.Config
	Bus    *bus.Bus
	Server *server.Server
	DB     *store.DB
	Deps   app.Deps
}

// New builds the environment of o on testkit.NewEnv; everything stops
// when the test ends.
func New(t testing.TB, o Options) *Env {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var opts []testkit.EnvOption
	if o.Postgres {
		opts = append(opts, testkit.WithDialect(testkit.PostgreSQL))
	}
	if o.Chroma != "" {
		opts = append(opts, testkit.WithVars(map[string]string{"CHROMA_URL": o.Chroma}))
	}
	te := testkit.NewEnv(t, append(opts, testkit.WithVars(o.Vars))...)
	SeedSystem(t, te.DB)
	if !o.NoTarget {
		if err := os.MkdirAll(filepath.Dir(te.Config.TargetDBPath), 0o700); err != nil {
			t.Fatal(err)
		}
		if _, err := snapshot.GenerateSQLite(ctx, te.Config.TargetDBPath, 256<<10); err != nil {
			t.Fatal(err)
		}
	}
	return &Env{Config: te.Config, Bus: te.Bus, Server: te.NATS, DB: te.DB, Deps: te.Deps()}
}

// SeedSystem writes rows into several System DB tables.
func SeedSystem(t testing.TB, db *store.DB) {
	t.Helper()
	ctx := context.Background()
	for i := range 3 {
		if _, err := db.CreateUserIfAbsent(ctx, fmt.Sprintf("user%d@example.com", i), "$2a$10$abcdefghijklmnopqrstuv", "viewer"); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := db.SeedDemoTransactions(ctx, store.DemoTransactions(300, 7)); err != nil {
		t.Fatal(err)
	}
	if err := db.SetConfig(ctx, "backup-test", "yes"); err != nil {
		t.Fatal(err)
	}
}
