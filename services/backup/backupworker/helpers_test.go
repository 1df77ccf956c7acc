package backupworker

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"

	"github.com/insightops/insightops/shared/app"
	"github.com/insightops/insightops/shared/archiver"
	"github.com/insightops/insightops/shared/backupstore"
	"github.com/insightops/insightops/shared/bus"
	"github.com/insightops/insightops/shared/config"
	"github.com/insightops/insightops/shared/jobs"
	"github.com/insightops/insightops/shared/jobspec"
	"github.com/insightops/insightops/shared/snapshot"
	"github.com/insightops/insightops/shared/store"
	"github.com/insightops/insightops/shared/testkit"
)

// env is a backup worker over real parts: an embedded NATS server, a
// System DB (SQLite in a temp dir, or a fresh PostgreSQL database), a
// generated target copy and, when asked, a Chroma server.
type env struct {
	t    *testing.T
	cfg  config.Config
	bus  *bus.Bus
	ns   *server.Server
	db   *store.DB
	deps app.Deps
	w    *Worker
	st   backupstore.Store
}

type envOpts struct {
	postgres bool
	chroma   string // Chroma URL
	vars     map[string]string
	noTarget bool
}

func newEnv(t *testing.T, o envOpts) *env {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	vars := map[string]string{"DATA_DIR": t.TempDir()}
	if o.postgres {
		vars["DATABASE_URL"] = testkit.Postgres(t)
	}
	if o.chroma != "" {
		vars["CHROMA_URL"] = o.chroma
	}
	for k, v := range o.vars {
		vars[k] = v
	}
	cfg, err := config.Load(func(k string) string { return vars[k] })
	if err != nil {
		t.Fatal(err)
	}
	b, ns := testkit.Bus(t)
	db, err := store.Open(ctx, cfg.DatabaseURL, cfg.SQLitePath())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })
	if _, err := db.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	seedSystem(t, db)
	if !o.noTarget {
		if err := os.MkdirAll(filepath.Dir(cfg.TargetDBPath), 0o700); err != nil {
			t.Fatal(err)
		}
		if _, err := snapshot.GenerateSQLite(ctx, cfg.TargetDBPath, 256<<10); err != nil {
			t.Fatal(err)
		}
	}
	deps := app.Deps{Config: cfg, Bus: b, DB: db, Log: testkit.Logger(t)}
	e := &env{t: t, cfg: cfg, bus: b, ns: ns, db: db, deps: deps}
	e.w = New(deps, Options{ChunkSize: 64 << 10, LockWait: -1})
	st, err := e.w.Store(ctx)
	if err != nil {
		t.Fatal(err)
	}
	e.st = st
	return e
}

// seedSystem writes rows into several System DB tables.
func seedSystem(t *testing.T, db *store.DB) {
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

// listed returns the names of the listed archives.
func (e *env) listed() []backupstore.Info {
	e.t.Helper()
	infos, err := e.st.List(context.Background())
	if err != nil {
		e.t.Fatal(err)
	}
	return infos
}

// create runs the archive engine for a new job id.
func (e *env) create(p jobspec.BackupCreateArgs) jobspec.ArchiveSummary {
	e.t.Helper()
	res, err := e.createID(jobs.NewID(), p)
	if err != nil {
		e.t.Fatal(err)
	}
	return res
}

func (e *env) createID(id string, p jobspec.BackupCreateArgs) (jobspec.ArchiveSummary, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	return e.w.archiver.Create(ctx, p, archiver.Run{JobID: id, Log: e.deps.Log})
}

// archivePath is the local store's file of an archive.
func (e *env) archivePath(name string) string {
	return filepath.Join(e.cfg.BackupDir, name)
}

// eventually polls cond until it holds or d passes.
func eventually(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", d, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
