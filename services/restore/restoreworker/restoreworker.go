// Package restoreworker is the restore worker: it consumes jobs.restore.run
// on the shared durable consumer "restore" and restores a backup archive
// into the three stores. A job runs these steps, in order, each reported
// through job.Step:
//
//  1. Locks: the LOCKS leases of every store it will touch (system,
//     target, chroma), taken together with locks.AcquireAll and refreshed
//     while held; they are released on every exit path (a deferred
//     release), and their TTL frees them if the worker dies. While another
//     operation (a backup, a training, another restore) holds one, the job
//     waits: it polls for up to Worker.LockWait, then fails the attempt
//     with the retryable error lock_held, and the runtime retries it with
//     backoff. (The API answers 409 up front when a lease is held at
//     submission; a lease taken after that makes the job wait.) A lease
//     left behind by an earlier attempt of the same job is taken over.
//  2. Verify: the whole archive is read once and checked (backupfmt.Verify
//     with Checkers: every SHA-256, the manifest's counts, pg_restore
//     --list, SQLite integrity_check, JSONL parsing) and against the
//     store's own SHA-256 of the archive. Any problem fails the job
//     permanently (archive_invalid) and nothing has been changed. So do
//     the preconditions checked next: the System DB dump's dialect must be the
//     running System DB's, the Target DB's runtime path must not be its
//     golden source, and Chroma must be configured and reachable when its
//     component is restored.
//  3. Safety backup: unless skip_safety_backup, the current state of the
//     stores about to be overwritten is archived first with
//     archiver.Create (the leases are already held, so it takes none). The archive carries the restore job's id, so a retried job
//     finds and reuses it instead of archiving a half-restored state.
//  4. Restore, streaming the archive once more (backupfmt.Walk with the
//     verified manifest as Expect, so a byte changed since the
//     verification fails the stream before a consumer sees its end):
//     - System DB: snapshot.RestoreSystem (pg_restore --clean --if-exists
//     --single-transaction on PostgreSQL, a verified copy applied with the
//     online backup API on SQLite), then store.DB.Migrate, since an older
//     archive has an older schema. Audit history is never rolled back:
//     snapshot keeps every audit_logs row present before the restore, and
//     the audit sink's consumer is paused meanwhile (see AuditSync) so it
//     cannot write between the rows being saved and re-inserted; then
//     audit_logs is re-synced from the AUDIT stream (every event after the
//     highest stored stream sequence) and the sink resumed.
//     - Target DB: snapshot.RestoreTarget replaces the runtime copy
//     (TARGET_DB_PATH) atomically; the golden source is never written.
//     - Chroma: each collection of the archive is recreated with its saved
//     metadata and its records upserted in batches with their saved
//     embeddings (vectors.Client.Import); a collection the archive does not
//     hold, or that did not exist when it was made, is emptied.
//  5. Check: the restored counts are compared with the manifest's (System
//     DB tables with snapshot's CheckCounts, audit_logs allowed to hold
//     more; every Target DB table; every collection) and listed in the
//     job result. A difference fails the job (count_mismatch) with the
//     result kept in the record.
//
// Once step 4 has begun, a cancellation request (and a lease lost to a long
// NATS outage) is logged and ignored: a restore stopped between two stores
// would leave them from different points in time. A failure during step 4
// (or a worker stopped past its drain timeout) leaves the stores restored
// so far restored and the others untouched, and fails the attempt with the
// retryable restore_failed; every step is idempotent, so the retry (or a
// restore of the safety backup) converges.
//
// The worker runtime audits restore.started/succeeded/failed; this package
// adds restore.applied with the archive, the components, the safety
// backup and the count check, never a secret.
package restoreworker

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/insightops/insightops/shared/app"
	"github.com/insightops/insightops/shared/archiver"
	"github.com/insightops/insightops/shared/archivesig"
	"github.com/insightops/insightops/shared/audit"
	"github.com/insightops/insightops/shared/backupfmt"
	"github.com/insightops/insightops/shared/backupstore"
	"github.com/insightops/insightops/shared/config"
	"github.com/insightops/insightops/shared/jobs"
	"github.com/insightops/insightops/shared/jobspec"
	"github.com/insightops/insightops/shared/snapshot"
	"github.com/insightops/insightops/shared/vectors"
	"github.com/insightops/insightops/shared/worker"
)

// Kind is the worker kind and durable consumer name.
const Kind = "restore"

// Defaults of a Worker's knobs.
const (
	// DefaultLockWait is how long one attempt waits for a held lease
	// before failing with lock_held (and being retried with backoff).
	DefaultLockWait = 5 * time.Minute
	// DefaultLockPoll is how often a waiting attempt tries the leases again.
	DefaultLockPoll = time.Second
	// DefaultLockRefresh is the lease refresh interval when the bus does
	// not say its lock TTL (a quarter of the TTL otherwise).
	DefaultLockRefresh = 15 * time.Second
)

// SafetyBackupFunc takes the pre-restore backup of components; progress
// receives 0–100. jobID names the archive (the restore job's id).
type SafetyBackupFunc func(ctx context.Context, components []string, note string, progress func(pct int, step string) error, jobID string) (jobspec.SafetyBackup, error)

// Options are the worker's knobs; New fills the zero ones with defaults.
type Options struct {
	// Store holds the archives; nil opens the one the configuration names.
	Store backupstore.Store
	// Vectors returns the Chroma client (nil: from CHROMA_URL and
	// EMBEDDING_PROVIDER).
	Vectors func() (*vectors.Client, error)
	// SafetyBackup takes the pre-restore backup (archiver.Create).
	SafetyBackup SafetyBackupFunc
	// LockWait, LockPoll, LockRefresh: see the package documentation.
	LockWait    time.Duration
	LockPoll    time.Duration
	LockRefresh time.Duration
	// ScratchDir holds temporary copies (SQLite files, saved audit rows);
	// default DATA_DIR/scratch (as the backup worker).
	ScratchDir string
	// BatchSize is the number of Chroma records per upsert.
	BatchSize int
	// Audit re-sync and sink pause settings.
	AuditSync AuditSync
	// Keys check an archive's signature before anything is read from it;
	// nil loads them from the configuration (BACKUP_SIGNING_KEY, or the
	// development key in DATA_DIR).
	Keys *archivesig.Keyring
}

// Worker restores archives. Build it with New; its Options are knobs
// tests and the all-in-one binary may still adjust before Handlers.
type Worker struct {
	Deps app.Deps
	Options

	mu sync.Mutex // guards Store once jobs run
}

// New returns the worker of deps with opts, its zero knobs set to the
// defaults.
func New(deps app.Deps, opts Options) *Worker {
	w := &Worker{Deps: deps, Options: opts}
	if w.LockWait == 0 {
		w.LockWait = DefaultLockWait
	}
	if w.LockPoll <= 0 {
		w.LockPoll = DefaultLockPoll
	}
	if w.LockRefresh <= 0 {
		w.LockRefresh = DefaultLockRefresh
		if deps.Bus != nil && deps.Bus.Settings.LockTTL > 0 {
			w.LockRefresh = deps.Bus.Settings.LockTTL / 4
		}
	}
	if w.ScratchDir == "" {
		w.ScratchDir = filepath.Join(deps.Config.DataDir, "scratch")
	}
	if w.BatchSize <= 0 {
		w.BatchSize = vectors.DefaultBatchSize
	}
	if w.AuditSync == (AuditSync{}) {
		w.AuditSync = DefaultAuditSync()
	}
	if w.SafetyBackup == nil {
		w.SafetyBackup = archiverSafety(deps)
	}
	return w
}

// Handlers returns w's handler of every job kind this worker consumes.
func (w *Worker) Handlers() map[string]worker.Handler {
	return worker.Handlers(worker.Handle(w.Restore))
}

// Run consumes restore jobs until ctx ends, then drains.
//
// It refuses to start without an archive signing key (production without
// BACKUP_SIGNING_KEY): it could neither check what it restores nor sign
// its safety backups.
func Run(ctx context.Context, deps app.Deps) error {
	keys, err := LoadKeys(deps)
	if err != nil {
		return err
	}
	return worker.Run(ctx, deps.Bus, worker.OptionsFrom(deps.Config, Kind, New(deps, Options{Keys: keys}).Handlers(), deps.Audit, deps.Log))
}

// LoadKeys loads the archive keyring of deps' configuration
// (archivesig.Load), logging a development key generated now.
func LoadKeys(deps app.Deps) (*archivesig.Keyring, error) {
	keys, generated, err := archivesig.Load(deps.Config.Signing())
	if err != nil {
		return nil, fmt.Errorf("restore worker: %w", err)
	}
	if generated && deps.Log != nil {
		deps.Log.Info("generated a development backup signing key (set BACKUP_SIGNING_KEY in production)", "key_id", keys.KeyID())
	}
	return keys, nil
}

// progress bands of the job: 0–5 locks, 5–30 verify, 30–55 safety backup,
// 55–95 restore, 95–99 count check.
const (
	pctLocks   = 0
	pctVerify  = 5
	pctSafety  = 30
	pctRestore = 55
	pctCheck   = 95
)

// Restore is the handler of jobs.restore.run.
func (w *Worker) Restore(ctx context.Context, job *worker.Job, p jobspec.RestoreArgs) (*jobspec.RestoreResult, error) {
	log := job.Logger()
	p = p.Normalized()
	st, err := w.store(ctx)
	if err != nil {
		return nil, jobs.Retryable(jobs.CodeStoreUnavailable, fmt.Errorf("open the backup store: %w", err))
	}
	meta, err := st.Meta(ctx, p.Archive)
	if errors.Is(err, backupstore.ErrNotFound) {
		return nil, jobs.Permanent(jobs.CodeArchiveNotFound, fmt.Errorf("restore: no archive %s in %s", p.Archive, st.Describe()))
	}
	if err != nil {
		return nil, jobs.Retryable(jobs.CodeStoreUnavailable, fmt.Errorf("restore: read the summary of %s: %w", p.Archive, err))
	}

	// 1. Locks.
	lockNames := p.Components
	if len(lockNames) == 0 {
		lockNames = meta.Components
	}
	if len(lockNames) == 0 {
		lockNames = backupfmt.Components
	}
	leases, err := w.acquire(ctx, job, lockNames)
	if err != nil {
		return nil, err
	}
	defer w.release(ctx, leases, log)

	// 2. Verify, then check every precondition: nothing is changed yet.
	if err := job.Step(ctx, pctVerify, "verifying "+p.Archive); err != nil {
		return nil, err
	}
	v, err := w.verify(ctx, st, p.Archive, func(pct int) {
		_ = job.Step(ctx, pctVerify+pct*(pctSafety-pctVerify)/100, "verifying "+p.Archive)
	})
	if err != nil {
		return nil, err
	}
	defer v.archive.Close()
	res := &jobspec.RestoreResult{Archive: p.Archive, ArchiveSHA256: v.sha256, CreatedAt: v.manifest.CreatedAt}
	plan, err := w.plan(ctx, p, v.manifest, lockNames)
	if err != nil {
		return nil, err
	}
	defer plan.close()
	res.Components, res.Skipped = plan.components, plan.skipped
	if len(plan.components) == 0 {
		return nil, jobs.Permanent(jobs.CodePreconditionFailed, fmt.Errorf("restore: nothing to restore from %s: %s", p.Archive, describeSkipped(plan.skipped)))
	}
	log.Info("archive verified", "archive", p.Archive, "sha256", v.sha256, "components", plan.components, "skipped", plan.skipped)

	// 3. Safety backup.
	if !p.SkipSafetyBackup {
		sb, err := w.safetyBackup(ctx, job, st, p, plan.components)
		if err != nil {
			return nil, err
		}
		res.SafetyBackup = sb
		if sb == nil {
			res.SafetyBackupSkipped = "none of the stores to restore holds anything yet"
		}
	} else {
		res.SafetyBackupSkipped = "skip_safety_backup was requested"
		log.Warn("safety backup skipped at the caller's request")
	}
	if err := leases.Err(); err != nil {
		return nil, jobs.Retryable(jobs.CodeLockLost, fmt.Errorf("restore: a lease was lost before anything was changed: %w", err))
	}
	if err := job.Step(ctx, pctRestore, "restoring "+strings.Join(plan.components, ", ")); err != nil {
		return nil, err
	}

	// 4. Restore. From here on cancellation is not honoured.
	applyErr := w.apply(ctx, job, v.archive, v.manifest, plan, leases, res)

	// 5. Counts.
	if applyErr == nil {
		_ = w.step(ctx, job, pctCheck, "checking counts against the manifest")
		res.CountProblems = w.checkCounts(ctx, plan, v.manifest, res)
		res.CountsOK = len(res.CountProblems) == 0
	}
	w.auditApplied(ctx, job, res, applyErr)
	if applyErr != nil {
		return res, applyErr
	}
	if !res.CountsOK {
		return res, jobs.Permanent(jobs.CodeCountMismatch, fmt.Errorf("restore: restored counts differ from the manifest: %s", strings.Join(res.CountProblems, "; ")))
	}
	log.Info("restore done", "archive", p.Archive, "components", res.Components)
	return res, nil
}

// step reports progress during the restore proper, where a cancellation
// request is logged and ignored (see the package documentation).
func (w *Worker) step(ctx context.Context, job *worker.Job, pct int, step string) error {
	err := job.Step(ctx, pct, step)
	if errors.Is(err, jobs.ErrCancelled) {
		job.Logger().Warn("cancellation requested while restoring: finishing the restore so the stores stay consistent", "step", step)
		return nil
	}
	if err != nil && ctx.Err() == nil {
		job.Logger().Warn("progress not recorded", "step", step, "err", err)
		return nil
	}
	return err
}

// store returns the backup store.
func (w *Worker) store(ctx context.Context) (backupstore.Store, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.Store != nil {
		return w.Store, nil
	}
	var js jetstream.JetStream
	if w.Deps.Bus != nil {
		js = w.Deps.Bus.JS
	}
	st, err := backupstore.FromConfig(ctx, w.Deps.Config, js)
	if err != nil {
		return nil, err
	}
	w.Store = st
	return st, nil
}

// verified is what step 2 established: the manifest, and the private
// copy of the signed bytes the restore reads (closed by Restore).
type verified struct {
	manifest backupfmt.Manifest
	sha256   string
	archive  *archiver.Authentic
}

// keys returns the archive keyring: Options.Keys, else loaded from the
// configuration on first use.
func (w *Worker) keys() (*archivesig.Keyring, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.Keys != nil {
		return w.Keys, nil
	}
	keys, err := LoadKeys(w.Deps)
	if err != nil {
		return nil, jobs.Permanent(jobs.CodeInvalidConfig, err)
	}
	w.Keys = keys
	return keys, nil
}

// verify authenticates the archive and reads it through backupfmt.Verify
// with Checkers. First, before a byte of it is read
// (archiver.OpenAuthentic): its signature must verify with this
// deployment's keys over its name and stored SHA-256 (else the permanent
// archive_unsigned or archive_signature_invalid), and its bytes are copied
// into a private file where they must hash to the signed SHA-256; every
// later read (this verification, the restore) is of that copy. An invalid
// archive is a permanent error; a read failure is retryable.
func (w *Worker) verify(ctx context.Context, st backupstore.Store, name string, progress func(pct int)) (v verified, err error) {
	keys, err := w.keys()
	if err != nil {
		return verified{}, err
	}
	if err := os.MkdirAll(w.ScratchDir, 0o700); err != nil {
		return verified{}, fmt.Errorf("restore: scratch directory: %w", err)
	}
	ids, err := archiver.Identities(w.Deps.Config)
	if err != nil {
		return verified{}, err
	}
	arc, err := archiver.OpenAuthentic(ctx, st, keys, ids, name, w.ScratchDir)
	var coded *jobs.CodedError
	switch {
	case errors.Is(err, backupstore.ErrNotFound):
		return verified{}, jobs.Permanent(jobs.CodeArchiveNotFound, fmt.Errorf("restore: archive %s disappeared from %s", name, st.Describe()))
	case errors.As(err, &coded):
		return verified{}, fmt.Errorf("restore: %w", err)
	case err != nil:
		if ctx.Err() != nil {
			return verified{}, ctx.Err()
		}
		return verified{}, jobs.Retryable(jobs.CodeStoreUnavailable, fmt.Errorf("restore: read %s: %w", name, err))
	}
	defer func() {
		if err != nil {
			arc.Close()
		}
	}()
	src := arc.Reader()
	if progress != nil && arc.Size() > 0 {
		src = &progressReader{r: src, total: arc.Size(), fn: progress}
	}
	rep, err := backupfmt.Verify(ctx, src, backupfmt.VerifyOptions{
		ReadOptions: backupfmt.ReadOptions{Name: name, MaxDecompressed: w.Deps.Config.BackupMaxDecompressed},
		Checkers:    Checkers(w.ScratchDir),
	})
	if err != nil {
		if errors.Is(err, snapshot.ErrUnexpectedObjects) {
			return verified{}, jobs.Permanent(jobs.CodeArchiveUnsafe, fmt.Errorf("restore: %s: its System DB dump was checked before anything was restored, nothing was changed: %w", name, err))
		}
		if errors.Is(err, backupfmt.ErrDecompressionLimit) {
			return verified{}, jobs.Permanent(jobs.CodeDecompressionLimit, fmt.Errorf("restore: %s, nothing was changed: %w", name, err))
		}
		if errors.Is(err, backupfmt.ErrInvalidArchive) {
			return verified{}, jobs.Permanent(jobs.CodeArchiveInvalid, fmt.Errorf("restore: %s failed verification, nothing was changed: %w", name, err))
		}
		if ctx.Err() != nil {
			return verified{}, ctx.Err()
		}
		return verified{}, jobs.Retryable(jobs.CodeStoreUnavailable, fmt.Errorf("restore: read %s: %w", name, err))
	}
	if arc.SHA256() != rep.ArchiveSHA256 {
		return verified{}, jobs.Permanent(jobs.CodeArchiveInvalid, fmt.Errorf("restore: %s: archive sha256 is %s, the store recorded %s; nothing was changed", name, rep.ArchiveSHA256, arc.SHA256()))
	}
	if err := arc.CheckManifest(rep.ManifestSHA256); err != nil {
		return verified{}, fmt.Errorf("restore: %w", err)
	}
	return verified{manifest: rep.Manifest, sha256: arc.Info.SHA256, archive: arc}, nil
}

// Checkers are the checkers of a restore's verification, by file kind, as
// the backup worker's verify uses them: pg_restore --list
// (snapshot.CheckSystem) for a PostgreSQL dump — the restore itself runs
// pg_restore --single-transaction, so a dump that fails later rolls back —
// a SQLite copy through PRAGMA integrity_check with every System DB table
// (snapshot.CheckSystem) or every table counted (snapshot.CheckSQLite),
// and JSONL parsing (backupfmt.CheckJSONL). Each returns the rows or
// records counted, compared with the manifest's. scratchDir holds the
// temporary SQLite copies.
func Checkers(scratchDir string) map[string]backupfmt.Checker {
	return map[string]backupfmt.Checker{
		backupfmt.KindPGDump: func(ctx context.Context, f backupfmt.File, r io.Reader) (int64, error) {
			c, err := snapshot.CheckSystem(ctx, snapshot.KindPgDump, r, snapshot.WithScratchDir(scratchDir))
			if err != nil {
				return backupfmt.CountUnknown, err
			}
			return c.Total(), nil
		},
		backupfmt.KindSQLite: func(ctx context.Context, f backupfmt.File, r io.Reader) (int64, error) {
			if f.Component() == backupfmt.ComponentSystem {
				c, err := snapshot.CheckSystem(ctx, snapshot.KindSQLite, r, snapshot.WithScratchDir(scratchDir))
				if err != nil {
					return backupfmt.CountUnknown, err
				}
				return c.Total(), nil
			}
			counts, err := snapshot.CheckSQLite(ctx, r, scratchDir)
			if err != nil {
				return backupfmt.CountUnknown, err
			}
			return counts.Total(), nil
		},
		backupfmt.KindJSONL: backupfmt.CheckJSONL,
	}
}

// progressReader reports the share of total read, in percent, when it changes.
type progressReader struct {
	r     io.Reader
	n     int64
	total int64
	last  int
	fn    func(pct int)
}

func (p *progressReader) Read(b []byte) (int, error) {
	n, err := p.r.Read(b)
	p.n += int64(n)
	if pct := int(min(p.n*100/max(p.total, 1), 100)); pct >= p.last+5 {
		p.last = pct
		p.fn(pct)
	}
	return n, err
}

// auditApplied publishes restore.applied: what was restored, from which
// archive, the safety backup and the count check (never a secret).
func (w *Worker) auditApplied(ctx context.Context, job *worker.Job, res *jobspec.RestoreResult, applyErr error) {
	if w.Deps.Audit == nil {
		return
	}
	detail := map[string]any{
		"archive":        res.Archive,
		"archive_sha256": res.ArchiveSHA256,
		"components":     res.Components,
		"counts_ok":      res.CountsOK,
	}
	if len(res.Skipped) > 0 {
		detail["skipped"] = res.Skipped
	}
	if res.SafetyBackup != nil {
		detail["safety_backup"] = res.SafetyBackup.Archive
	} else {
		detail["safety_backup_skipped"] = res.SafetyBackupSkipped
	}
	if len(res.CountProblems) > 0 {
		detail["count_problems"] = res.CountProblems
	}
	outcome := audit.Success
	if applyErr != nil || !res.CountsOK {
		outcome = audit.Failure
		if applyErr != nil {
			detail["error_code"] = jobs.ErrorOf(applyErr).Code
		}
	}
	actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	w.Deps.Audit.Record(actx, audit.Event{
		Actor: job.Record.SubmittedBy, Action: jobs.AuditAction(jobs.KindRestore, "applied"), Resource: Kind,
		JobID: job.ID(), Outcome: outcome, Detail: detail,
	})
}

func describeSkipped(m map[string]string) string {
	if len(m) == 0 {
		return "the archive includes no component"
	}
	var parts []string
	for _, c := range backupfmt.Components {
		if r, ok := m[c]; ok {
			parts = append(parts, c+": "+r)
		}
	}
	return strings.Join(parts, "; ")
}

// AppOptions are what the restore binary's main opens (app.Main): the System
// DB, as the restore role, which requires and receives none of the API's or
// init's secrets.
var AppOptions = app.Options{Name: "insightops-restore", Role: config.RoleRestore, SystemDB: true, JobMemoryLimit: true}
