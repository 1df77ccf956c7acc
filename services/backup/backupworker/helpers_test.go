package backupworker

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"

	"github.com/insightops/insightops/shared/app"
	"github.com/insightops/insightops/shared/archiver"
	"github.com/insightops/insightops/shared/archiver/archivertest"
	"github.com/insightops/insightops/shared/backupstore"
	"github.com/insightops/insightops/shared/bus"
	"github.com/insightops/insightops/shared/config"
	"github.com/insightops/insightops/shared/jobs"
	"github.com/insightops/insightops/shared/jobspec"
	"github.com/insightops/insightops/shared/store"
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
	// starts holds the next tick each scheduled replica's scheduler
	// logged when it started (startScheduledReplica).
	starts schedulerStarts
}

// envOpts choose the environment (archivertest.Options).
type envOpts = archivertest.Options

func newEnv(t *testing.T, o envOpts) *env {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	ae := archivertest.New(t, o)
	deps := ae.Deps
	e := &env{t: t, cfg: ae.Config, bus: ae.Bus, ns: ae.Server, db: ae.DB, deps: deps}
	e.w = New(deps, Options{ChunkSize: 64 << 10, LockWait: -1})
	st, err := e.w.Store(ctx)
	if err != nil {
		t.Fatal(err)
	}
	e.st = st
	return e
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
