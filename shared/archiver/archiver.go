// Package archiver is the backup archive engine: it makes one archive
// (package backupfmt) of insightops' stores (System DB, Target DB,
// Chroma) in a backup store (package backupstore), and verifies one. The
// backup worker's backup.create and backup.verify jobs, the restore
// worker's pre-restore safety backup and the backup bench all run it.
//
// # Create
//
// One archive of the components asked for, default all that are enabled,
// streamed in one pass into the backup store (BACKUP_STORE=local|nats)
// through an io.Pipe: pg_dump's stdout (or a SQLite VACUUM INTO copy) →
// tar entry → gzip/zstd → store, with no temporary copy of the archive in
// the NATS store, and a temp file renamed when complete in the local one.
// Nothing partial is ever listed.
//
// With BACKUP_AGE_RECIPIENTS the compressed stream is then encrypted with
// age (package backupcrypt) to every recipient: the store holds, hashes
// and signs the ciphertext, named with backupfmt.EncryptedExt, and the
// archive's Meta and the result carry its backupfmt.Encryption record.
// Verify and restore decrypt it after the signature check
// (OpenAuthentic) with BACKUP_AGE_IDENTITY_FILE's identities.
//
// The archive is named backupfmt.ArchiveName(created, job id,
// compression), plus ".age" when encrypted. Once it holds its leases, a (redelivered) job looks for
// an archive carrying its job id: if one is listed and reads back intact
// (checksums, sizes, manifest, stored SHA-256) it is reused, if not it is
// deleted and made again; an attempt whose leases were taken over
// meanwhile by a later attempt deletes the archive it completes. A job
// never leaves two archives.
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
// Locks: unless Run.SkipLocks (the caller holds them), Create holds the
// LOCKS leases (locks.Take) of every store it reads, for the whole dump,
// so a restore (which takes the same leases) can never rewrite a store
// while it is being copied, and a backup never copies a half-restored
// store. The price is that two backups, or a backup and a Chroma training
// of the same stores, run one after the other. A lease held by someone
// else makes it wait (up to Options.LockWait, polling every 500 ms, its
// step saying who holds it, the wait audited) and then fail with the
// retryable error code "lock_held" ("system is locked by restore.run <id>
// since …"). A lease left by an earlier attempt of the same job (a crashed
// worker) is taken over.
//
// After success the store's Meta is set from the manifest and the metrics
// insightops_backup_* are updated. Create applies no retention (the
// backup.create job does, after it): a caller restoring an older archive
// must not see it pruned by its own safety backup.
//
// # Verify
//
// Streams the archive once: every part's and file's size and SHA-256, the
// manifest's counts against the contents, and a test restore of each part:
// pg_dump into a scratch PostgreSQL database (pg_restore --list when the
// DATABASE_URL role may not create one), SQLite copies through PRAGMA
// integrity_check with their rows counted, JSONL parsed and counted. The
// outcome is stored in the archive's Meta. A corrupt archive is a
// permanent error naming the first failing part.
package archiver

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
	"github.com/insightops/insightops/shared/archivesig"
	"github.com/insightops/insightops/shared/audit"
	"github.com/insightops/insightops/shared/backupstore"
	"github.com/insightops/insightops/shared/config"
	"github.com/insightops/insightops/shared/jobs"
	"github.com/insightops/insightops/shared/jobspec"
)

// Defaults of Options.
const (
	// DefaultLockWait is how long one Create waits for a held lease
	// before it fails with the retryable "lock_held".
	DefaultLockWait = 30 * time.Second
	// DefaultLockRefresh is the lease refresh interval when the bus has no
	// lock TTL to derive it from.
	DefaultLockRefresh = 10 * time.Second
	// DefaultExportPage is the number of Chroma records read per request.
	DefaultExportPage = 500
	// lockPoll is how often a waiting Create tries the leases again.
	lockPoll = 500 * time.Millisecond
	// progressEvery bounds how often byte/record progress is reported.
	progressEvery = time.Second
)

// Options tune an Archiver; the zero value uses the defaults.
type Options struct {
	// Store is where archives live; nil opens the one BACKUP_STORE names
	// (backupstore.FromConfig) on first use.
	Store backupstore.Store
	// LockWait is how long Create waits for a held lease (DefaultLockWait
	// when zero; negative: do not wait).
	LockWait time.Duration
	// LockRefresh is the lease refresh interval (default a quarter of the
	// LOCKS bucket TTL, else DefaultLockRefresh).
	LockRefresh time.Duration
	// ChunkSize is the archive part size (backupfmt.WithChunkSize); 0 is
	// backupfmt.DefaultChunkSize. Tests use small values.
	ChunkSize int
	// ExportPage is the Chroma export page size (DefaultExportPage when 0).
	ExportPage int
	// Keys sign new archives and check archives before verify reads
	// them; nil loads them from the configuration (Archiver.Keys).
	Keys *archivesig.Keyring
	// AfterComponent, when set, runs after each component is archived,
	// while the archive is still being written; its error fails the
	// Create. Tests use it to stop a run halfway.
	AfterComponent func(ctx context.Context, component string) error
}

// Run is one call's identity and reporting.
type Run struct {
	// JobID names the archive (a canonical ULID) and owns the leases.
	JobID string
	// SkipLocks leaves the LOCKS leases alone: the caller already holds
	// them (the restore job's pre-restore safety backup). Never set from
	// job params.
	SkipLocks bool
	// Progress, when set, receives 0–100 and the step now running; it may
	// return jobs.ErrCancelled to stop.
	Progress func(pct int, step string) error
	// Audit publishes the events of lease waits; a job's handler passes
	// worker.Job.Audit (so they carry the job's submitter); nil uses the
	// Deps' audit publisher.
	Audit func(context.Context, audit.Event)
	// Log is the job's logger; nil is the Deps' logger with job_id.
	Log *slog.Logger
}

// Archiver makes and verifies the archives of the stores deps reaches.
type Archiver struct {
	deps app.Deps
	opts Options

	mu    sync.Mutex
	store backupstore.Store
	keys  *archivesig.Keyring
}

// New returns an archiver of deps's stores with opts.
func New(deps app.Deps, opts Options) *Archiver {
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
	return &Archiver{deps: deps, opts: opts, store: opts.Store, keys: opts.Keys}
}

// Create is New(deps, Options{}).Create: one archive in the store
// BACKUP_STORE selects, with the default options.
func Create(ctx context.Context, deps app.Deps, args jobspec.BackupCreateArgs, r Run) (jobspec.ArchiveSummary, error) {
	return New(deps, Options{}).Create(ctx, args, r)
}

// Store returns the backup store, opening it on first use (a failure is
// retried at the next call).
func (a *Archiver) Store(ctx context.Context) (backupstore.Store, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.store != nil {
		return a.store, nil
	}
	var js jetstream.JetStream
	if a.deps.Bus != nil {
		js = a.deps.Bus.JS
	}
	s, err := backupstore.FromConfig(ctx, a.deps.Config, js)
	if err != nil {
		return nil, fmt.Errorf("open backup store: %w", err)
	}
	a.store = s
	return s, nil
}

// begin fills r's defaults.
func (a *Archiver) begin(r Run) Run {
	if r.Progress == nil {
		r.Progress = func(int, string) error { return nil }
	}
	if r.Log == nil {
		r.Log = a.deps.Log.With("job_id", r.JobID)
	}
	if r.Audit == nil && a.deps.Audit != nil {
		r.Audit = a.deps.Audit.Record
	}
	return r
}

// scratchDir is ScratchDir of deps' configuration.
func scratchDir(deps app.Deps) (string, error) { return ScratchDir(deps.Config) }

// ScratchDir is where SQLite copies, check copies and private copies of
// archives (imports, authenticated reads) are made, created mode 0700:
// under DATA_DIR (a volume sized for the databases), not a small tmpfs.
func ScratchDir(cfg config.Config) (string, error) {
	dir := filepath.Join(cfg.DataDir, "scratch")
	if cfg.DataDir == "" {
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
func classify(err error, code jobs.Code) error {
	var ce *jobs.CodedError
	switch {
	case err == nil:
		return nil
	case errors.As(err, &ce), errors.Is(err, jobs.ErrCancelled), errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return err
	}
	return jobs.Retryable(code, err)
}
