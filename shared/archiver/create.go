package archiver

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"log/slog"
	"os"
	"path"
	"path/filepath"
	"strings"
	"sync/atomic"
	"time"

	"github.com/insightops/insightops/shared/backupcrypt"
	"github.com/insightops/insightops/shared/backupfmt"
	"github.com/insightops/insightops/shared/backupstore"
	"github.com/insightops/insightops/shared/config"
	"github.com/insightops/insightops/shared/jobs"
	"github.com/insightops/insightops/shared/jobspec"
	"github.com/insightops/insightops/shared/locks"
	"github.com/insightops/insightops/shared/metrics"
	"github.com/insightops/insightops/shared/snapshot"
	"github.com/insightops/insightops/shared/store"
	"github.com/insightops/insightops/shared/tracing"
	"github.com/insightops/insightops/shared/vectors"
)

// pipeBuffer is the size of the writes into the store's pipe.
const pipeBuffer = 1 << 20

// plan is what a backup will do per component.
type plan struct {
	include []string          // in backupfmt.Components order
	skipped map[string]string // component → reason
}

// plan checks p against the configuration.
func (a *Archiver) plan(p jobspec.BackupCreateArgs) (plan, error) {
	if err := p.Validate(); err != nil {
		return plan{}, err
	}
	explicit := map[string]bool{}
	for _, c := range p.Components {
		explicit[c] = true
	}
	pl := plan{skipped: map[string]string{}}
	for _, c := range backupfmt.Components {
		if len(explicit) > 0 && !explicit[c] {
			continue // not requested: Close marks it so
		}
		reason := a.unavailable(c)
		switch {
		case reason == "":
			pl.include = append(pl.include, c)
		case explicit[c]:
			return plan{}, jobs.Invalid("component %s was requested but cannot be backed up: %s", c, reason)
		default:
			pl.skipped[c] = reason
		}
	}
	if len(pl.include) == 0 {
		return plan{}, jobs.Invalid("nothing to back up: %v", pl.skipped)
	}
	return pl, nil
}

// Disabled says why the configuration cfg leaves component c out of
// backups ("" when it does not): an external TARGET_DATABASE_URL, no
// CHROMA_URL. The API refuses such a component up front with it; the
// engine also checks what only a worker can see (unavailable).
func Disabled(cfg config.Config, c string) string {
	switch c {
	case backupfmt.ComponentTarget:
		if cfg.TargetDatabaseURL != "" {
			return "TARGET_DATABASE_URL is set: the external target database is not backed up by insightops"
		}
	case backupfmt.ComponentChroma:
		if cfg.ChromaURL == "" {
			return "CHROMA_URL is not set: the vector store is disabled"
		}
	}
	return ""
}

// unavailable says why component c cannot be backed up, "" if it can.
func (a *Archiver) unavailable(c string) string {
	if reason := Disabled(a.deps.Config, c); reason != "" {
		return reason
	}
	cfg := a.deps.Config
	switch c {
	case backupfmt.ComponentSystem:
		if a.deps.DB == nil {
			return "this worker has no System DB connection"
		}
	case backupfmt.ComponentTarget:
		st, err := os.Stat(cfg.TargetDBPath)
		switch {
		case errors.Is(err, os.ErrNotExist):
			return fmt.Sprintf("no runtime target copy at %s (init has not installed the golden copy)", cfg.TargetDBPath)
		case err != nil:
			return fmt.Sprintf("runtime target copy %s: %v", cfg.TargetDBPath, err)
		case !st.Mode().IsRegular():
			return fmt.Sprintf("runtime target copy %s is not a regular file", cfg.TargetDBPath)
		}
	}
	return ""
}

// lockNames maps components to the LOCKS leases they need.
func lockNames(components []string) []string {
	var out []string
	for _, c := range components {
		switch c {
		case backupfmt.ComponentSystem:
			out = append(out, locks.System)
		case backupfmt.ComponentTarget:
			out = append(out, locks.Target)
		case backupfmt.ComponentChroma:
			out = append(out, locks.Chroma)
		}
	}
	return out
}

// Create backs up the components args asks for into one archive in the
// store, named after its creation time and r.JobID, and returns it (see
// the package documentation: leases, reuse of an earlier attempt's
// archive, Meta, metrics; no retention).
//
// Errors are coded for the job runtime: jobs.Invalid for bad args, a bad
// job id or a requested component that is not enabled (permanent),
// "lock_held" when a lease stays held by another operation (retryable),
// "backup_store_full" (permanent), jobs.ErrCancelled when r.Progress
// returned it.
func (a *Archiver) Create(ctx context.Context, args jobspec.BackupCreateArgs, r Run) (jobspec.ArchiveSummary, error) {
	r = a.begin(r)
	jobID, progress, log := r.JobID, r.Progress, r.Log
	if !backupfmt.ValidJobID(jobID) {
		return jobspec.ArchiveSummary{}, jobs.Invalid("job id %q is not a canonical ULID", jobID)
	}
	pl, err := a.plan(args)
	if err != nil {
		return jobspec.ArchiveSummary{}, err
	}
	comp := backupfmt.Gzip
	if s := a.deps.Config.BackupCompression; s != "" {
		if comp, err = backupfmt.ParseCompression(s); err != nil {
			return jobspec.ArchiveSummary{}, jobs.Permanent(jobs.CodeInvalidConfig, fmt.Errorf("BACKUP_COMPRESSION: %w", err))
		}
	}
	st, err := a.Store(ctx)
	if err != nil {
		return jobspec.ArchiveSummary{}, jobs.Retryable(jobs.CodeStoreUnavailable, err)
	}

	// Leases first, then the look for an earlier attempt's archive: an
	// earlier attempt still running (its worker cut off, not dead) either
	// completed its archive before the lease was taken over (it is found
	// and reused) or finds its lease gone when it completes and deletes
	// its archive (checkLeases), so a job never leaves two archives.
	var held *heldLeases
	if !r.SkipLocks {
		set, h, err := a.acquire(ctx, lockNames(pl.include), r)
		if err != nil {
			return jobspec.ArchiveSummary{}, err
		}
		defer func(ctx context.Context) {
			if err := set.ReleaseDetached(ctx); err != nil {
				log.Warn("release leases", "err", err)
			}
		}(ctx)
		lctx, stop := leaseContext(ctx, set)
		defer stop()
		ctx = lctx
		held = &heldLeases{names: lockNames(pl.include), holder: h}
	}
	if err := progress(3, "looking for an archive of an earlier attempt"); err != nil {
		return jobspec.ArchiveSummary{}, err
	}
	recips, err := Recipients(a.deps.Config)
	if err != nil {
		return jobspec.ArchiveSummary{}, err
	}
	if res, ok, err := a.reuse(ctx, st, jobID, recips != nil, log); err != nil {
		return jobspec.ArchiveSummary{}, classify(err, jobs.CodeStoreUnavailable)
	} else if ok {
		return res, nil
	}

	started := time.Now()
	res, err := a.write(ctx, st, pl, args, comp, progress, jobID, log)
	if err == nil && held != nil {
		if err = a.checkLeases(ctx, *held); err != nil {
			log.Warn("lease lost while the archive was written; deleting it", "archive", res.Archive, "err", err)
			if derr := st.Delete(context.WithoutCancel(ctx), res.Archive); derr != nil {
				err = errors.Join(err, fmt.Errorf("delete %s: %w", res.Archive, derr))
			}
		}
	}
	if err != nil {
		if cause := context.Cause(ctx); cause != nil && !errors.Is(err, cause) {
			err = fmt.Errorf("%w (%w)", cause, err)
		}
		if errors.Is(err, backupstore.ErrNoSpace) {
			// Permanent: the volume does not free itself within the retry
			// backoff, and every retry would rewrite the whole dump and fill
			// it to the brim again. Pruning or a bigger volume is needed.
			return jobspec.ArchiveSummary{}, jobs.Permanent(jobs.CodeBackupStoreFull, fmt.Errorf("the backup store (%s) is full; prune archives or give it more room (BACKUP_DIR's volume; for the NATS object store the bucket's max bytes or the server's or account's JetStream storage limit), then back up again: %w", st.Describe(), err))
		}
		code := jobs.CodeBackupFailed
		if errors.Is(err, vectors.ErrUnavailable) {
			code = jobs.CodeChromaUnavailable
		}
		return jobspec.ArchiveSummary{}, classify(err, code)
	}
	metrics.BackupBytes.Set(float64(res.Bytes))
	metrics.BackupDuration.Observe(time.Since(started).Seconds())
	metrics.LastBackupSuccess.SetToCurrentTime()
	log.Info("backup archive written", "archive", res.Archive, "bytes", res.Bytes, "sha256", res.SHA256,
		"components", strings.Join(res.Manifest.Included(), ","), "duration_ms", time.Since(started).Milliseconds())
	return res, nil
}

// leaseContext is ctx cancelled (with the loss as its cause) when one of
// the set's leases is lost; call stop when done with it.
func leaseContext(ctx context.Context, set locks.Set) (context.Context, func()) {
	lctx, cancel := context.WithCancelCause(ctx)
	done := lctx.Done()
	for _, l := range set {
		go func() {
			select {
			case <-l.Lost():
				cancel(jobs.Retryable(jobs.CodeLockLost, fmt.Errorf("a lease was lost mid-backup; stopping: %w", l.Err())))
			case <-done:
			}
		}()
	}
	return lctx, func() { cancel(nil) }
}

// heldLeases are the leases this attempt took and the holder it wrote.
type heldLeases struct {
	names  []string
	holder locks.Holder
}

// checkLeases reports whether every lease is still this attempt's (same
// owner and acquisition time): a later attempt of the same job may have
// taken them over, and the lease's own refresh notices that only later.
func (a *Archiver) checkLeases(ctx context.Context, h heldLeases) error {
	hs, err := locks.Holders(ctx, a.deps.Bus.Locks, h.names...)
	if err != nil {
		return jobs.Retryable(jobs.CodeLockError, fmt.Errorf("check leases: %w", err))
	}
	for _, n := range h.names {
		cur, ok := hs[n]
		if !ok || cur.Owner != h.holder.Owner || !cur.Since.Equal(h.holder.Since) {
			return jobs.Retryable(jobs.CodeLockLost, fmt.Errorf("the %s lease is no longer this attempt's (now %+v)", n, cur))
		}
	}
	return nil
}

// acquire takes the leases with locks.Take under the backup's policy:
// wait up to LockWait while another operation holds one, polling every
// lockPoll and reporting each new holder as step 2, auditing the wait,
// taking over a lease of an earlier attempt of the same job; then fail
// with the retryable "lock_held". It returns the holder it wrote.
func (a *Archiver) acquire(ctx context.Context, names []string, r Run) (locks.Set, locks.Holder, error) {
	h := locks.Holder{Owner: r.JobID, Operation: jobs.KindBackupCreate, Since: time.Now().UTC()}
	if a.deps.Bus == nil || a.deps.Bus.Locks == nil {
		return nil, h, errors.New("backup: no LOCKS bucket to take leases in")
	}
	var progressErr error
	set, err := locks.Take(ctx, a.deps.Bus.Locks, names, h, locks.TakeOptions{
		Refresh: a.opts.LockRefresh, Wait: max(a.opts.LockWait, 0), Poll: lockPoll, TakeOverOwn: true,
		Progress: func(_ context.Context, held *locks.HeldError) error {
			progressErr = r.Progress(2, "waiting: "+held.Error())
			return progressErr
		},
		Audit: r.Audit, Log: r.Log,
	})
	var held *locks.HeldError
	switch {
	case err == nil:
		return set, h, nil
	case errors.As(err, &held):
		return nil, h, jobs.Retryable(jobs.CodeLockHeld, fmt.Errorf("backup cannot start: %w", held))
	case progressErr != nil && errors.Is(err, progressErr), ctx.Err() != nil:
		return nil, h, err
	}
	return nil, h, jobs.Retryable(jobs.CodeLockError, fmt.Errorf("take leases %v: %w", names, err))
}

// putResult is the outcome of the store's Put.
type putResult struct {
	info backupstore.Info
	err  error
}

// write streams the archive into the store.
func (a *Archiver) write(ctx context.Context, st backupstore.Store, pl plan, p jobspec.BackupCreateArgs, comp backupfmt.Compression, progress func(int, string) error, jobID string, log *slog.Logger) (jobspec.ArchiveSummary, error) {
	actx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	rep := &reporter{fn: progress, cancel: cancel}

	created := time.Now().UTC()
	keys, err := a.Keys()
	if err != nil {
		return jobspec.ArchiveSummary{}, err
	}
	recips, err := Recipients(a.deps.Config)
	if err != nil {
		return jobspec.ArchiveSummary{}, err
	}
	name := backupfmt.Name{Created: created, JobID: jobID, Compression: comp, Encrypted: recips != nil}.String()
	// closed is what was written, set before the pipe is closed: the
	// store's read of the end of the bytes happens after it, and seals the
	// archive (name, SHA-256 of the stored bytes, manifest digest) in the
	// store's commit.
	var closed atomic.Pointer[written]
	seal := func(sum string) (string, error) {
		w := closed.Load()
		if w == nil {
			return "", errors.New("the archive ended before its manifest was written")
		}
		return Seal(keys, name, w.sha256, w.res.ManifestSHA256)(sum)
	}
	pr, pw := io.Pipe()
	putc := make(chan putResult, 1)
	go func() {
		pctx, pspan := tracing.Start(actx, "backup store put", tracing.String("archive", name), tracing.String("store", st.Describe()))
		info, err := st.Put(pctx, name, pr, backupstore.WithSeal(seal))
		tracing.End(pspan, err)
		if err != nil {
			_ = pr.CloseWithError(err)
		} else {
			_ = pr.Close()
		}
		putc <- putResult{info, err}
	}()
	var wopts []backupfmt.Option
	if a.opts.ChunkSize > 0 {
		wopts = append(wopts, backupfmt.WithChunkSize(a.opts.ChunkSize))
	}
	wopts = append(wopts, backupfmt.WithModTime(created))
	if lv := a.deps.Config.BackupCompressionLevel; lv > 0 {
		wopts = append(wopts, backupfmt.WithLevel(lv))
	}
	// The NATS object store publishes one chunk per Read of its source,
	// and a pipe Read returns at most one Write: batch the writer's many
	// small writes (tar headers, compression members) into large ones.
	bw := bufio.NewWriterSize(pw, pipeBuffer)
	_, cspan := tracing.Start(actx, "backup compress", tracing.String("compression", string(comp)), tracing.String("encryption", encryptionName(recips))) // the archive stream, tar, compression and encryption
	defer cspan.End()
	// Compress, then encrypt: the archive writer's compressed stream goes
	// through age into the store, the ciphertext hashed on its way.
	var (
		sink   io.Writer = bw
		enc    io.WriteCloser
		cipher *digestWriter
	)
	if recips != nil {
		cipher = newDigestWriter(bw)
		if enc, err = recips.Encrypt(cipher); err != nil {
			_ = pw.CloseWithError(err)
			<-putc
			return jobspec.ArchiveSummary{}, jobs.Permanent(jobs.CodeInvalidConfig, err)
		}
		sink = enc
	}
	aw, err := backupfmt.NewWriter(sink, comp, wopts...)
	if err != nil {
		_ = pw.CloseWithError(err)
		<-putc
		return jobspec.ArchiveSummary{}, jobs.Permanent(jobs.CodeInvalidConfig, err)
	}
	fail := func(err error) (jobspec.ArchiveSummary, error) {
		aw.Abort()
		_ = pw.CloseWithError(err)
		cancel(err)
		if pres := <-putc; pres.err == nil {
			// Put had finished before the failure: the archive is
			// complete but this attempt failed after it; remove it.
			_ = st.Delete(context.WithoutCancel(ctx), name)
		}
		if rep.err != nil {
			return jobspec.ArchiveSummary{}, rep.err // cancelled, or progress could not be written
		}
		return jobspec.ArchiveSummary{}, err
	}

	comps := map[string]backupfmt.Component{}
	for c, reason := range pl.skipped {
		comps[c] = backupfmt.Component{Status: backupfmt.StatusSkipped, Reason: reason}
	}
	span := 90 / len(pl.include)
	for i, c := range pl.include {
		base := 5 + i*span
		var (
			cm  backupfmt.Component
			err error
		)
		switch c {
		case backupfmt.ComponentSystem:
			cm, err = a.addSystem(actx, aw, rep, base, span)
		case backupfmt.ComponentTarget:
			cm, err = a.addTarget(actx, aw, rep, base, span)
		case backupfmt.ComponentChroma:
			cm, err = a.addChroma(actx, aw, rep, base, span)
		}
		if err == nil {
			err = rep.err
		}
		if err == nil && a.opts.AfterComponent != nil {
			err = a.opts.AfterComponent(actx, c)
		}
		if err != nil {
			return fail(fmt.Errorf("back up %s: %w", c, err))
		}
		cm.Status = backupfmt.StatusIncluded
		comps[c] = cm
		log.Info("component archived", "component", c, "archive_bytes", aw.Written())
	}
	if err := rep.step(96, "writing the manifest"); err != nil {
		return fail(err)
	}
	res, err := aw.Close(backupfmt.Manifest{
		CreatedAt: created, JobID: jobID, AppVersion: AppVersion(), Note: p.Note, Components: comps,
	})
	if err != nil {
		return fail(fmt.Errorf("finish the archive: %w", err))
	}
	wr := written{res: res, sha256: res.SHA256, size: res.Size}
	if enc != nil {
		if err := enc.Close(); err != nil {
			return fail(fmt.Errorf("finish the archive's encryption: %w", err))
		}
		wr.sha256, wr.size = cipher.sum(), cipher.n
		wr.enc = &backupfmt.Encryption{
			Method: backupcrypt.Method, Recipients: recips.Fingerprints(),
			PlaintextSHA256: res.SHA256, PlaintextBytes: res.Size,
			CiphertextSHA256: wr.sha256, CiphertextBytes: wr.size,
		}
	}
	closed.Store(&wr)
	if err := bw.Flush(); err != nil {
		return fail(fmt.Errorf("finish the archive: %w", err))
	}
	if err := pw.Close(); err != nil {
		return fail(fmt.Errorf("finish the archive: %w", err))
	}
	pres := <-putc
	if pres.err != nil {
		return jobspec.ArchiveSummary{}, fmt.Errorf("store the archive %s: %w", name, pres.err)
	}
	if pres.info.SHA256 != "" && pres.info.SHA256 != wr.sha256 {
		_ = st.Delete(context.WithoutCancel(ctx), name)
		return jobspec.ArchiveSummary{}, fmt.Errorf("store the archive %s: the store computed SHA-256 %s, the writer %s; deleted", name, pres.info.SHA256, wr.sha256)
	}
	if err := rep.step(98, "recording the archive's summary"); err != nil {
		_ = st.Delete(context.WithoutCancel(ctx), name)
		return jobspec.ArchiveSummary{}, err
	}
	meta := backupstore.Summary(res.Manifest)
	meta.Encryption = wr.enc
	if err := st.SetMeta(ctx, name, meta); err != nil {
		if errors.Is(err, backupstore.ErrNoSpace) {
			// The job fails permanently (see Create): it must not
			// leave its archive behind.
			_ = st.Delete(context.WithoutCancel(ctx), name)
			return jobspec.ArchiveSummary{}, fmt.Errorf("record the summary of %s: %w", name, err)
		}
		// A retry finds the archive, verifies it and sets its Meta then.
		return jobspec.ArchiveSummary{}, jobs.Retryable(jobs.CodeStoreUnavailable, fmt.Errorf("record the summary of %s: %w", name, err))
	}
	return jobspec.ArchiveSummary{
		Archive: name, SHA256: wr.sha256, Bytes: wr.size, Encryption: wr.enc,
		Components: Summarize(res.Manifest), Manifest: res.Manifest,
	}, nil
}

// written is what write put into the store: the archive writer's result,
// the SHA-256 and size of the stored bytes (the ciphertext when
// encrypted, else the writer's own), and the encryption record.
type written struct {
	res    backupfmt.Result
	sha256 string
	size   int64
	enc    *backupfmt.Encryption
}

// digestWriter hashes and counts what it passes on to w.
type digestWriter struct {
	w io.Writer
	h hash.Hash
	n int64
}

func newDigestWriter(w io.Writer) *digestWriter { return &digestWriter{w: w, h: sha256.New()} }

func (d *digestWriter) Write(p []byte) (int, error) {
	n, err := d.w.Write(p)
	d.h.Write(p[:n])
	d.n += int64(n)
	return n, err
}

// sum is the hex SHA-256 of the bytes written.
func (d *digestWriter) sum() string { return hex.EncodeToString(d.h.Sum(nil)) }

// addDump runs dump in a goroutine writing into a pipe that the archive
// writer reads as one stream file at path. An error of the dump is
// returned rather than the writer's (which only says the read failed).
func addDump(ctx context.Context, aw *backupfmt.Writer, component, p string, dump func(ctx context.Context, dst io.Writer) error) (backupfmt.File, error) {
	dctx, cancel := context.WithCancel(ctx)
	defer cancel()
	pr, pw := io.Pipe()
	errc := make(chan error, 1)
	go func() {
		sctx, span := tracing.Start(dctx, "backup dump", tracing.String("component", component), tracing.String("path", p))
		err := dump(sctx, pw)
		tracing.End(span, err)
		_ = pw.CloseWithError(err) // nil: EOF
		errc <- err
	}()
	f, addErr := aw.AddStream(ctx, component, p, backupfmt.KindOf(p), pr)
	if addErr != nil {
		_ = pr.CloseWithError(addErr)
		cancel()
	} else {
		// The dump wrote EOF; drain nothing more.
		_ = pr.Close()
	}
	if dumpErr := <-errc; dumpErr != nil {
		return backupfmt.File{}, dumpErr
	}
	if addErr != nil {
		return backupfmt.File{}, addErr
	}
	return f, nil
}

// addSystem archives the System DB: pg_dump -Fc streamed from its stdout
// (no compression of its own: the archive compresses), or a SQLite copy.
func (a *Archiver) addSystem(ctx context.Context, aw *backupfmt.Writer, rep *reporter, base, span int) (backupfmt.Component, error) {
	db := a.deps.DB
	p := "system/system.db"
	if db.Dialect() == store.Postgres {
		p = "system/system.dump"
	}
	scratch, err := scratchDir(a.deps)
	if err != nil {
		return backupfmt.Component{}, err
	}
	if err := rep.step(base, "dumping the system database"); err != nil {
		return backupfmt.Component{}, err
	}
	var sd snapshot.SystemDump
	f, err := addDump(ctx, aw, backupfmt.ComponentSystem, p, func(ctx context.Context, dst io.Writer) error {
		var err error
		sd, err = snapshot.DumpSystem(ctx, db, dst, func(n int64) {
			rep.tick(base, "dumping the system database: "+mib(n))
		}, snapshot.WithPgDumpCompression("0"), snapshot.WithScratchDir(scratch))
		if err != nil {
			if _, ok := errors.AsType[*snapshot.VersionError](err); ok {
				return jobs.Permanent(jobs.CodePgDumpTooOld, err)
			}
		}
		return err
	})
	if err != nil {
		return backupfmt.Component{}, err
	}
	if sd.SHA256 != f.SHA256 || sd.Bytes != f.Size {
		return backupfmt.Component{}, fmt.Errorf("the dump wrote %d bytes (sha256 %s), the archive received %d (sha256 %s)", sd.Bytes, sd.SHA256, f.Size, f.SHA256)
	}
	if err := aw.SetCount(p, sd.Rows.Total()); err != nil {
		return backupfmt.Component{}, err
	}
	rep.tick(base+span, "system database archived: "+mib(f.Size))
	return backupfmt.Component{
		Source: sd.Source,
		Meta: map[string]any{
			"kind": sd.Kind, "format": sd.Format, "tables": sd.Rows,
			"server_version": sd.ServerVersion, "tool_version": sd.ToolVersion,
		},
	}, nil
}

// targetEntry is the archive path of the target copy: target/<base name>
// when that is a valid archive path of a SQLite file, else target/target.db.
func targetEntry(runtimePath string) string {
	p := path.Join(backupfmt.ComponentTarget, filepath.Base(runtimePath))
	if backupfmt.ValidatePath(p) != nil || backupfmt.KindOf(p) != backupfmt.KindSQLite {
		return "target/target.db"
	}
	return p
}

// addTarget archives a consistent copy of the runtime target copy.
func (a *Archiver) addTarget(ctx context.Context, aw *backupfmt.Writer, rep *reporter, base, span int) (backupfmt.Component, error) {
	src := a.deps.Config.TargetDBPath
	p := targetEntry(src)
	var total int64
	if st, err := os.Stat(src); err == nil {
		total = st.Size()
	}
	if err := rep.step(base, "copying the target database"); err != nil {
		return backupfmt.Component{}, err
	}
	var td snapshot.TargetDump
	f, err := addDump(ctx, aw, backupfmt.ComponentTarget, p, func(ctx context.Context, dst io.Writer) error {
		var err error
		td, err = snapshot.DumpTarget(ctx, src, dst, func(n int64) {
			rep.tick(base+fraction(span, n, total), "copying the target database: "+mib(n))
		}, snapshot.WithoutDigest()) // the archive writer hashes the copy
		return err
	})
	if err != nil {
		return backupfmt.Component{}, err
	}
	if td.Bytes != f.Size {
		return backupfmt.Component{}, fmt.Errorf("the copy wrote %d bytes, the archive received %d", td.Bytes, f.Size)
	}
	if err := aw.SetCount(p, td.Tables.Total()); err != nil {
		return backupfmt.Component{}, err
	}
	return backupfmt.Component{
		Source: "sqlite " + td.Source,
		Meta: map[string]any{
			"kind": td.Kind, "format": td.Format, "tables": td.Tables,
			"sqlite_version": td.SQLiteVersion, "runtime_path": td.Source,
		},
	}, nil
}

// CollectionMeta is what the chroma component's Meta["collections"][name]
// records of each collection, beside chroma/<name>.jsonl: whether it
// existed, its own metadata (embedding provider, model, dimension, space)
// to recreate it with, and the records exported.
type CollectionMeta struct {
	Exists   bool           `json:"exists"`
	Metadata map[string]any `json:"metadata,omitempty"`
	Records  int64          `json:"records"`
}

// addChroma exports the three collections, each as chroma/<name>.jsonl in
// id order (an empty file when the collection does not exist), with its
// metadata in the component's Meta. Any failed page fails the backup.
func (a *Archiver) addChroma(ctx context.Context, aw *backupfmt.Writer, rep *reporter, base, span int) (backupfmt.Component, error) {
	// Exporting never embeds: the local embedder only satisfies the client.
	client, err := vectors.New(a.deps.Config.ChromaURL, vectors.NewLocal(0), vectors.Options{})
	if err != nil {
		return backupfmt.Component{}, jobs.Permanent(jobs.CodeInvalidConfig, err)
	}
	defer client.Close()
	if err := rep.step(base, "exporting the vector store"); err != nil {
		return backupfmt.Component{}, err
	}
	version, err := client.Version(ctx)
	if err != nil {
		return backupfmt.Component{}, err
	}
	infos := map[string]vectors.CollectionInfo{}
	var total int64
	for _, name := range vectors.Collections {
		info, err := client.Info(ctx, name)
		if errors.Is(err, vectors.ErrNotFound) {
			continue
		}
		if err != nil {
			return backupfmt.Component{}, err
		}
		infos[name] = info
		total += int64(info.Count)
	}
	collections := map[string]CollectionMeta{}
	var done int64
	for _, name := range vectors.Collections {
		info, exists := infos[name]
		p := "chroma/" + name + ".jsonl"
		var n int64
		f, err := addDump(ctx, aw, backupfmt.ComponentChroma, p, func(ctx context.Context, dst io.Writer) error {
			if !exists {
				return nil
			}
			bw := bufio.NewWriterSize(dst, 256<<10)
			err := client.Export(ctx, name, a.opts.ExportPage, func(r vectors.Record) error {
				if err := vectors.WriteJSONL(bw, r); err != nil {
					return err
				}
				n++
				rep.tick(base+fraction(span, done+n, total), fmt.Sprintf("exporting the vector store: %s, %d records", name, n))
				return nil
			})
			if err != nil {
				return fmt.Errorf("export collection %s: %w", name, err)
			}
			return bw.Flush()
		})
		if err != nil {
			return backupfmt.Component{}, err
		}
		if f.Count != n {
			return backupfmt.Component{}, fmt.Errorf("collection %s: exported %d records, the archive counted %d lines", name, n, f.Count)
		}
		done += n
		collections[name] = CollectionMeta{Exists: exists, Metadata: info.Metadata, Records: n}
	}
	return backupfmt.Component{
		Source: "chroma " + version + " at " + client.URL(),
		Meta:   map[string]any{"collections": collections, "chroma_version": version, "collection_order": vectors.Collections},
	}, nil
}
