package archiver

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/insightops/insightops/shared/backupfmt"
	"github.com/insightops/insightops/shared/backupstore"
	"github.com/insightops/insightops/shared/ctxio"
	"github.com/insightops/insightops/shared/jobs"
	"github.com/insightops/insightops/shared/jobspec"
	"github.com/insightops/insightops/shared/metrics"
	"github.com/insightops/insightops/shared/snapshot"
)

// Verify verifies the archive name of the store (see the package
// documentation), records the outcome in its Meta (with r.JobID) and
// returns it. Before anything is read from it the archive must be signed
// with this deployment's keys and its bytes the signed ones
// (OpenAuthentic): otherwise the permanent "archive_unsigned" or
// "archive_signature_invalid", nothing run and nothing recorded. A corrupt
// archive is the permanent error "verify_failed" naming the first failing
// part, with the result filled; an unknown name is the permanent
// "not_found"; a read error is retryable. r.SkipLocks and
// r.Audit are not used: verifying reads only the archive.
func (a *Archiver) Verify(ctx context.Context, name string, r Run) (jobspec.BackupVerifyResult, error) {
	r = a.begin(r)
	progress, jobID, log := r.Progress, r.JobID, r.Log
	if _, err := backupfmt.ParseArchiveName(name); err != nil {
		return jobspec.BackupVerifyResult{}, jobs.Invalid("%v", err)
	}
	st, err := a.Store(ctx)
	if err != nil {
		return jobspec.BackupVerifyResult{}, jobs.Retryable(jobs.CodeStoreUnavailable, err)
	}
	scratch, err := scratchDir(a.deps)
	if err != nil {
		return jobspec.BackupVerifyResult{}, err
	}
	if err := progress(1, "opening "+name); err != nil {
		return jobspec.BackupVerifyResult{}, err
	}
	keys, err := a.Keys()
	if err != nil {
		return jobspec.BackupVerifyResult{}, err
	}
	// The signature first, and a private copy of exactly the signed bytes:
	// nothing of an unsigned or tampered archive reaches a checker (a
	// scratch restore runs its SQL).
	ids, err := Identities(a.deps.Config)
	if err != nil {
		return jobspec.BackupVerifyResult{}, err
	}
	arc, err := OpenAuthentic(ctx, st, keys, ids, name, scratch)
	var coded *jobs.CodedError
	switch {
	case errors.Is(err, backupstore.ErrNotFound):
		return jobspec.BackupVerifyResult{}, jobs.Permanent(jobs.CodeNotFound, fmt.Errorf("archive %s is not in the %s", name, st.Describe()))
	case errors.As(err, &coded):
		log.Warn("archive refused before verification", "archive", name, "error_code", coded.Code, "err", err)
		if errors.Is(err, ErrNotSignedBytes) {
			// Signed here, changed since (bit rot or tampering): the list
			// must no longer show an earlier pass.
			res := jobspec.BackupVerifyResult{Archive: name, VerifiedAt: time.Now().UTC(), Outcome: backupstore.OutcomeFailed,
				Files: []jobspec.VerifiedFile{}, Problems: []string{"(archive): " + ErrNotSignedBytes.Error() + "; nothing was read from it"}}
			if rerr := a.recordVerification(ctx, st, res, jobID); rerr != nil {
				log.Warn("could not record the failed verification", "archive", name, "err", rerr)
			}
			metrics.BackupVerifications.WithLabelValues(res.Outcome).Inc()
			return res, err
		}
		return jobspec.BackupVerifyResult{}, err
	case err != nil:
		return jobspec.BackupVerifyResult{}, classify(err, jobs.CodeStoreUnavailable)
	}
	defer arc.Close()
	info := arc.Info

	vctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	rep := &reporter{fn: progress, cancel: cancel}
	src := &progressReader{r: arc.Reader(), fn: func(n int64) {
		rep.tick(5+fraction(90, n, arc.Size()), fmt.Sprintf("verifying %s: %s of %s read", name, mib(n), mib(arc.Size())))
	}}
	if err := rep.step(5, "verifying "+name); err != nil {
		return jobspec.BackupVerifyResult{}, err
	}
	checks := &checkLog{m: map[string]string{}}
	report, verr := backupfmt.Verify(vctx, src, backupfmt.VerifyOptions{
		ReadOptions: backupfmt.ReadOptions{Name: name, MaxDecompressed: a.deps.Config.BackupMaxDecompressed},
		Checkers:    a.checkers(scratch, checks, log),
	})
	if rep.err != nil {
		return jobspec.BackupVerifyResult{}, rep.err
	}
	if verr != nil && !errors.Is(verr, backupfmt.ErrInvalidArchive) {
		// The source failed or ctx ended: nothing is known about the archive.
		return jobspec.BackupVerifyResult{}, classify(fmt.Errorf("verify %s: %w", name, verr), jobs.CodeStoreUnavailable)
	}
	res := jobspec.BackupVerifyResult{
		Archive: name, VerifiedAt: time.Now().UTC(), SHA256: report.ArchiveSHA256, Bytes: report.ArchiveSize,
		Files: []jobspec.VerifiedFile{}, Manifest: report.Manifest,
	}
	for _, f := range report.Files {
		check := checks.get(f.Path)
		if !f.Checked || check == "" {
			check = jobspec.CheckChecksum
		}
		res.Files = append(res.Files, jobspec.VerifiedFile{Path: f.Path, Kind: f.Kind, Bytes: f.Size, Count: f.Count, Check: check})
	}
	for _, p := range report.Problems {
		res.Problems = append(res.Problems, p.Error())
	}
	if verr == nil && report.ArchiveSHA256 != arc.SHA256() {
		res.Problems = append(res.Problems, fmt.Sprintf("(archive): sha256 mismatch: stored with the archive %s, content is %s", arc.SHA256(), report.ArchiveSHA256))
	}
	if arc.SHA256() != info.SHA256 {
		// Encrypted: the result names the stored (signed) bytes, as the
		// list does; the plaintext's digest is in the Meta's encryption.
		res.SHA256, res.Bytes = info.SHA256, info.Size
	}
	if verr == nil {
		if err := arc.CheckManifest(report.ManifestSHA256); err != nil {
			return jobspec.BackupVerifyResult{}, err
		}
	}
	res.Outcome = backupstore.OutcomePassed
	if len(res.Problems) > 0 {
		res.Outcome = backupstore.OutcomeFailed
	}

	if err := progress(97, "recording the outcome"); err != nil {
		return res, err
	}
	if err := a.recordVerification(ctx, st, res, jobID); err != nil {
		return res, jobs.Retryable(jobs.CodeStoreUnavailable, err)
	}
	metrics.BackupVerifications.WithLabelValues(res.Outcome).Inc()
	if res.Outcome == backupstore.OutcomeFailed {
		log.Warn("archive failed verification", "archive", name, "problems", len(res.Problems), "first", res.Problems[0])
		for _, p := range report.Problems {
			if errors.Is(p, snapshot.ErrUnexpectedObjects) {
				return res, jobs.Permanent(jobs.CodeArchiveUnsafe, fmt.Errorf("archive %s failed verification, nothing was restored from it: %s", name, p.Error()))
			}
		}
		if errors.Is(verr, backupfmt.ErrDecompressionLimit) {
			return res, jobs.Permanent(jobs.CodeDecompressionLimit, fmt.Errorf("archive %s failed verification: %s", name, res.Problems[0]))
		}
		return res, jobs.Permanent(jobs.CodeVerifyFailed, fmt.Errorf("archive %s failed verification: %s", name, res.Problems[0]))
	}
	metrics.LastBackupVerified.SetToCurrentTime()
	log.Info("archive verified", "archive", name, "files", len(res.Files), "bytes", res.Bytes)
	return res, nil
}

// recordVerification stores the outcome in the archive's Meta, filling
// the manifest summary too when the Meta had none.
func (a *Archiver) recordVerification(ctx context.Context, st backupstore.Store, res jobspec.BackupVerifyResult, jobID string) error {
	meta, err := st.Meta(ctx, res.Archive)
	if err != nil {
		return fmt.Errorf("read the meta of %s: %w", res.Archive, err)
	}
	if meta.CreatedAt.IsZero() && res.Manifest.FormatVersion != 0 {
		enc := meta.Encryption
		meta = backupstore.Summary(res.Manifest)
		meta.Encryption = enc
	}
	v := &backupstore.Verification{VerifiedAt: res.VerifiedAt, Outcome: res.Outcome, JobID: jobID}
	if len(res.Problems) > 0 {
		v.Error = res.Problems[0]
		if n := len(res.Problems) - 1; n > 0 {
			v.Error += fmt.Sprintf(" (and %d more problem(s))", n)
		}
	}
	meta.Verification = v
	if err := st.SetMeta(ctx, res.Archive, meta); err != nil {
		return fmt.Errorf("record the verification of %s: %w", res.Archive, err)
	}
	return nil
}

// checkLog records which check ran on which file (checkers run one at a
// time, but the log is read after Verify; the lock keeps it simple).
type checkLog struct {
	mu sync.Mutex
	m  map[string]string
}

func (c *checkLog) set(path, check string) {
	c.mu.Lock()
	c.m[path] = check
	c.mu.Unlock()
}

func (c *checkLog) get(path string) string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.m[path]
}

// checkers are the test restores of verification, by file kind.
func (a *Archiver) checkers(scratch string, checks *checkLog, log *slog.Logger) map[string]backupfmt.Checker {
	opts := []snapshot.Option{snapshot.WithScratchDir(scratch)}
	scratchURL := a.deps.Config.VerifyDatabaseURL
	if scratchURL == "" && isPostgresURL(a.deps.Config.DatabaseURL) {
		scratchURL = a.deps.Config.DatabaseURL // used only if its role is CREATEDB-only
	}
	return map[string]backupfmt.Checker{
		backupfmt.KindPGDump: func(ctx context.Context, f backupfmt.File, r io.Reader) (int64, error) {
			// The dump is kept in a scratch file so that its table of
			// contents is checked (pg_restore --list runs nothing) before
			// any of it is restored.
			path, err := spoolTo(ctx, scratch, r)
			if err != nil {
				return backupfmt.CountUnknown, err
			}
			defer os.Remove(path)
			c, err := checkFile(path, func(r io.Reader) (snapshot.SystemCheck, error) {
				return snapshot.CheckSystem(ctx, snapshot.KindPgDump, r, opts...)
			})
			checks.set(f.Path, jobspec.CheckRestoreList)
			if err != nil || scratchURL == "" {
				return c.Total(), err
			}
			rows, err := checkFile(path, func(r io.Reader) (snapshot.Counts, error) {
				return snapshot.TestRestorePostgres(ctx, scratchURL, r, opts...)
			})
			switch {
			case err == nil:
				checks.set(f.Path, jobspec.CheckScratchRestore)
				return rows.Total(), nil
			case errors.Is(err, snapshot.ErrScratchUnavailable):
				log.Info("no scratch database allowed; the dump was checked with pg_restore --list", "file", f.Path, "reason", err.Error())
				return c.Total(), nil
			}
			return backupfmt.CountUnknown, err
		},
		backupfmt.KindSQLite: func(ctx context.Context, f backupfmt.File, r io.Reader) (int64, error) {
			checks.set(f.Path, jobspec.CheckSQLite)
			if f.Component() == backupfmt.ComponentSystem {
				// Counts the System DB tables only, as the dump did.
				c, err := snapshot.CheckSystem(ctx, snapshot.KindSQLite, r, opts...)
				if err != nil {
					return backupfmt.CountUnknown, err
				}
				return c.Total(), nil
			}
			counts, err := snapshot.CheckSQLite(ctx, r, scratch)
			if err != nil {
				return backupfmt.CountUnknown, err
			}
			return counts.Total(), nil
		},
		backupfmt.KindJSONL: func(ctx context.Context, f backupfmt.File, r io.Reader) (int64, error) {
			checks.set(f.Path, jobspec.CheckJSONL)
			return backupfmt.CheckJSONL(ctx, f, r)
		},
	}
}

// spoolTo copies r into a new private file under dir and returns its path.
func spoolTo(ctx context.Context, dir string, r io.Reader) (string, error) {
	f, err := os.CreateTemp(dir, ".dump-*")
	if err != nil {
		return "", fmt.Errorf("scratch copy of the dump: %w", err)
	}
	_, err = io.CopyBuffer(f, ctxio.Reader(ctx, r), make([]byte, 1<<20))
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		_ = os.Remove(f.Name())
		return "", fmt.Errorf("scratch copy of the dump: %w", err)
	}
	return f.Name(), nil
}

// checkFile runs check on the file at path.
func checkFile[T any](path string, check func(io.Reader) (T, error)) (T, error) {
	f, err := os.Open(path)
	if err != nil {
		var zero T
		return zero, fmt.Errorf("open the scratch copy of the dump: %w", err)
	}
	defer f.Close()
	return check(f)
}

// isPostgresURL reports whether a DATABASE_URL names PostgreSQL.
func isPostgresURL(u string) bool {
	return strings.HasPrefix(u, "postgres://") || strings.HasPrefix(u, "postgresql://") ||
		(u != "" && !strings.Contains(u, "://") && strings.Contains(u, "="))
}
