package archiver

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	"github.com/insightops/insightops/shared/archivesig"
	"github.com/insightops/insightops/shared/backupfmt"
	"github.com/insightops/insightops/shared/backupstore"
	"github.com/insightops/insightops/shared/jobspec"
	"github.com/insightops/insightops/shared/metrics"
)

// errStoredSHA256 means an archive's bytes do not hash to the SHA-256 the
// store recorded when it was written.
var errStoredSHA256 = errors.New("archive SHA-256 differs from the one stored with it")

// errEncrypted means ReadManifest was given an encrypted archive: it reads
// without identities, so an encrypted archive's manifest is read only by
// a verify (which records its summary in the Meta).
var errEncrypted = errors.New("the archive is encrypted (age); only a verify where BACKUP_AGE_IDENTITY_FILE is set reads its manifest")

// ReadManifest streams an archive once and checks its structure: every
// part's and file's size and SHA-256, the manifest, the name, JSONL
// parsing, and the archive's SHA-256 against the stored one. It runs no
// database tool (backup.verify does). An archive found wrong is an error
// wrapping backupfmt.ErrInvalidArchive or errStoredSHA256, an encrypted
// one (not read) errEncrypted (Invalid says so for all three); a read
// error is returned as such.
func ReadManifest(ctx context.Context, st backupstore.Store, info backupstore.Info) (backupfmt.Manifest, error) {
	if n, err := backupfmt.ParseArchiveName(info.Name); err == nil && n.Encrypted {
		return backupfmt.Manifest{}, fmt.Errorf("%s: %w", info.Name, errEncrypted)
	}
	rc, _, err := st.Open(ctx, info.Name)
	if err != nil {
		return backupfmt.Manifest{}, err
	}
	defer rc.Close()
	rep, err := backupfmt.Verify(ctx, rc, backupfmt.VerifyOptions{ReadOptions: backupfmt.ReadOptions{Name: info.Name}})
	if err != nil {
		return backupfmt.Manifest{}, err
	}
	if info.SHA256 != "" && rep.ArchiveSHA256 != info.SHA256 {
		return backupfmt.Manifest{}, fmt.Errorf("%s: %w: stored %s, read %s", info.Name, errStoredSHA256, info.SHA256, rep.ArchiveSHA256)
	}
	return rep.Manifest, nil
}

// Invalid reports whether an error of ReadManifest says the archive
// itself is wrong (rather than unreadable now), or its signature is
// missing or wrong, or that it is encrypted and so not read there (prune
// then keeps it among the unreadable ones).
func Invalid(err error) bool {
	return errors.Is(err, backupfmt.ErrInvalidArchive) || errors.Is(err, errStoredSHA256) || errors.Is(err, errEncrypted) ||
		errors.Is(err, archivesig.ErrUnsigned) || errors.Is(err, archivesig.ErrInvalid)
}

// checkSigned checks the stored signature of info with the archiver's keys.
func (a *Archiver) checkSigned(info backupstore.Info) error {
	keys, err := a.Keys()
	if err != nil {
		return err
	}
	_, err = keys.Check(info.Name, info.SHA256, info.Signature)
	return err
}

// reuse looks for archives carrying jobID, left by an earlier attempt of
// the same job. The first that reads back intact is returned (ok) with
// its Meta set again; others, and any that does not read back, are
// deleted, so a job never leaves two archives. When encrypt (archives
// are encrypted now) or the archive is encrypted, it is deleted and made
// again.
func (a *Archiver) reuse(ctx context.Context, st backupstore.Store, jobID string, encrypt bool, log *slog.Logger) (jobspec.ArchiveSummary, bool, error) {
	infos, err := st.List(ctx)
	if err != nil {
		return jobspec.ArchiveSummary{}, false, fmt.Errorf("list archives: %w", err)
	}
	var (
		res   jobspec.ArchiveSummary
		found bool
	)
	for _, info := range infos {
		n, err := backupfmt.ParseArchiveName(info.Name)
		if err != nil || n.JobID != jobID {
			continue
		}
		if found {
			log.Warn("deleting a second archive of this job", "archive", info.Name, "kept", res.Archive)
			if err := st.Delete(ctx, info.Name); err != nil && !errors.Is(err, backupstore.ErrNotFound) {
				return jobspec.ArchiveSummary{}, false, fmt.Errorf("delete duplicate archive %s: %w", info.Name, err)
			}
			continue
		}
		if n.Encrypted || encrypt {
			// An encrypted archive is not read back here (this worker
			// may hold no identity), and a plaintext one must not stand
			// in for an encrypted one: it is made again.
			log.Warn("deleting the archive of an earlier attempt of this job; it is made again", "archive", info.Name, "encrypted", n.Encrypted)
			if err := st.Delete(ctx, info.Name); err != nil && !errors.Is(err, backupstore.ErrNotFound) {
				return jobspec.ArchiveSummary{}, false, fmt.Errorf("delete archive %s of an earlier attempt: %w", info.Name, err)
			}
			continue
		}
		m, err := ReadManifest(ctx, st, info)
		if err == nil {
			// Only an archive this deployment signed is this job's.
			err = a.checkSigned(info)
		}
		switch {
		case err == nil:
			if _, err := RecordSummary(ctx, st, info, m); err != nil {
				return jobspec.ArchiveSummary{}, false, err
			}
			res = jobspec.ArchiveSummary{Archive: info.Name, SHA256: info.SHA256, Bytes: info.Size, Components: Summarize(m), Reused: true, Manifest: m}
			found = true
			metrics.BackupBytes.Set(float64(info.Size))
			metrics.LastBackupSuccess.SetToCurrentTime()
			log.Info("reusing the archive of an earlier attempt of this job", "archive", info.Name)
		case Invalid(err):
			log.Warn("deleting an unusable archive of an earlier attempt of this job", "archive", info.Name, "err", err)
			if err := st.Delete(ctx, info.Name); err != nil && !errors.Is(err, backupstore.ErrNotFound) {
				return jobspec.ArchiveSummary{}, false, fmt.Errorf("delete unusable archive %s: %w", info.Name, err)
			}
		case errors.Is(err, backupstore.ErrNotFound):
			// Deleted meanwhile (prune): nothing to reuse.
		default:
			return jobspec.ArchiveSummary{}, false, fmt.Errorf("read archive %s of an earlier attempt: %w", info.Name, err)
		}
	}
	return res, found, nil
}

// RecordSummary stores the manifest summary of an archive as its Meta,
// keeping what its Meta already held that the manifest cannot say (the
// verification and drill results, the encryption record, the pin), and
// returns that Meta.
func RecordSummary(ctx context.Context, st backupstore.Store, info backupstore.Info, m backupfmt.Manifest) (backupstore.Meta, error) {
	meta := backupstore.Summary(m)
	meta.Verification = info.Meta.Verification
	meta.Encryption = info.Meta.Encryption
	meta.Drill = info.Meta.Drill
	meta.Pinned = info.Meta.Pinned
	if err := st.SetMeta(ctx, info.Name, meta); err != nil {
		return meta, fmt.Errorf("record the summary of %s: %w", info.Name, err)
	}
	return meta, nil
}
