package archiver

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/insightops/insightops/shared/archivesig"
	"github.com/insightops/insightops/shared/backupcrypt"
	"github.com/insightops/insightops/shared/backupfmt"
	"github.com/insightops/insightops/shared/backupstore"
	"github.com/insightops/insightops/shared/ctxio"
	"github.com/insightops/insightops/shared/jobs"
)

// ErrNotSignedBytes is wrapped by OpenAuthentic's error when the
// signature verifies (the archive was signed here) but the bytes read are
// not the signed ones: corrupted or tampered with since.
var ErrNotSignedBytes = errors.New("the archive's bytes changed since it was signed")

// Authentic is an archive whose signature was checked and whose bytes
// were copied into a private file (mode 0600 under the scratch directory,
// and removed from it at once where the system allows: only this
// descriptor reaches it) and found to be exactly the bytes signed.
// Everything a verify or a restore reads comes from that copy, so whoever
// can write into the backup store, or into the scratch directory, cannot
// swap bytes between the check and their use.
type Authentic struct {
	// Info is the store's description of the archive.
	Info backupstore.Info
	// Signature is the checked signature; its ManifestSHA256 is the
	// digest the archive's manifest entry must have (CheckManifest).
	Signature archivesig.Signature
	f         *os.File
	// unnamed: the copy's name was removed once it was created.
	unnamed bool
	// size and sha256 describe what Reader returns: the stored bytes, or
	// their plaintext when the archive is encrypted.
	size   int64
	sha256 string
}

// OpenAuthentic reads the archive name from st only if it is signed with
// one of keys' keys, and returns a private copy of it. In order, before
// anything else reads a byte of it:
//
//  1. the stored signature is checked against the archive's name and its
//     stored SHA-256 (an HMAC over stored data): no signature, or no
//     stored SHA-256 (a missing .sha256 sidecar), is the permanent
//     archive_unsigned; a signature that does not verify (another key, a
//     renamed archive, another digest) is the permanent
//     archive_signature_invalid;
//
//  2. the bytes are copied into the private file while hashed, at most
//     the stored size plus one byte: a copy whose SHA-256 or size is not
//     the signed one is archive_signature_invalid (the bytes were swapped
//     under a valid signature and digest).
//
//  3. an encrypted archive (its name ends in .age) is decrypted with ids
//     into a second private file, which replaces the copy: no ids is the
//     permanent archive_encrypted_no_identity, no identity matching (a
//     dropped or wrong key) or a damaged ciphertext the permanent
//     archive_decrypt_failed. The signature was checked over the
//     ciphertext first, so nothing unsigned reaches the decryption.
//
// An unknown name wraps backupstore.ErrNotFound; a read failure is
// returned as such (the caller decides whether it is retryable). Close
// removes the copy.
func OpenAuthentic(ctx context.Context, st backupstore.Store, keys *archivesig.Keyring, ids *backupcrypt.Identities, name, dir string) (*Authentic, error) {
	parsed, err := backupfmt.ParseArchiveName(name)
	if err != nil {
		return nil, jobs.Invalid("%v", err)
	}
	rc, info, err := st.Open(ctx, name)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	sig, err := keys.Check(name, info.SHA256, info.Signature)
	if err != nil {
		return nil, signatureError(name, err)
	}
	f, unnamed, err := privateFile(dir)
	if err != nil {
		return nil, fmt.Errorf("private copy of %s: %w", name, err)
	}
	a := &Authentic{Info: info, Signature: sig, f: f, unnamed: unnamed, size: info.Size, sha256: info.SHA256}
	h := sha256.New()
	n, err := io.CopyBuffer(io.MultiWriter(f, h), io.LimitReader(ctxio.Reader(ctx, rc), info.Size+1), make([]byte, 1<<20))
	if err != nil {
		a.Close()
		return nil, fmt.Errorf("read %s: %w", name, err)
	}
	if sum := hex.EncodeToString(h.Sum(nil)); sum != info.SHA256 || n != info.Size {
		a.Close()
		return nil, jobs.Permanent(jobs.CodeArchiveSignatureInvalid, fmt.Errorf("%s: %w: %w: its bytes (%d, sha256 %s) are not the signed ones (%d, sha256 %s); nothing was read from it",
			name, archivesig.ErrInvalid, ErrNotSignedBytes, n, sum, info.Size, info.SHA256))
	}
	if parsed.Encrypted {
		if err := a.decrypt(ctx, ids, dir); err != nil {
			a.Close()
			return nil, err
		}
	}
	return a, nil
}

// decrypt replaces the private copy of an encrypted archive with its
// plaintext, decrypted with ids, in a new private file under dir.
func (a *Authentic) decrypt(ctx context.Context, ids *backupcrypt.Identities, dir string) error {
	name := a.Info.Name
	if ids == nil {
		return jobs.Permanent(jobs.CodeArchiveEncryptedNoIdentity, fmt.Errorf("%s is encrypted with age (recipients %s) and this worker has no BACKUP_AGE_IDENTITY_FILE to decrypt it; nothing was read from it",
			name, recipientsOf(a.Info)))
	}
	plain, err := ids.Decrypt(io.NewSectionReader(a.f, 0, a.Info.Size))
	if err != nil {
		return jobs.Permanent(jobs.CodeArchiveDecryptFailed, fmt.Errorf("%s (encrypted to %s): %w; was its key dropped from the identity file? nothing was read from it",
			name, recipientsOf(a.Info), err))
	}
	f, unnamed, err := privateFile(dir)
	if err != nil {
		return fmt.Errorf("private plaintext copy of %s: %w", name, err)
	}
	h := sha256.New()
	src := &readErr{r: ctxio.Reader(ctx, plain)}
	n, err := io.CopyBuffer(io.MultiWriter(f, h), src, make([]byte, 1<<20))
	if err != nil {
		_ = f.Close()
		if !unnamed {
			_ = os.Remove(f.Name())
		}
		if src.err != nil && ctx.Err() == nil {
			return jobs.Permanent(jobs.CodeArchiveDecryptFailed, fmt.Errorf("%s: its ciphertext is damaged (it was damaged before it was signed): %w; nothing was changed", name, src.err))
		}
		return fmt.Errorf("decrypt %s: %w", name, err)
	}
	a.Close()
	a.f, a.unnamed, a.size, a.sha256 = f, unnamed, n, hex.EncodeToString(h.Sum(nil))
	if e := a.Info.Meta.Encryption; e != nil && e.PlaintextSHA256 != "" && e.PlaintextSHA256 != a.sha256 {
		// The Meta is not signed (the ciphertext is, and age authenticates
		// the plaintext): a mismatch says the record is not this archive's.
		return jobs.Permanent(jobs.CodeArchiveDecryptFailed, fmt.Errorf("%s: its plaintext has sha256 %s, its record says %s; nothing was changed", name, a.sha256, e.PlaintextSHA256))
	}
	return nil
}

// recipientsOf names the recipient fingerprints an archive's Meta records.
func recipientsOf(info backupstore.Info) string {
	if e := info.Meta.Encryption; e != nil && len(e.Recipients) > 0 {
		return strings.Join(e.Recipients, ", ")
	}
	return "(not recorded)"
}

// readErr remembers the error of its reader (the decryption's), to tell
// it from a write error of the copy.
type readErr struct {
	r   io.Reader
	err error
}

func (r *readErr) Read(p []byte) (int, error) {
	n, err := r.r.Read(p)
	if err != nil && err != io.EOF {
		r.err = err
	}
	return n, err
}

// signatureError gives a failed signature check its job error code.
func signatureError(name string, err error) error {
	if errors.Is(err, archivesig.ErrUnsigned) {
		return jobs.Permanent(jobs.CodeArchiveUnsigned, fmt.Errorf("%w; nothing was read from %s (an archive from elsewhere comes in through POST /admin/db/backup/import)", err, name))
	}
	return jobs.Permanent(jobs.CodeArchiveSignatureInvalid, fmt.Errorf("%w; nothing was read from %s", err, name))
}

// Reader returns a reader of the private copy from its start (the
// plaintext of an encrypted archive); each call starts again.
func (a *Authentic) Reader() io.Reader {
	return io.NewSectionReader(a.f, 0, a.size)
}

// Size is the number of bytes Reader returns: Info.Size, or the size of
// the plaintext of an encrypted archive.
func (a *Authentic) Size() int64 { return a.size }

// SHA256 is the hex SHA-256 of what Reader returns: Info.SHA256 (the
// signed digest), or that of the plaintext of an encrypted archive.
func (a *Authentic) SHA256() string { return a.sha256 }

// CheckManifest compares the SHA-256 of the archive's manifest entry (as
// a reader found it) with the signed one: archive_signature_invalid when
// they differ. The whole-archive digest already covers the manifest; this
// is the signature's own statement about it.
func (a *Authentic) CheckManifest(manifestSHA256 string) error {
	if manifestSHA256 != a.Signature.ManifestSHA256 {
		return jobs.Permanent(jobs.CodeArchiveSignatureInvalid, fmt.Errorf("%s: %w: its manifest has sha256 %s, the signature names %s",
			a.Info.Name, archivesig.ErrInvalid, manifestSHA256, a.Signature.ManifestSHA256))
	}
	return nil
}

// Unshared reports whether the private copy has no name: no other
// process can open it, so a second read (a restore's apply step, with
// backupfmt.ReadOptions.SameCopy) finds the bytes the first (its Verify)
// hashed. False where an open file cannot be removed (Windows).
func (a *Authentic) Unshared() bool { return a.unnamed }

// Close removes the private copy.
func (a *Authentic) Close() {
	_ = a.f.Close()
	if !a.unnamed {
		_ = os.Remove(a.f.Name())
	}
}

// privateFile creates a file only this process can write (mode 0600) in
// dir and removes its name, keeping the descriptor, where the system
// allows; unnamed says whether it did.
func privateFile(dir string) (f *os.File, unnamed bool, err error) {
	f, err = os.CreateTemp(dir, ".archive-*")
	if err != nil {
		return nil, false, err
	}
	return f, os.Remove(f.Name()) == nil, nil
}
