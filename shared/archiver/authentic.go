package archiver

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/insightops/insightops/shared/archivesig"
	"github.com/insightops/insightops/shared/backupstore"
	"github.com/insightops/insightops/shared/ctxio"
	"github.com/insightops/insightops/shared/jobs"
)

// ErrNotSignedBytes is wrapped by OpenAuthentic's error when the
// signature verifies (the archive was signed here) but the bytes read are
// not the signed ones: corrupted or tampered with since.
var ErrNotSignedBytes = errors.New("the archive's bytes changed since it was signed")

// Authentic is an archive whose signature was checked and whose bytes
// were copied into a private file (mode 0600 under the scratch directory)
// and found to be exactly the bytes signed. Everything a verify or a
// restore reads comes from that copy, so whoever can write into the
// backup store cannot swap bytes between the check and their use.
type Authentic struct {
	// Info is the store's description of the archive.
	Info backupstore.Info
	// Signature is the checked signature; its ManifestSHA256 is the
	// digest the archive's manifest entry must have (CheckManifest).
	Signature archivesig.Signature
	f         *os.File
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
//  2. the bytes are copied into the private file while hashed, at most
//     the stored size plus one byte: a copy whose SHA-256 or size is not
//     the signed one is archive_signature_invalid (the bytes were swapped
//     under a valid signature and digest).
//
// An unknown name wraps backupstore.ErrNotFound; a read failure is
// returned as such (the caller decides whether it is retryable). Close
// removes the copy.
func OpenAuthentic(ctx context.Context, st backupstore.Store, keys *archivesig.Keyring, name, dir string) (*Authentic, error) {
	rc, info, err := st.Open(ctx, name)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	sig, err := keys.Check(name, info.SHA256, info.Signature)
	if err != nil {
		return nil, signatureError(name, err)
	}
	f, err := os.CreateTemp(dir, ".archive-*")
	if err != nil {
		return nil, fmt.Errorf("private copy of %s: %w", name, err)
	}
	a := &Authentic{Info: info, Signature: sig, f: f}
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
	return a, nil
}

// signatureError gives a failed signature check its job error code.
func signatureError(name string, err error) error {
	if errors.Is(err, archivesig.ErrUnsigned) {
		return jobs.Permanent(jobs.CodeArchiveUnsigned, fmt.Errorf("%w; nothing was read from %s (an archive from elsewhere comes in through POST /admin/db/backup/import)", err, name))
	}
	return jobs.Permanent(jobs.CodeArchiveSignatureInvalid, fmt.Errorf("%w; nothing was read from %s", err, name))
}

// Reader returns a reader of the private copy from its start; each call
// starts again.
func (a *Authentic) Reader() io.Reader {
	return io.NewSectionReader(a.f, 0, a.Info.Size)
}

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

// Close removes the private copy.
func (a *Authentic) Close() {
	_ = a.f.Close()
	_ = os.Remove(a.f.Name())
}
