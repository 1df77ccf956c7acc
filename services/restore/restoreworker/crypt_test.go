package restoreworker_test

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/insightops/insightops/shared/archiver"
	"github.com/insightops/insightops/shared/backupcrypt"
	"github.com/insightops/insightops/shared/backupcrypt/agetest"
	"github.com/insightops/insightops/shared/jobs"
	"github.com/insightops/insightops/shared/jobspec"
	"github.com/insightops/insightops/shared/testkit"
)

// TestEncryptedBackupVerifyRestoreAndKeyRotation: with age encryption on,
// on SQLite and PostgreSQL, a full backup → verify → restore round trip,
// then a key rotation: the archive made under key A is restored after
// BACKUP_AGE_RECIPIENTS moved to B while the identity file holds A and B,
// a new archive is made under B, and once A is dropped from the identity
// file the old archive fails with archive_decrypt_failed and nothing is
// changed; the safety backups are encrypted too.
func TestEncryptedBackupVerifyRestoreAndKeyRotation(t *testing.T) {
	t.Parallel()
	for _, d := range testkit.Dialects {
		t.Run(d.Name, func(t *testing.T) {
			t.Parallel()
			a, b := agetest.NewKey(t), agetest.NewKey(t)
			idFile := filepath.Join(t.TempDir(), "identity.txt")
			agetest.WriteIdentities(t, idFile, a)
			e := newEnvVars(t, d, map[string]string{"BACKUP_AGE_RECIPIENTS": a.Recipient, "BACKUP_AGE_IDENTITY_FILE": idFile})
			e.seed()
			seeded := e.state()
			old := e.backup()
			if !strings.HasSuffix(old.Archive, ".age") || old.Encryption == nil || old.Encryption.Recipients[0] != backupcrypt.Fingerprint(a.Recipient) {
				t.Fatalf("archive %s, encryption %+v", old.Archive, old.Encryption)
			}
			v, err := archiver.New(e.deps, archiver.Options{Store: e.store}).Verify(e.ctx, old.Archive, archiver.Run{JobID: jobs.NewID()})
			if err != nil || v.Outcome != "passed" {
				t.Fatalf("verify: %+v %v", v, err)
			}

			// Rotate: the identity file holds A and B; new archives go to B.
			agetest.WriteIdentities(t, idFile, a, b)
			e.mutate()
			rec := e.final(e.submit(jobspec.RestoreArgs{Archive: old.Archive}))
			if rec.State != jobs.Succeeded {
				t.Fatalf("restore of the archive made under A: %s, error %+v", rec.State, rec.Error)
			}
			res := resultOf(t, rec)
			if !res.CountsOK || res.ArchiveSHA256 != old.SHA256 {
				t.Errorf("result: counts ok %v %v, archive sha256 %s want %s (the stored bytes')", res.CountsOK, res.CountProblems, res.ArchiveSHA256, old.SHA256)
			}
			sameStores(t, "after restoring the encrypted archive", e.state(), seeded)
			if res.SafetyBackup == nil || !strings.HasSuffix(res.SafetyBackup.Archive, ".age") {
				t.Fatalf("safety backup %+v: want an encrypted archive", res.SafetyBackup)
			}
			if m, err := e.store.Meta(e.ctx, res.SafetyBackup.Archive); err != nil || m.Encryption == nil || m.Encryption.CiphertextSHA256 != res.SafetyBackup.SHA256 {
				t.Errorf("safety backup's meta %+v %v: want its encryption record", m, err)
			}
			depsB := e.deps
			depsB.Config.BackupAgeRecipients = b.Recipient
			fresh, err := archiver.Create(e.ctx, depsB, jobspec.BackupCreateArgs{}, archiver.Run{JobID: jobs.NewID()})
			if err != nil {
				t.Fatal(err)
			}
			if r := fresh.Encryption.Recipients; len(r) != 1 || r[0] != backupcrypt.Fingerprint(b.Recipient) {
				t.Fatalf("new archive's recipients %v, want B's", r)
			}

			// Drop A: the old archive fails with the clear code, nothing changes.
			agetest.WriteIdentities(t, idFile, b)
			before := e.state()
			listed := e.archives()
			rec = e.final(e.submit(jobspec.RestoreArgs{Archive: old.Archive}))
			if rec.State != jobs.Failed || rec.Error == nil || rec.Error.Code != jobs.CodeArchiveDecryptFailed || rec.Attempt != 1 {
				t.Fatalf("restore after A was dropped: %s, attempt %d, error %+v; want failed once with %s", rec.State, rec.Attempt, rec.Error, jobs.CodeArchiveDecryptFailed)
			}
			t.Logf("refused: %s", rec.Error.Message)
			sameStores(t, "after the refused restore", e.state(), before)
			if got := e.archives(); strings.Join(got, ",") != strings.Join(listed, ",") {
				t.Errorf("archives %v, want %v (no safety backup)", got, listed)
			}
			e.noLocksHeld()
		})
	}
}
