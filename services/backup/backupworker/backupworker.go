// Package backupworker is the backup worker: it consumes jobs.backup.* on the
// shared durable consumer "backup" and creates, verifies and prunes backup
// archives of the three stores (System DB, Target DB, Chroma).
//
// # backup.create
//
// One archive (package backupfmt) of the components asked for, default all
// that are enabled, streamed in one pass into the backup store (package
// backupstore, BACKUP_STORE=local|nats) through an io.Pipe: pg_dump's
// stdout (or a SQLite VACUUM INTO copy) → tar entry → gzip/zstd → store,
// with no temporary copy of the archive in the NATS store, and a temp file
// renamed when complete in the local one. Nothing partial is ever listed.
//
// The archive is named backupfmt.ArchiveName(created, job id, compression).
// Once it holds its leases, a (redelivered) job looks for an archive
// carrying its job id: if one is listed and reads back intact (checksums,
// sizes, manifest, stored SHA-256) it is reused, if not it is deleted and
// made again; an attempt whose leases were taken over meanwhile by a later
// attempt deletes the archive it completes. A job never leaves two
// archives.
//
// Layout of the components (for restore): system/system.dump (pg_dump -Fc,
// uncompressed inside the compressed archive) or system/system.db;
// target/<runtime file name>.db (target/target.db if that name is not a
// valid archive path); chroma/<collection>.jsonl for sql, ddl and
// documentation, in id order, empty for a collection that did not exist.
// The chroma component's Meta["collections"][name] is a CollectionMeta
// (exists, the collection's own metadata, records); the system and target
// components' Meta["tables"] has the row count per table.
//
// Locks: the job holds the LOCKS leases (locks.AcquireAll) of every store
// it reads, for the whole dump, so a restore (which takes the same leases)
// can never rewrite a store while it is being copied, and a backup never
// copies a half-restored store. The price is that two backups, or a backup
// and a Chroma training of the same stores, run one after the other. A
// lease held by someone else makes the job wait (up to Options.LockWait,
// its step saying who holds it) and then fail the attempt with the
// retryable error code "lock_held" ("system is locked by restore.run <id>
// since …"), so the runtime retries it with backoff; the API answers 409
// up front when the lease is already held at submit time. A lease left by
// an earlier attempt of the same job (a crashed worker) is taken over.
//
// After success the store's Meta is set from the manifest, the metrics
// insightops_backup_* are updated and retention (backup.prune) is applied.
//
// # backup.verify
//
// Streams the archive once: every part's and file's size and SHA-256, the
// manifest's counts against the contents, and a test restore of each part:
// pg_dump into a scratch PostgreSQL database (pg_restore --list when the
// DATABASE_URL role may not create one), SQLite copies through PRAGMA
// integrity_check with their rows counted, JSONL parsed and counted. The
// outcome is stored in the archive's Meta (shown by the list route). A
// corrupt archive fails the job permanently, naming the first failing part.
//
// # backup.prune
//
// Keeps the newest BACKUP_RETENTION_COUNT archives by their manifest's
// created_at (from Meta, never from the name) and never deletes the newest
// verified archive. dry_run lists what would be deleted.
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
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"runtime/debug"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/insightops/insightops/shared/app"
	"github.com/insightops/insightops/shared/backupstore"
	"github.com/insightops/insightops/shared/jobs"
	"github.com/insightops/insightops/shared/worker"
)

// Kind is the worker kind and durable consumer name.
const Kind = "backup"

// Defaults of Options.
const (
	// DefaultLockWait is how long one attempt of backup.create waits for a
	// held lease before it fails with the retryable "lock_held".
	DefaultLockWait = 30 * time.Second
	// DefaultLockRefresh is the lease refresh interval when the bus has no
	// lock TTL to derive it from.
	DefaultLockRefresh = 10 * time.Second
	// DefaultExportPage is the number of Chroma records read per request.
	DefaultExportPage = 500
	// progressEvery bounds how often byte/record progress is written to
	// the job record.
	progressEvery = time.Second
)

// Options tune the worker; the zero value uses the defaults.
type Options struct {
	// Store is where archives live; nil opens the one BACKUP_STORE names
	// (backupstore.FromConfig) on first use.
	Store backupstore.Store
	// LockWait is how long backup.create waits for a held lease per
	// attempt (DefaultLockWait when zero; negative: do not wait).
	LockWait time.Duration
	// LockRefresh is the lease refresh interval (default a quarter of the
	// LOCKS bucket TTL).
	LockRefresh time.Duration
	// ChunkSize is the archive part size (backupfmt.WithChunkSize); 0 is
	// backupfmt.DefaultChunkSize. Tests use small values.
	ChunkSize int
	// ExportPage is the Chroma export page size (DefaultExportPage when 0).
	ExportPage int
}

// Worker holds what the handlers share: the dependencies and the store.
type Worker struct {
	deps app.Deps
	opts Options

	// pub submits the jobs the handlers start (verify after backup); nil
	// without a bus.
	pub *jobs.Publisher

	mu    sync.Mutex
	store backupstore.Store

	// afterComponent, when set (tests), runs after each component is
	// archived, while the archive is still being written.
	afterComponent func(ctx context.Context, component string) error
}

// New returns a worker for deps with opts.
func New(deps app.Deps, opts Options) *Worker {
	if opts.LockWait == 0 {
		opts.LockWait = DefaultLockWait
	}
	if opts.LockRefresh <= 0 {
		opts.LockRefresh = DefaultLockRefresh
		if deps.Bus != nil && deps.Bus.Settings.LockTTL > 0 {
			opts.LockRefresh = deps.Bus.Settings.LockTTL / 4
		}
	}
	if opts.ExportPage <= 0 {
		opts.ExportPage = DefaultExportPage
	}
	if deps.Log == nil {
		deps.Log = slog.Default()
	}
	w := &Worker{deps: deps, opts: opts, store: opts.Store}
	if deps.Bus != nil {
		w.pub = jobs.NewPublisher(deps.Bus.JS, jobs.NewStore(deps.Bus.Jobs), deps.Config.JobMaxAttempts)
	}
	return w
}

// Handlers returns the handler of every job kind this worker consumes.
func Handlers(deps app.Deps) map[string]worker.Handler {
	return New(deps, Options{}).Handlers()
}

// Handlers returns the worker's handlers by job kind.
func (w *Worker) Handlers() map[string]worker.Handler {
	return map[string]worker.Handler{
		jobs.KindBackupCreate: w.handleCreate,
		jobs.KindBackupVerify: w.handleVerify,
		jobs.KindBackupPrune:  w.handlePrune,
	}
}

// Run consumes backup jobs until ctx ends, then drains. With a
// BACKUP_SCHEDULE it also runs this replica's Scheduler (see schedule.go),
// which stops with ctx before Run returns.
func Run(ctx context.Context, deps app.Deps) error {
	if s := NewScheduler(deps); s != nil {
		sctx, cancel := context.WithCancel(ctx)
		done := make(chan struct{})
		go func() { defer close(done); _ = s.Run(sctx) }()
		defer func() { cancel(); <-done }()
	}
	registerStoreMetrics(deps)
	return worker.Run(ctx, deps.Bus, worker.OptionsFrom(deps.Config, Kind, Handlers(deps), deps.Audit, deps.Log))
}

// Store returns the backup store, opening it on first use (a failure is
// retried at the next call).
func (w *Worker) Store(ctx context.Context) (backupstore.Store, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.store != nil {
		return w.store, nil
	}
	s, err := openStore(ctx, w.deps)
	if err != nil {
		return nil, err
	}
	w.store = s
	return s, nil
}

// openStore opens the store BACKUP_STORE selects.
func openStore(ctx context.Context, deps app.Deps) (backupstore.Store, error) {
	var js jetstream.JetStream
	if deps.Bus != nil {
		js = deps.Bus.JS
	}
	s, err := backupstore.FromConfig(ctx, deps.Config, js)
	if err != nil {
		return nil, fmt.Errorf("open backup store: %w", err)
	}
	return s, nil
}

// scratchDir is where SQLite copies and check copies are made: under
// DATA_DIR (a volume sized for the databases), not a small tmpfs.
func scratchDir(deps app.Deps) (string, error) {
	dir := filepath.Join(deps.Config.DataDir, "scratch")
	if deps.Config.DataDir == "" {
		dir = os.TempDir()
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", fmt.Errorf("scratch directory %s: %w", dir, err)
	}
	return dir, nil
}

// AppVersion is what manifests record as app_version: the main module's
// version and VCS revision when the binary was built with them, "devel"
// otherwise.
func AppVersion() string {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return "insightops devel"
	}
	v := bi.Main.Version
	if v == "" || v == "(devel)" {
		v = "devel"
	}
	for _, s := range bi.Settings {
		if s.Key == "vcs.revision" && len(s.Value) >= 12 {
			v += "+" + s.Value[:12]
		}
	}
	return "insightops " + v
}

// classify gives an error that is not already coded its job error code
// and retry class: cancellation and coded errors pass through.
func classify(err error, code string) error {
	var ce *jobs.CodedError
	switch {
	case err == nil:
		return nil
	case errors.As(err, &ce), errors.Is(err, jobs.ErrCancelled), errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return err
	}
	return jobs.Retryable(code, err)
}
