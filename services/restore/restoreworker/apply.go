package restoreworker

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/insightops/insightops/shared/archiver"
	"github.com/insightops/insightops/shared/backupfmt"
	"github.com/insightops/insightops/shared/jobs"
	"github.com/insightops/insightops/shared/jobspec"
	"github.com/insightops/insightops/shared/locks"
	"github.com/insightops/insightops/shared/snapshot"
	"github.com/insightops/insightops/shared/vectors"
	"github.com/insightops/insightops/shared/worker"
)

// apply streams the archive once more (the private copy verify
// authenticated, never the store again) and restores the planned components
// from it, in archive order (system, target, chroma). The stream is read
// with the verified manifest as Expect: a byte that changed since the
// verification fails the file's reader before its consumer sees the end,
// so pg_restore rolls back and a Target DB copy is never renamed into
// place.
func (w *Worker) apply(ctx context.Context, job *worker.Job, arc *archiver.Authentic, m backupfmt.Manifest, pl *restorePlan, leases locks.Set, res *jobspec.RestoreResult) error {
	log := job.Logger()
	name := arc.Info.Name
	rc := arc.Reader()

	span := pctCheck - pctRestore
	done := 0
	total := len(pl.components)
	stepFor := func(what string) {
		if err := leases.Err(); err != nil {
			// Stopping half-way would mix two points in time; go on, loudly.
			log.Error("a lease was lost during the restore; finishing it", "err", err)
		}
		_ = w.step(ctx, job, pctRestore+done*span/max(total, 1), what)
	}
	var restoredChroma []string
	fn := func(ctx context.Context, f backupfmt.File, content io.Reader) error {
		switch {
		case pl.system != nil && f.Path == pl.system.Path:
			stepFor("restoring the System DB from " + f.Path)
			if err := w.restoreSystem(ctx, job, content, res); err != nil {
				return err
			}
			done++
		case pl.target != nil && f.Path == pl.target.Path:
			stepFor("restoring the Target DB from " + f.Path)
			if err := w.restoreTarget(ctx, content, f.SHA256, res); err != nil {
				return err
			}
			done++
		case pl.has(backupfmt.ComponentChroma) && f.Component() == backupfmt.ComponentChroma:
			coll, ok := collectionOf(f.Path)
			if !ok {
				return nil // refused by plan; cannot happen with Expect
			}
			stepFor("restoring Chroma collection " + coll)
			if err := w.restoreCollection(ctx, pl.vectors, coll, m, content, res); err != nil {
				return err
			}
			restoredChroma = append(restoredChroma, coll)
		}
		return nil
	}
	if _, err := backupfmt.Walk(ctx, rc, backupfmt.ReadOptions{Name: name, Expect: &m, SameCopy: arc.Unshared(), MaxDecompressed: w.Deps.Config.BackupMaxDecompressed}, fn); err != nil {
		return applyError(err)
	}
	if pl.has(backupfmt.ComponentChroma) {
		// A managed collection the archive does not hold is emptied, so
		// the vector store is the archive's.
		for _, coll := range vectors.Collections {
			if slices.Contains(restoredChroma, coll) {
				continue
			}
			if _, err := pl.vectors.Info(ctx, coll); errors.Is(err, vectors.ErrNotFound) {
				continue
			}
			if _, err := pl.vectors.Clear(ctx, coll); err != nil {
				return applyError(fmt.Errorf("restore: empty collection %s, which the archive does not hold: %w", coll, err))
			}
			chromaOf(res, pl.vectors).Collections = append(chromaOf(res, pl.vectors).Collections, jobspec.RestoredCollection{Name: coll, Cleared: true})
		}
	}
	return nil
}

// applyError classifies a failure of the restore proper: coded errors
// and cancellation pass through; anything else is retryable
// restore_failed (a retry restores every component again).
func applyError(err error) error {
	var ce *jobs.CodedError
	switch {
	case errors.As(err, &ce), errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return err
	case errors.Is(err, backupfmt.ErrDecompressionLimit):
		return jobs.Permanent(jobs.CodeDecompressionLimit, fmt.Errorf("restore: %w", err))
	case errors.Is(err, backupfmt.ErrInvalidArchive):
		return jobs.Permanent(jobs.CodeArchiveInvalid, fmt.Errorf("restore: the archive changed since it was verified: %w", err))
	}
	return jobs.Retryable(jobs.CodeRestoreFailed, err)
}

// restoreSystem restores the System DB dump read from r, migrates the
// schema, and re-syncs audit_logs from the AUDIT stream, with the audit
// sink paused throughout (see AuditSync).
func (w *Worker) restoreSystem(ctx context.Context, job *worker.Job, r io.Reader, res *jobspec.RestoreResult) error {
	log := job.Logger()
	db := w.Deps.DB
	var js jetstream.JetStream
	if w.Deps.Bus != nil {
		js = w.Deps.Bus.JS
	}
	pause, err := w.AuditSync.pauseSink(ctx, js, log)
	if err != nil {
		return jobs.Retryable(jobs.CodeRestoreFailed, fmt.Errorf("restore: %w; the System DB was not changed", err))
	}
	defer pause.resume()

	rr, err := snapshot.RestoreSystem(ctx, db, r, snapshot.WithScratchDir(w.ScratchDir))
	if err != nil {
		return jobs.Retryable(jobs.CodeRestoreFailed, fmt.Errorf("restore: %w", err))
	}
	sys := &jobspec.RestoredSystem{Kind: rr.Kind, Rows: rr.Rows, AuditReinserted: rr.AuditReinserted}
	res.System = sys
	log.Info("system db restored", "kind", rr.Kind, "bytes", rr.Bytes, "audit_reinserted", rr.AuditReinserted)

	mig, err := db.Migrate(ctx)
	if err != nil {
		return jobs.Retryable(jobs.CodeRestoreFailed, fmt.Errorf("restore: migrate the restored System DB: %w", err))
	}
	sys.Migrations, sys.SchemaVersion = mig.Applied, mig.Version
	if len(mig.Applied) > 0 {
		log.Info("restored schema migrated", "applied", mig.Applied, "version", mig.Version)
	}
	if !w.AuditSync.Disabled && js != nil {
		n, err := Resync(ctx, js, db, w.AuditSync.FetchWait)
		sys.AuditResynced = n
		if err != nil {
			return jobs.Retryable(jobs.CodeRestoreFailed, fmt.Errorf("restore: the System DB is restored, but audit_logs could not be re-synced from the AUDIT stream: %w", err))
		}
		if n > 0 {
			log.Info("audit_logs re-synced from the AUDIT stream", "inserted", n)
		}
	}
	return nil
}

// restoreTarget replaces the Target DB's runtime copy with the copy read
// from r; the golden source is never written. r is the Walk of the archive
// with the verified manifest as Expect (and SameCopy: the verification
// hashed this very copy), and that verification ran integrity_check on
// these very bytes (Checkers): RestoreTarget need not run it again, nor
// hash them (snapshot.WithCheckedInput).
func (w *Worker) restoreTarget(ctx context.Context, r io.Reader, sha256 string, res *jobspec.RestoreResult) error {
	cfg := w.Deps.Config
	tr, err := snapshot.RestoreTarget(ctx, r, cfg.TargetDBPath, cfg.TargetDBSource, snapshot.WithScratchDir(w.ScratchDir), snapshot.WithCheckedInput(sha256))
	if errors.Is(err, snapshot.ErrGoldenSource) {
		return jobs.Permanent(jobs.CodePreconditionFailed, fmt.Errorf("restore: %w", err))
	}
	if err != nil {
		return jobs.Retryable(jobs.CodeRestoreFailed, fmt.Errorf("restore: %w", err))
	}
	res.Target = &jobspec.RestoredTarget{Path: tr.Path, Tables: tr.Tables, SHA256: tr.SHA256, Bytes: tr.Bytes}
	return nil
}

// restoreCollection recreates a collection with its saved metadata and
// upserts the records read from r, with their saved embeddings. A
// collection that did not exist when the archive was made (an empty file)
// is emptied if it exists now, and not created otherwise.
func (w *Worker) restoreCollection(ctx context.Context, c *vectors.Client, coll string, m backupfmt.Manifest, r io.Reader, res *jobspec.RestoreResult) error {
	md, existed := collectionMetadata(m, coll)
	cr := chromaOf(res, c)
	if !existed {
		if _, err := io.Copy(io.Discard, r); err != nil {
			return err
		}
		if _, err := c.Info(ctx, coll); errors.Is(err, vectors.ErrNotFound) {
			cr.Collections = append(cr.Collections, jobspec.RestoredCollection{Name: coll})
			return nil
		}
		if _, err := c.Clear(ctx, coll); err != nil {
			return chromaError(coll, err)
		}
		cr.Collections = append(cr.Collections, jobspec.RestoredCollection{Name: coll, Cleared: true})
		return nil
	}
	n, err := c.Import(ctx, coll, md, vectors.ReadJSONL(r), w.BatchSize)
	if err != nil {
		return chromaError(coll, err)
	}
	cr.Collections = append(cr.Collections, jobspec.RestoredCollection{Name: coll, Imported: n})
	return nil
}

func chromaError(coll string, err error) error {
	if errors.Is(err, vectors.ErrUnavailable) {
		return jobs.Retryable(jobs.CodeStoreUnavailable, fmt.Errorf("restore: collection %s: %w", coll, err))
	}
	return jobs.Retryable(jobs.CodeRestoreFailed, fmt.Errorf("restore: collection %s: %w", coll, err))
}

// chromaOf returns res.Chroma, creating it.
func chromaOf(res *jobspec.RestoreResult, c *vectors.Client) *jobspec.RestoredChroma {
	if res.Chroma == nil {
		res.Chroma = &jobspec.RestoredChroma{URL: c.URL()}
	}
	return res.Chroma
}

// collectionMetadata returns the collection's own metadata saved in the
// manifest (the archive engine's Meta["collections"][name], see
// archiver.CollectionMeta) and whether the collection existed when the
// archive was made. Without a record of it, the collection is taken to
// have existed, with no metadata (Import then gives it the configured
// embedder's).
func collectionMetadata(m backupfmt.Manifest, coll string) (map[string]any, bool) {
	meta := componentMeta(m, backupfmt.ComponentChroma)
	cols, _ := meta["collections"].(map[string]any)
	c, ok := cols[coll].(map[string]any)
	if !ok {
		return nil, true
	}
	md, _ := c["metadata"].(map[string]any)
	exists, ok := c["exists"].(bool)
	return md, exists || !ok
}
