// Package backupworker is the backup worker: it consumes jobs.backup.* on the
// shared durable consumer "backup" and creates, verifies and prunes backup
// archives of the three stores (System DB, Target DB, Chroma).
//
// # backup.create
//
// One archive of the stores, made by the archive engine (package
// archiver: streaming write, per-store dumps, leases, reuse of an earlier
// attempt's archive; its documentation describes the archive's layout and
// locking). A lease held by another operation makes the job wait (up to
// Options.LockWait, its step saying who holds it) and then fail the
// attempt with the retryable error code "lock_held", so the runtime
// retries it with backoff; the API answers 409 up front when the lease is
// already held at submit time. After success retention (backup.prune) is
// applied, and with verify_after a backup.verify job is submitted.
//
// # backup.verify
//
// archiver.Verify: the archive streamed once, every checksum and count
// checked and every part test-restored; the outcome is stored in the
// archive's Meta (shown by the list route). A corrupt archive fails the
// job permanently, naming the first failing part. With drill set (a
// restore drill, drill.go) it verifies the newest archive when no name is
// given and records the outcome as the archive's last drill as well.
//
// # backup.prune
//
// Applies the retention policy (package retention: the newest
// BACKUP_RETENTION_COUNT, the newest of each of the last
// BACKUP_RETENTION_DAILY days, _WEEKLY weeks and _MONTHLY months, every
// archive within BACKUP_RETENTION_WITHIN of the newest) by the archives'
// manifest created_at (from Meta, never from the name); pinned archives
// and the newest verified archive are never deleted. dry_run lists what
// would be deleted and why.
//
// # Scheduled backups
//
// With BACKUP_SCHEDULE every replica runs a Scheduler that submits one
// backup.create per tick across all replicas (an idempotency key per
// tick), and with BACKUP_VERIFY_AFTER one backup.verify per successful
// scheduled backup; see schedule.go.
package backupworker

import (
	"context"
	"fmt"
	"log/slog"
	"sync"

	"github.com/insightops/insightops/shared/app"
	"github.com/insightops/insightops/shared/archiver"
	"github.com/insightops/insightops/shared/backupstore"
	"github.com/insightops/insightops/shared/config"
	"github.com/insightops/insightops/shared/jobs"
	"github.com/insightops/insightops/shared/worker"
)

// Kind is the worker kind and durable consumer name.
const Kind = "backup"

// Defaults of Options (the archive engine's).
const (
	// DefaultLockWait is how long one attempt of backup.create waits for a
	// held lease before it fails with the retryable "lock_held".
	DefaultLockWait = archiver.DefaultLockWait
	// DefaultLockRefresh is the lease refresh interval when the bus has no
	// lock TTL to derive it from.
	DefaultLockRefresh = archiver.DefaultLockRefresh
	// DefaultExportPage is the number of Chroma records read per request.
	DefaultExportPage = archiver.DefaultExportPage
)

// Options tune the worker's archive engine (archiver.Options: Store,
// LockWait, LockRefresh, ChunkSize, ExportPage); the zero value uses the
// defaults.
type Options = archiver.Options

// Worker holds what the handlers share: the dependencies and the archive
// engine (which holds the store).
type Worker struct {
	deps     app.Deps
	archiver *archiver.Archiver

	// pub submits the jobs the handlers start (verify after backup); nil
	// without a bus.
	pub *jobs.Publisher

	// afterComponent, when set (tests), runs after each component is
	// archived, while the archive is still being written.
	afterComponent func(ctx context.Context, component string) error
}

// New returns a worker for deps with opts.
func New(deps app.Deps, opts Options) *Worker {
	if deps.Log == nil {
		deps.Log = slog.Default()
	}
	w := &Worker{deps: deps}
	hook := opts.AfterComponent
	opts.AfterComponent = func(ctx context.Context, component string) error {
		switch {
		case w.afterComponent != nil:
			return w.afterComponent(ctx, component)
		case hook != nil:
			return hook(ctx, component)
		}
		return nil
	}
	w.archiver = archiver.New(deps, opts)
	if deps.Bus != nil {
		w.pub = jobs.NewPublisher(deps.Bus.JS, jobs.NewStore(deps.Bus.Jobs), deps.Config.JobMaxAttempts)
	}
	return w
}

// Handlers returns the worker's handlers by job kind.
func (w *Worker) Handlers() map[string]worker.Handler {
	return worker.Handlers(worker.Handle(w.handleCreate), worker.Handle(w.handleVerify), worker.Handle(w.handlePrune))
}

// Run consumes backup jobs until ctx ends, then drains. With a
// BACKUP_SCHEDULE (BACKUP_DRILL_SCHEDULE) it also runs this replica's
// backup (drill) Scheduler (see schedule.go, drill.go), which stops with
// ctx before Run returns.
//
// It refuses to start without an archive signing key (production without
// BACKUP_SIGNING_KEY): every archive it writes is signed, and verify
// refuses what it cannot check.
func Run(ctx context.Context, deps app.Deps) error {
	w := New(deps, Options{})
	if _, err := w.archiver.Keys(); err != nil {
		return fmt.Errorf("backup worker: %w", err)
	}
	sctx, cancel := context.WithCancel(ctx)
	var schedulers sync.WaitGroup
	defer func() { cancel(); schedulers.Wait() }()
	for _, s := range []*Scheduler{NewScheduler(deps), NewDrillScheduler(deps)} {
		if s != nil {
			schedulers.Go(func() { _ = s.Run(sctx) })
		}
	}
	registerStoreMetrics(deps)
	return worker.Run(ctx, deps.Bus, worker.OptionsFrom(deps.Config, Kind, w.Handlers(), deps.Audit, deps.Log))
}

// Store returns the backup store, opening it on first use (a failure is
// retried at the next call).
func (w *Worker) Store(ctx context.Context) (backupstore.Store, error) {
	return w.archiver.Store(ctx)
}

// AppOptions are what the backup binary's main opens (app.Main): the System
// DB, as the backup role, which requires and receives none of the API's or
// init's secrets.
var AppOptions = app.Options{Name: "insightops-backup", Role: config.RoleBackup, SystemDB: true, JobMemoryLimit: true}
