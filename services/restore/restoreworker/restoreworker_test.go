package restoreworker_test

import (
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/insightops/insightops/shared/archiver"
	"github.com/insightops/insightops/shared/audit"
	"github.com/insightops/insightops/shared/auditsink"
	"github.com/insightops/insightops/shared/jobs"
	"github.com/insightops/insightops/shared/jobspec"
	"github.com/insightops/insightops/shared/locks"
	"github.com/insightops/insightops/shared/store"
	"github.com/insightops/insightops/shared/testkit"
)

// TestRestore runs the whole life of a restore on real parts, for a SQLite
// and a PostgreSQL System DB: seed the three stores, back them up, change
// and delete data everywhere, then
//
//  1. restore a copy of the archive with one byte flipped (its digest
//     sidecar rewritten to match): the job fails (archive_signature_invalid),
//     no safety backup is taken and every store is
//     exactly as it was;
//  2. restore the intact archive while a backup holds the system lease:
//     the job waits, changes nothing meanwhile, and once the lease is
//     released restores every row, record, embedding and document as
//     seeded; the audit events recorded after the backup are still in
//     audit_logs and the hash chain verifies;
//  3. restore the safety backup taken by step 2 (skipping another one):
//     the stores are back to the changed state.
func TestRestore(t *testing.T) {
	t.Parallel()
	for _, d := range testkit.Dialects {
		t.Run(d.Name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, d)
			e.seed()
			beforeBackup := e.publishAudit("before-backup", 3)
			seeded := e.state()
			archive := e.backup()
			t.Logf("archive %s (%d bytes)", archive.Archive, archive.Bytes)

			e.mutate()
			afterBackup := e.publishAudit("after-backup", 4)
			changed := e.state()
			if !changed.Audit[afterBackup[0]] || !changed.Audit[beforeBackup[0]] {
				t.Fatal("audit events not stored before the restore")
			}

			t.Run("flipped byte changes nothing", func(t *testing.T) {
				path := filepath.Join(e.cfg.BackupDir, archive.Archive)
				orig, err := os.ReadFile(path)
				if err != nil {
					t.Fatal(err)
				}
				origSHA, err := os.ReadFile(path + ".sha256")
				if err != nil {
					t.Fatal(err)
				}
				bad := slices.Clone(orig)
				bad[len(bad)/2] ^= 0x40
				sum := sha256.Sum256(bad)
				// The sidecar is made to match, so only the archive's own
				// checksums can catch the flip.
				writeFile(t, path, bad)
				writeFile(t, path+".sha256", []byte(hex.EncodeToString(sum[:])+"  "+archive.Archive+"\n"))
				defer func() {
					writeFile(t, path, orig)
					writeFile(t, path+".sha256", origSHA)
				}()
				listed := e.archives()

				rec := e.final(e.submit(jobspec.RestoreArgs{Archive: archive.Archive}))
				// The bytes and the sidecar no longer match the archive's
				// signature: refused before anything is read from it.
				if rec.State != jobs.Failed || rec.Error == nil || rec.Error.Code != jobs.CodeArchiveSignatureInvalid {
					t.Fatalf("job %s, error %+v; want failed with %s", rec.State, rec.Error, jobs.CodeArchiveSignatureInvalid)
				}
				if rec.Attempt != 1 {
					t.Errorf("a corrupt archive was retried: attempt %d", rec.Attempt)
				}
				t.Logf("refused: %s", rec.Error.Message)
				sameStores(t, "after the refused restore", e.state(), changed)
				if got := e.archives(); !slices.Equal(got, listed) {
					t.Errorf("archives %v after the refused restore, want %v (no safety backup)", got, listed)
				}
				e.noLocksHeld()
			})

			var safety string
			t.Run("waits for a backup's lock, then restores everything", func(t *testing.T) {
				lease, err := locks.Acquire(e.ctx, e.deps.Bus.Locks, locks.System,
					locks.Holder{Owner: jobs.NewID(), Operation: jobs.KindBackupCreate}, time.Second)
				if err != nil {
					t.Fatal(err)
				}
				released := false
				defer func() {
					if !released {
						_ = lease.Release(e.ctx)
					}
				}()
				// Events keep coming while the restore runs: the sink and the
				// restore must not lose or fork any of them.
				stopEvents := e.publishContinuously("during-restore")
				id := e.submit(jobspec.RestoreArgs{Archive: archive.Archive})
				testkit.WaitJob(t, e.jobs, id, 30*time.Second, "the job to wait for the lock", func(r jobs.Record) bool {
					return r.State == jobs.Running && strings.Contains(r.Step, "system is locked by backup.create")
				})
				time.Sleep(time.Second)
				sameStores(t, "while waiting for the lock", e.state(), changed)
				if err := lease.Release(e.ctx); err != nil {
					t.Fatal(err)
				}
				released = true

				rec := e.final(id)
				published := stopEvents()
				if rec.State != jobs.Succeeded {
					t.Fatalf("job %s, step %q, error %+v", rec.State, rec.Step, rec.Error)
				}
				res := resultOf(t, rec)
				t.Logf("result: %s", rec.Result)
				t.Logf("%d audit events published during the restore", len(published))
				e.waitAudit(published)
				if !res.CountsOK || len(res.CountProblems) > 0 {
					t.Errorf("counts not ok: %v", res.CountProblems)
				}
				if !slices.Equal(res.Components, []string{"system", "target", "chroma"}) {
					t.Errorf("components %v", res.Components)
				}
				if res.SafetyBackup == nil || res.SafetyBackup.Archive == "" || !slices.Contains(e.archives(), res.SafetyBackup.Archive) {
					t.Fatalf("safety backup %+v not listed in %v", res.SafetyBackup, e.archives())
				}
				safety = res.SafetyBackup.Archive
				if res.System == nil || res.System.Expected["users"] != int64(len(seeded.System["users"])) || res.System.Rows["users"] != res.System.Expected["users"] {
					t.Errorf("system counts %+v", res.System)
				}
				if res.Target == nil || res.Target.Expected["restore_marker"] != 2 || res.Target.Tables["restore_marker"] != 2 {
					t.Errorf("target counts %+v", res.Target)
				}
				if res.Chroma == nil || len(res.Chroma.Collections) != 3 {
					t.Fatalf("chroma result %+v", res.Chroma)
				}
				for _, c := range res.Chroma.Collections {
					if c.Count != 23 || c.Expected != 23 || c.Imported != 23 {
						t.Errorf("collection %+v, want 23 records", c)
					}
				}

				got := e.state()
				sameStores(t, "after the restore", got, seeded)
				for _, id := range append(afterBackup, beforeBackup...) {
					if !got.Audit[id] {
						t.Errorf("audit event %s lost by the restore", id)
					}
				}
				e.auditChainOK()
				e.noLocksHeld()
				// The restore itself is audited, after it, in audit_logs.
				e.waitAuditAction(id, "restore.applied")
				e.waitAuditAction(id, "restore.succeeded")
				// The golden source is never written.
				if sha(t, e.golden) != sha(t, filepath.Join(assetsDir, "databases", "vanna_db.db")) {
					t.Error("the golden source changed")
				}
			})

			t.Run("the safety backup restores the state before", func(t *testing.T) {
				if safety == "" {
					t.Skip("no safety backup")
				}
				before := e.archives()
				rec := e.final(e.submit(jobspec.RestoreArgs{Archive: safety, SkipSafetyBackup: true}))
				if rec.State != jobs.Succeeded {
					t.Fatalf("job %s, error %+v", rec.State, rec.Error)
				}
				res := resultOf(t, rec)
				if res.SafetyBackup != nil || res.SafetyBackupSkipped == "" {
					t.Errorf("safety backup %+v / %q, want skipped", res.SafetyBackup, res.SafetyBackupSkipped)
				}
				if got := e.archives(); !slices.Equal(got, before) {
					t.Errorf("archives %v, want %v", got, before)
				}
				sameStores(t, "after restoring the safety backup", e.state(), changed)
				e.auditChainOK()
			})

			t.Run("restore and backup at the same time", func(t *testing.T) {
				// Both take the same leases: one runs after the other, both
				// succeed, and the backup holds one whole state, never a
				// half-restored one.
				type created struct {
					res jobspec.ArchiveSummary
					err error
				}
				bc := make(chan created, 1)
				go func() {
					res, err := archiver.Create(e.ctx, e.deps, jobspec.BackupCreateArgs{Note: "concurrent"}, archiver.Run{JobID: jobs.NewID()})
					bc <- created{res, err}
				}()
				rec := e.final(e.submit(jobspec.RestoreArgs{Archive: archive.Archive, SkipSafetyBackup: true}))
				b := <-bc
				if rec.State != jobs.Succeeded || b.err != nil {
					t.Fatalf("restore %s %+v; backup %v", rec.State, rec.Error, b.err)
				}
				sameStores(t, "after the restore", e.state(), seeded)
				e.noLocksHeld()

				rec = e.final(e.submit(jobspec.RestoreArgs{Archive: b.res.Archive, SkipSafetyBackup: true}))
				if rec.State != jobs.Succeeded {
					t.Fatalf("restore of the concurrent backup: %s %+v", rec.State, rec.Error)
				}
				got := e.state()
				asSeeded, asChanged := diffStores(got, seeded), diffStores(got, changed)
				if len(asSeeded) > 0 && len(asChanged) > 0 {
					t.Errorf("the concurrent backup is neither the state before nor after the restore:\n vs seeded: %v\n vs changed: %v", asSeeded, asChanged)
				}
				t.Logf("the concurrent backup holds the %s state", map[bool]string{true: "restored", false: "earlier"}[len(asSeeded) == 0])
				e.auditChainOK()
			})
		})
	}
}

// TestRestoreRefusals covers what fails before anything is touched: an
// unknown archive, a component the archive lacks, a bad name.
func TestRestoreRefusals(t *testing.T) {
	t.Parallel()
	e := newEnv(t, testkit.SQLite)
	e.seed()
	archive := e.backup()
	for _, tc := range []struct {
		name string
		p    jobs.Args
		code jobs.Code
	}{
		{"unknown archive", jobspec.RestoreArgs{Archive: "backup-20200101T000000Z-01JD0000000000000000000000.tar.gz"}, jobs.CodeArchiveNotFound},
		{"bad name", unchecked(t, jobspec.RestoreArgs{Archive: "../" + archive.Archive}), jobs.CodeInvalidParams},
		{"unknown component", unchecked(t, jobspec.RestoreArgs{Archive: archive.Archive, Components: []string{"everything"}}), jobs.CodeInvalidParams},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := e.state()
			rec := e.final(e.submit(tc.p))
			if rec.State != jobs.Failed || rec.Error == nil || rec.Error.Code != tc.code || rec.Attempt != 1 {
				t.Fatalf("job %s attempt %d error %+v, want failed at once with %s", rec.State, rec.Attempt, rec.Error, tc.code)
			}
			sameStores(t, tc.name, e.state(), before)
		})
	}
	t.Run("one component only", func(t *testing.T) {
		tdb := e.openTarget(false)
		if _, err := tdb.ExecContext(e.ctx, `DELETE FROM restore_marker`); err != nil {
			t.Fatal(err)
		}
		tdb.Close()
		e.exec(`DELETE FROM queries`)
		rec := e.final(e.submit(jobspec.RestoreArgs{Archive: archive.Archive, Components: []string{"target"}, SkipSafetyBackup: true}))
		if rec.State != jobs.Succeeded {
			t.Fatalf("job %s error %+v", rec.State, rec.Error)
		}
		res := resultOf(t, rec)
		if !slices.Equal(res.Components, []string{"target"}) || res.System != nil || res.Chroma != nil || res.Skipped["system"] == "" {
			t.Errorf("result %s", rec.Result)
		}
		if n := len(e.state().System["queries"]); n != 0 {
			t.Errorf("system restored although only target was asked for: %d queries", n)
		}
		if n := len(e.state().Target["restore_marker"]); n != 2 {
			t.Errorf("target not restored: %d marker rows", n)
		}
	})
}

func writeFile(t *testing.T, path string, b []byte) {
	t.Helper()
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

func sha(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// publishContinuously publishes an audit event every few milliseconds
// until stop is called, which returns the ids published.
func (e *env) publishContinuously(phase string) func() []string {
	quit := make(chan struct{})
	done := make(chan []string)
	go func() {
		var ids []string
		for i := 0; ; i++ {
			select {
			case <-quit:
				done <- ids
				return
			case <-time.After(5 * time.Millisecond):
			}
			ev := audit.Event{ID: jobs.NewID(), Actor: "tester@example.com", Action: "test." + phase, Resource: "test",
				Outcome: audit.Success, Detail: map[string]any{"i": i}}
			if err := e.deps.Audit.Publish(e.ctx, ev); err != nil {
				e.t.Errorf("publish: %v", err)
				continue
			}
			ids = append(ids, ev.ID)
		}
	}()
	return func() []string { close(quit); return <-done }
}

// noLocksHeld fails when a LOCKS lease is still held.
func (e *env) noLocksHeld() {
	e.t.Helper()
	held, err := locks.Holders(e.ctx, e.deps.Bus.Locks, locks.Order...)
	if err != nil {
		e.t.Fatal(err)
	}
	if len(held) > 0 {
		e.t.Errorf("leases still held after the job: %+v", held)
	}
}

// auditChainOK checks the audit_logs hash chain, once the sink caught up.
func (e *env) auditChainOK() {
	e.t.Helper()
	rep, err := auditsink.Verify(e.ctx, e.db)
	if err != nil {
		e.t.Fatal(err)
	}
	if !rep.OK {
		e.t.Errorf("audit chain broken after the restore: %+v", rep.Broken)
	}
}

// waitAuditAction waits for an audit row of the job with action.
func (e *env) waitAuditAction(jobID, action string) {
	e.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		rows, err := e.db.AuditLogs(e.ctx, store.AuditFilter{JobID: jobID, Action: action})
		if err != nil {
			e.t.Fatal(err)
		}
		if len(rows) > 0 {
			return
		}
		if time.Now().After(deadline) {
			e.t.Errorf("no %s audit row for job %s", action, jobID)
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
}
