package restoreworker_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/insightops/insightops/shared/archiver"
	"github.com/insightops/insightops/shared/archiver/archivertest"
	"github.com/insightops/insightops/shared/archivesig"
	"github.com/insightops/insightops/shared/backupfmt"
	"github.com/insightops/insightops/shared/backupstore"
	"github.com/insightops/insightops/shared/jobs"
	"github.com/insightops/insightops/shared/jobspec"
	"github.com/insightops/insightops/shared/testkit"
)

// systemPart returns the path and content of the System DB file of an archive.
func systemPart(t *testing.T, src []byte) (string, []byte) {
	t.Helper()
	var path string
	var data []byte
	_, err := backupfmt.Walk(context.Background(), bytes.NewReader(src), backupfmt.ReadOptions{}, func(_ context.Context, f backupfmt.File, content io.Reader) error {
		b, err := io.ReadAll(content)
		if f.Component() == backupfmt.ComponentSystem {
			path, data = f.Path, b
		}
		return err
	})
	if err != nil || path == "" {
		t.Fatalf("no system part (%v)", err)
	}
	return path, data
}

func shaLine(b []byte, name string) []byte {
	s := sha256.Sum256(b)
	return []byte(hex.EncodeToString(s[:]) + "  " + name + "\n")
}

// TestPlantedArchivesAreRefused: whoever can write into the backup store
// plants archives whose System DB part brings in an admin of their own
// (a real PostgreSQL dump or SQLite copy of a System DB holding it): one
// without a signature, one whose .sha256 sidecar is gone, one signed with
// another key, and a validly signed archive with its System DB part
// swapped (its sidecars kept, or its digest sidecar rewritten to match).
// verify and restore both refuse each with its code before reading
// anything from it: the restore on its first attempt, with no safety
// backup taken, the System DB users table and every other store as they
// were; the verify without running a checker (an archive signed here
// whose bytes changed since is recorded as failed, nothing else is). The same payload, signed by
// this deployment, does restore the intruder: the refusals are the
// signature's doing.
func TestPlantedArchivesAreRefused(t *testing.T) {
	t.Parallel()
	for _, d := range testkit.Dialects {
		t.Run(d.Name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, d)
			e.seed()
			good := e.backup()
			e.exec(`INSERT INTO users (email, password_hash, role) VALUES (?, ?, ?)`, "mallory@evil.example", "$2a$10$abcdefghijklmnopqrstuv0123456789abcdefghijklmnopqrstu", "admin")
			evil := e.backup()
			e.exec(`DELETE FROM users WHERE email = ?`, "mallory@evil.example")
			before := e.state()
			if slices.ContainsFunc(before.System["users"], func(r string) bool { return strings.Contains(r, "mallory") }) {
				t.Fatal("mallory still there before the attacks")
			}

			dir := e.cfg.BackupDir
			goodPath := filepath.Join(dir, good.Archive)
			goodBytes, err := os.ReadFile(goodPath)
			if err != nil {
				t.Fatal(err)
			}
			evilBytes, err := os.ReadFile(filepath.Join(dir, evil.Archive))
			if err != nil {
				t.Fatal(err)
			}
			sysPath, evilSystem := systemPart(t, evilBytes)
			if p, _ := systemPart(t, goodBytes); p != sysPath {
				t.Fatalf("system parts %s / %s", p, sysPath)
			}
			// The evil archive is this deployment's own: take it out of
			// the store, as if it had been made elsewhere.
			if err := e.store.Delete(e.ctx, evil.Archive); err != nil {
				t.Fatal(err)
			}
			goodName, _ := backupfmt.ParseArchiveName(good.Archive)
			swapped := archivertest.Rebuild(t, goodBytes, goodName.JobID, goodName.Created, map[string][]byte{sysPath: evilSystem})

			otherKey := make([]byte, 32)
			if _, err := rand.Read(otherKey); err != nil {
				t.Fatal(err)
			}
			k, err := archivesig.ParseKey(base64.StdEncoding.EncodeToString(otherKey))
			if err != nil {
				t.Fatal(err)
			}
			otherKeys := archivesig.NewKeyring(&k)

			plant := func(t *testing.T, sign *archivesig.Keyring) string {
				t.Helper()
				id := jobs.NewID()
				created := time.Now().UTC().Add(-time.Minute).Truncate(time.Second)
				b := archivertest.Rebuild(t, goodBytes, id, created, map[string][]byte{sysPath: evilSystem})
				name := backupfmt.ArchiveName(created, id, backupfmt.Gzip)
				var opts []backupstore.PutOption
				if sign != nil {
					rep, err := backupfmt.Verify(e.ctx, bytes.NewReader(b), backupfmt.VerifyOptions{ReadOptions: backupfmt.ReadOptions{Name: name}})
					if err != nil {
						t.Fatal(err)
					}
					opts = append(opts, backupstore.WithSeal(archiver.Seal(sign, name, rep.ArchiveSHA256, rep.ManifestSHA256)))
				}
				if _, err := e.store.Put(e.ctx, name, bytes.NewReader(b), opts...); err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { _ = e.store.Delete(context.Background(), name) })
				return name
			}
			// swapGood replaces the good archive's bytes in place, with its
			// digest sidecar rewritten or not, and puts it back afterwards.
			swapGood := func(t *testing.T, rewriteDigest, dropDigest bool) string {
				t.Helper()
				origSHA, err := os.ReadFile(goodPath + ".sha256")
				if err != nil {
					t.Fatal(err)
				}
				writeFile(t, goodPath, swapped)
				switch {
				case dropDigest:
					if err := os.Remove(goodPath + ".sha256"); err != nil {
						t.Fatal(err)
					}
				case rewriteDigest:
					writeFile(t, goodPath+".sha256", shaLine(swapped, good.Archive))
				}
				t.Cleanup(func() {
					writeFile(t, goodPath, goodBytes)
					writeFile(t, goodPath+".sha256", origSHA)
				})
				return good.Archive
			}

			attacks := []struct {
				name string
				code jobs.Code
				make func(t *testing.T) string
			}{
				{"planted without a signature", jobs.CodeArchiveUnsigned, func(t *testing.T) string { return plant(t, nil) }},
				{"signed with another key", jobs.CodeArchiveSignatureInvalid, func(t *testing.T) string { return plant(t, otherKeys) }},
				{"signed archive, system part swapped, sidecars kept", jobs.CodeArchiveSignatureInvalid, func(t *testing.T) string { return swapGood(t, false, false) }},
				{"signed archive, system part swapped, digest sidecar rewritten", jobs.CodeArchiveSignatureInvalid, func(t *testing.T) string { return swapGood(t, true, false) }},
				{"signed archive, system part swapped, digest sidecar removed", jobs.CodeArchiveUnsigned, func(t *testing.T) string { return swapGood(t, false, true) }},
			}
			verifier := archiver.New(e.deps, archiver.Options{Store: e.store})
			for _, a := range attacks {
				t.Run(a.name, func(t *testing.T) {
					name := a.make(t)
					listed := e.archives()
					metaBefore, err := e.store.Meta(e.ctx, name)
					if err != nil {
						t.Fatal(err)
					}

					_, verr := verifier.Verify(e.ctx, name, archiver.Run{JobID: jobs.NewID()})
					if got := jobs.ErrorOf(verr); verr == nil || got.Code != a.code {
						t.Errorf("verify: %v (code %s), want %s", verr, got.Code, a.code)
					}
					// Only an archive signed here whose bytes changed since gets
					// a failed verification recorded; nothing else is written.
					m, _ := e.store.Meta(e.ctx, name)
					switch {
					case !slices.Equal(m.Components, metaBefore.Components):
						t.Errorf("the refused verify changed the summary: %+v", m)
					case errors.Is(verr, archiver.ErrNotSignedBytes):
						if m.Verification == nil || m.Verification.Outcome != backupstore.OutcomeFailed {
							t.Errorf("verify of changed bytes recorded %+v, want failed", m.Verification)
						}
					case !reflect.DeepEqual(m.Verification, metaBefore.Verification):
						t.Errorf("the refused verify recorded %+v (was %+v)", m.Verification, metaBefore.Verification)
					}

					rec := e.final(e.submit(jobspec.RestoreArgs{Archive: name}))
					if rec.State != jobs.Failed || rec.Error == nil || rec.Error.Code != a.code || rec.Attempt != 1 {
						t.Fatalf("restore: %s, attempt %d, error %+v; want failed once with %s", rec.State, rec.Attempt, rec.Error, a.code)
					}
					t.Logf("refused: %s", rec.Error.Message)
					sameStores(t, "after the refused restore", e.state(), before)
					if got := e.archives(); !slices.Equal(got, listed) {
						t.Errorf("archives %v after the refused restore, want %v (no safety backup)", got, listed)
					}
					noPrivateCopies(t, e.worker.ScratchDir, filepath.Join(e.cfg.DataDir, "scratch"))
					e.noLocksHeld()
				})
			}

			// Control: the archive the payload came from, signed here,
			// restores the intruder.
			t.Run("the payload signed by this deployment restores", func(t *testing.T) {
				rep, err := backupfmt.Verify(e.ctx, bytes.NewReader(evilBytes), backupfmt.VerifyOptions{ReadOptions: backupfmt.ReadOptions{Name: evil.Archive}})
				if err != nil {
					t.Fatal(err)
				}
				seal := archiver.Seal(mustKeys(t, verifier), evil.Archive, rep.ArchiveSHA256, rep.ManifestSHA256)
				if _, err := e.store.Put(e.ctx, evil.Archive, bytes.NewReader(evilBytes), backupstore.WithSeal(seal)); err != nil {
					t.Fatal(err)
				}
				rec := e.final(e.submit(jobspec.RestoreArgs{Archive: evil.Archive, Components: []string{backupfmt.ComponentSystem}, SkipSafetyBackup: true}))
				if rec.State != jobs.Succeeded {
					t.Fatalf("restore of the signed payload: %s %+v", rec.State, rec.Error)
				}
				if !slices.ContainsFunc(e.state().System["users"], func(r string) bool { return strings.Contains(r, "mallory") }) {
					t.Error("the signed payload did not bring mallory in: the refusals above prove nothing")
				}
			})
		})
	}
}

func mustKeys(t *testing.T, a *archiver.Archiver) *archivesig.Keyring {
	t.Helper()
	k, err := a.Keys()
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// noPrivateCopies fails when an authenticated copy of an archive was left
// in a scratch directory.
func noPrivateCopies(t *testing.T, dirs ...string) {
	t.Helper()
	for _, dir := range dirs {
		entries, err := os.ReadDir(dir)
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		for _, en := range entries {
			if strings.HasPrefix(en.Name(), ".archive-") {
				t.Errorf("private archive copy %s left in %s", en.Name(), dir)
			}
		}
	}
}

// TestDumpWithForeignObjectsIsNotRestored: a PostgreSQL System DB into
// which someone slipped a trigger function that makes every new user an
// admin is backed up (and signed: the backup job cannot tell). Its dump's
// table of contents holds a FUNCTION and a TRIGGER the schema does not
// have, so verify fails it with archive_unsafe and restore refuses it with
// archive_unsafe before anything is restored: no safety backup, every
// store as it was.
func TestDumpWithForeignObjectsIsNotRestored(t *testing.T) {
	t.Parallel()
	e := newEnv(t, testkit.PostgreSQL)
	e.seed()
	e.exec(`CREATE FUNCTION public.grant_admin() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN NEW.role := 'admin'; RETURN NEW; END $$`)
	e.exec(`CREATE TRIGGER users_grant BEFORE INSERT ON public.users FOR EACH ROW EXECUTE FUNCTION public.grant_admin()`)
	tainted := e.backup()
	e.exec(`DROP TRIGGER users_grant ON public.users`)
	e.exec(`DROP FUNCTION public.grant_admin()`)
	before := e.state()
	listed := e.archives()

	_, err := archiver.New(e.deps, archiver.Options{Store: e.store}).Verify(e.ctx, tainted.Archive, archiver.Run{JobID: jobs.NewID()})
	if got := jobs.ErrorOf(err); err == nil || got.Code != jobs.CodeArchiveUnsafe || !strings.Contains(err.Error(), "FUNCTION public grant_admin()") {
		t.Errorf("verify: %v (code %s), want %s naming the function", err, got.Code, jobs.CodeArchiveUnsafe)
	}
	rec := e.final(e.submit(jobspec.RestoreArgs{Archive: tainted.Archive}))
	if rec.State != jobs.Failed || rec.Error == nil || rec.Error.Code != jobs.CodeArchiveUnsafe || rec.Attempt != 1 {
		t.Fatalf("restore: %s, attempt %d, error %+v; want failed once with %s", rec.State, rec.Attempt, rec.Error, jobs.CodeArchiveUnsafe)
	}
	t.Logf("refused: %s", rec.Error.Message)
	sameStores(t, "after the refused restore", e.state(), before)
	if got := e.archives(); !slices.Equal(got, listed) {
		t.Errorf("archives %v after the refused restore, want %v (no safety backup)", got, listed)
	}
	var n int
	if err := e.db.SQL.QueryRowContext(e.ctx, `SELECT count(*) FROM pg_proc WHERE proname = 'grant_admin'`).Scan(&n); err != nil || n != 0 {
		t.Errorf("grant_admin functions after the refused restore: %d (%v)", n, err)
	}
}
