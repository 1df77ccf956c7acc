package archiver

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/insightops/insightops/shared/backupcrypt"
	"github.com/insightops/insightops/shared/backupcrypt/agetest"
	"github.com/insightops/insightops/shared/backupfmt"
	"github.com/insightops/insightops/shared/jobs"
	"github.com/insightops/insightops/shared/jobspec"
	"github.com/insightops/insightops/shared/testkit"
)

// withRecipients is an archiver over e's store and deps whose
// configuration encrypts to recipients (a rotated BACKUP_AGE_RECIPIENTS).
func (e *env) withRecipients(recipients ...string) *Archiver {
	deps := e.deps
	deps.Config.BackupAgeRecipients = strings.Join(recipients, ",")
	return New(deps, Options{Store: e.st, ChunkSize: 64 << 10, LockWait: -1})
}

func sha256File(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// TestEncryptedArchiveIsUnreadableByTarAndDecryptsWithTheAgeCLI: with
// BACKUP_AGE_RECIPIENTS the stored archive is the age ciphertext of the
// compressed tar (compress, then encrypt), named ….tar.zst.age; tar cannot
// read it, Debian's age CLI decrypts it into an archive tar lists; the
// encryption record (fingerprints, both digests) is in the result and the
// Meta; the signature covers the ciphertext; verify decrypts and passes.
func TestEncryptedArchiveIsUnreadableByTarAndDecryptsWithTheAgeCLI(t *testing.T) {
	t.Parallel()
	ageCLI, err := exec.LookPath("age")
	if err != nil {
		testkit.Unavailable(t, "the age CLI (apt-get install age)", err)
	}
	k1, k2 := agetest.NewKey(t), agetest.NewKey(t)
	idFile := filepath.Join(t.TempDir(), "identity.txt")
	agetest.WriteIdentities(t, idFile, k2)
	e := newEnv(t, envOpts{Vars: map[string]string{
		"BACKUP_COMPRESSION": "zstd", "BACKUP_AGE_RECIPIENTS": k1.Recipient + "," + k2.Recipient, "BACKUP_AGE_IDENTITY_FILE": idFile,
	}})
	res := e.create(jobspec.BackupCreateArgs{Components: []string{"system", "target"}})
	if !strings.HasSuffix(res.Archive, ".tar.zst.age") {
		t.Fatalf("archive %s: want a .tar.zst.age name", res.Archive)
	}
	path := e.archivePath(res.Archive)
	enc := res.Encryption
	if enc == nil || enc.Method != "age" || len(enc.Recipients) != 2 ||
		enc.Recipients[0] != backupcrypt.Fingerprint(k1.Recipient) || enc.Recipients[1] != backupcrypt.Fingerprint(k2.Recipient) {
		t.Fatalf("encryption record %+v", enc)
	}
	if enc.CiphertextSHA256 != res.SHA256 || enc.CiphertextBytes != res.Bytes || sha256File(t, path) != res.SHA256 || enc.PlaintextSHA256 == res.SHA256 {
		t.Fatalf("digests: record %+v, result %s %d, file %s", enc, res.SHA256, res.Bytes, sha256File(t, path))
	}
	infos := e.listed()
	if len(infos) != 1 || infos[0].SHA256 != res.SHA256 || infos[0].Meta.Encryption == nil || infos[0].Meta.Encryption.Recipients[0] != enc.Recipients[0] ||
		infos[0].Meta.Encryption.PlaintextSHA256 != enc.PlaintextSHA256 {
		t.Fatalf("listed %+v", infos)
	}
	// The signature is over the stored (encrypted) bytes.
	keys, err := e.a.Keys()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := keys.Check(res.Archive, sha256File(t, path), infos[0].Signature); err != nil {
		t.Fatalf("the signature does not cover the ciphertext: %v", err)
	}

	// tar cannot read it, with or without --zstd; neither can zstd.
	for _, args := range [][]string{{"-tf", path}, {"--zstd", "-tf", path}, {"-tzf", path}} {
		out, err := exec.Command("tar", args...).CombinedOutput()
		if err == nil || bytes.Contains(out, []byte(backupfmt.ManifestName)) {
			t.Errorf("tar %v read the encrypted archive: %v\n%s", args, err, out)
		}
	}
	if out, err := exec.Command("zstd", "-t", "-q", path).CombinedOutput(); err == nil {
		t.Errorf("zstd -t accepted the encrypted archive: %s", out)
	}
	if bytes.Contains(mustRead(t, path), []byte("manifest.json")) {
		t.Errorf("the ciphertext holds the string manifest.json")
	}

	// Debian's age CLI decrypts it with the second recipient's identity.
	plain := filepath.Join(t.TempDir(), "archive.tar.zst")
	run(t, "", ageCLI, "-d", "-i", idFile, "-o", plain, path)
	if got := sha256File(t, plain); got != enc.PlaintextSHA256 {
		t.Fatalf("age -d gave sha256 %s, the record says %s", got, enc.PlaintextSHA256)
	}
	listing := strings.Fields(run(t, "", "tar", "--zstd", "-tf", plain))
	if len(listing) == 0 || listing[len(listing)-1] != backupfmt.ManifestName {
		t.Fatalf("tar -tf of the decrypted archive: %v", listing)
	}
	dir := extract(t, plain, true)
	if m := readManifestFile(t, dir); m.JobID != res.Manifest.JobID || m.Compression != backupfmt.Zstd {
		t.Fatalf("decrypted manifest %+v", m)
	}

	// Verify decrypts (after the signature check) and passes; the
	// result names the stored bytes.
	v, err := e.a.Verify(context.Background(), res.Archive, Run{JobID: jobs.NewID(), Log: e.deps.Log})
	if err != nil || v.Outcome != "passed" || v.SHA256 != res.SHA256 {
		t.Fatalf("verify: %+v %v", v, err)
	}
	if m, err := e.st.Meta(context.Background(), res.Archive); err != nil || m.Encryption == nil || !m.Verified() {
		t.Fatalf("meta after verify (the record must stay): %+v %v", m, err)
	}
}

func mustRead(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestEncryptionKeyRotation: an archive made under key A verifies (a full
// test restore of each part) after rotating to B while the identity file
// holds A and B; a new archive is encrypted to B only; with A dropped the
// old archive fails with archive_decrypt_failed and the new one verifies;
// without any identity file, archive_encrypted_no_identity.
func TestEncryptionKeyRotation(t *testing.T) {
	t.Parallel()
	a, b := agetest.NewKey(t), agetest.NewKey(t)
	idFile := filepath.Join(t.TempDir(), "identity.txt")
	agetest.WriteIdentities(t, idFile, a)
	e := newEnv(t, envOpts{Vars: map[string]string{"BACKUP_AGE_RECIPIENTS": a.Recipient, "BACKUP_AGE_IDENTITY_FILE": idFile}})
	ctx := context.Background()
	verify := func(ar *Archiver, name string) error {
		_, err := ar.Verify(ctx, name, Run{JobID: jobs.NewID(), Log: e.deps.Log})
		return err
	}
	old := e.create(jobspec.BackupCreateArgs{Components: []string{"system", "target"}})
	if !strings.HasSuffix(old.Archive, ".tar.gz.age") {
		t.Fatalf("archive %s", old.Archive)
	}

	// Rotate: new recipient B, identity file holding A and B.
	agetest.WriteIdentities(t, idFile, a, b)
	rotated := e.withRecipients(b.Recipient)
	if err := verify(rotated, old.Archive); err != nil {
		t.Fatalf("the old archive with A and B in the identity file: %v", err)
	}
	fresh, err := rotated.Create(ctx, jobspec.BackupCreateArgs{Components: []string{"system", "target"}}, Run{JobID: jobs.NewID(), Log: e.deps.Log})
	if err != nil {
		t.Fatal(err)
	}
	if got := fresh.Encryption.Recipients; len(got) != 1 || got[0] != backupcrypt.Fingerprint(b.Recipient) {
		t.Fatalf("the new archive's recipients %v, want B only", got)
	}

	// Drop A: the old archive fails with the clear code, the new verifies.
	agetest.WriteIdentities(t, idFile, b)
	err = verify(rotated, old.Archive)
	if jobs.CodeOf(err) != jobs.CodeArchiveDecryptFailed || !strings.Contains(err.Error(), backupcrypt.Fingerprint(a.Recipient)) {
		t.Fatalf("the old archive without A: %v (code %q), want %s naming A's fingerprint", err, jobs.CodeOf(err), jobs.CodeArchiveDecryptFailed)
	}
	if err := verify(rotated, fresh.Archive); err != nil {
		t.Fatalf("the new archive with B: %v", err)
	}

	// No identity file at all (a verify host without the secret).
	deps := e.deps
	deps.Config.BackupAgeIdentityFile = ""
	noID := New(deps, Options{Store: e.st, LockWait: -1})
	if err := verify(noID, fresh.Archive); jobs.CodeOf(err) != jobs.CodeArchiveEncryptedNoIdentity {
		t.Fatalf("verify without an identity: %v, want %s", err, jobs.CodeArchiveEncryptedNoIdentity)
	}
	// Plaintext archives made before encryption was turned on stay valid.
	plain, err := e.withRecipients().Create(ctx, jobspec.BackupCreateArgs{Components: []string{"target"}}, Run{JobID: jobs.NewID(), Log: e.deps.Log})
	if err != nil || plain.Encryption != nil || strings.HasSuffix(plain.Archive, ".age") {
		t.Fatalf("plaintext archive %+v %v", plain, err)
	}
	if err := verify(noID, plain.Archive); err != nil {
		t.Fatalf("a plaintext archive without an identity: %v", err)
	}
}
