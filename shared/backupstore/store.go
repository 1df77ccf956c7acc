// Package backupstore keeps backup archives: in a local directory
// (BACKUP_STORE=local, BACKUP_DIR) or in the JetStream Object Store bucket
// BACKUPS (BACKUP_STORE=nats, shared by every pod), behind one small
// interface, Store.
//
// An archive becomes visible to List and Open only once it is complete:
// a failed or cancelled Put leaves nothing listed. Every name from the
// outside goes through backupfmt.ParseArchiveName before anything else
// happens: an invalid name is ErrNotFound (and backupfmt.ErrBadName) and no
// path or object name is ever built from it. Each archive has its SHA-256,
// computed while it was written, and a small JSON Meta (manifest summary,
// verification result) kept beside it, so List answers without reopening
// archives.
//
// Local layout, in BACKUP_DIR:
//
//	backup-<time>-<id>.tar.gz             the archive (mode 0600)
//	backup-<time>-<id>.tar.gz.sha256      "<hex>  <name>": sha256sum -c checks it
//	backup-<time>-<id>.tar.gz.sig         its signature (archivesig), when sealed
//	backup-<time>-<id>.tar.gz.meta.json   Meta, once set
//	.tmp-<random>                         a Put or SetMeta in progress
//
// Put writes .tmp-<random> (never a valid archive name, so a crash never
// lists a partial archive), fsyncs it, writes the .sha256 sidecar
// and .sig sidecars (temp, fsync, rename), renames the archive into place, fsyncs the
// directory. The rename is the commit. NewLocal removes temp files and
// orphaned sidecars older than an hour. An archive copied in by hand is
// listed with an empty SHA256 until its sidecar exists
// (sha256sum backup-….tar.gz > backup-….tar.gz.sha256).
//
// In NATS the object store's own Put is the commit: chunks are published
// first and the object's meta message last, so a failed or cancelled Put
// (whose chunks are purged) is never listed; nats.go publishes that meta
// before the chunks' acks are in, so when a late chunk is refused (a full
// bucket) the meta it left is purged too. The SHA-256 is the object's
// digest, computed by the client while streaming the chunks and stored in
// the meta message; Meta is kept in the object's metadata, and so is the
// signature of a sealed Put: it is set in the metadata when the last
// chunk has been read, before the client publishes the meta message, so
// it is part of the commit (Put checks that it came back and otherwise
// deletes the object and fails).
//
// NATS layout, in the stream OBJ_BACKUPS:
//
//	$O.BACKUPS.C.<nuid>                   an object's chunks (a fresh NUID per Put)
//	$O.BACKUPS.M.<base64url name>         its meta (ObjectInfo, naming the NUID); a delete marker once deleted
//
// A writer killed during a Put (or between a replace or delete and the
// purge of the old chunks) leaves chunks no live meta names. Put and
// Delete purge such chunks once their last message is older than
// StaleAfter (NATS.RemoveStale, at most every StaleAfter/4): they need the
// purge right anyway, which the API's read-only NATS user lacks, so
// NewNATS removes nothing.
package backupstore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/insightops/insightops/shared/backupfmt"
	"github.com/insightops/insightops/shared/config"
)

// Errors of a Store. An invalid name is ErrNotFound and
// backupfmt.ErrBadName at once (errors.Is matches both) for Open, Delete,
// Meta and SetMeta; Put of an invalid name is backupfmt.ErrBadName.
//
// ErrNoSpace is wrapped (beside the system error) by a Put or SetMeta that
// failed because the volume under BACKUP_DIR is full (ENOSPC) or the
// writer's quota is spent (EDQUOT), or, in NATS, because JetStream refused
// a message of the bucket: its MaxBytes, the server's JetStream storage or
// the account's limit reached (see natsfull.go). Retrying at once cannot
// help: an operator has to prune archives or grow the volume or limit.
var (
	ErrNotFound = errors.New("backup archive not found")
	ErrExists   = errors.New("backup archive already exists")
	ErrNoSpace  = errors.New("backup store is out of space")
)

// MaxMetaSize bounds the JSON of a Meta.
const MaxMetaSize = 64 << 10

// Store keeps archives.
type Store interface {
	// Put streams an archive under name (backupfmt.ParseArchiveName must
	// accept it). It becomes visible to List and Open only when complete; a
	// failed or cancelled Put (ctx cancelled or r failing mid-stream)
	// leaves nothing listed. An existing name is ErrExists: archives are
	// immutable.
	//
	// With WithSeal, the seal is called once every byte was read, with
	// their SHA-256, and its result is committed with the archive (the
	// archive is never listed without it); a seal error fails the Put.
	Put(ctx context.Context, name string, r io.Reader, opts ...PutOption) (Info, error)
	// List returns the complete archives whose names ParseArchiveName
	// accepts, newest first (Info.Created, then name).
	List(ctx context.Context) ([]Info, error)
	// Open streams an archive. Unknown and invalid names are ErrNotFound.
	Open(ctx context.Context, name string) (io.ReadCloser, Info, error)
	// Delete removes an archive and what is kept beside it.
	Delete(ctx context.Context, name string) error
	// SetMeta replaces the archive's Meta.
	SetMeta(ctx context.Context, name string, m Meta) error
	// Meta returns the archive's Meta (zero if never set).
	Meta(ctx context.Context, name string) (Meta, error)
	// Describe says where archives live, for logs and health answers.
	Describe() string
}

// Info describes a stored archive.
type Info struct {
	Name     string
	Size     int64
	Modified time.Time // when it was stored
	// SHA256 of the whole archive, computed while it was written; empty for
	// a local archive copied in by hand without its .sha256 sidecar.
	SHA256 string
	// Created is the manifest's created_at when Meta has it, else the time
	// in the name.
	Created time.Time
	Meta    Meta
	// Signature is the archive's signature (package archivesig), stored
	// with it by a sealed Put; empty for an unsigned archive. The store
	// only keeps it: checking it is archivesig's job.
	Signature string
}

// MaxSignatureSize bounds a stored signature.
const MaxSignatureSize = 1 << 10

// Seal returns the signature of an archive whose bytes have the SHA-256
// sum (hex), all of them written but not yet committed.
type Seal func(sum string) (string, error)

// PutOption configures one Put.
type PutOption func(*putOptions)

type putOptions struct {
	seal Seal
}

// WithSeal makes Put store the signature seal returns with the archive,
// committed together: the archive is never listed unsigned.
func WithSeal(seal Seal) PutOption {
	return func(o *putOptions) { o.seal = seal }
}

func putOpts(opts []PutOption) putOptions {
	var o putOptions
	for _, f := range opts {
		f(&o)
	}
	return o
}

// sealed runs the seal of o (none: "") and checks what it returns.
func (o putOptions) sealed(name, sum string) (string, error) {
	if o.seal == nil {
		return "", nil
	}
	sig, err := o.seal(sum)
	if err != nil {
		return "", fmt.Errorf("sign %s: %w", name, err)
	}
	if sig == "" || len(sig) > MaxSignatureSize || strings.ContainsAny(sig, "\r\n") {
		return "", fmt.Errorf("sign %s: the seal returned an unusable signature", name)
	}
	return sig, nil
}

// Meta is the small JSON kept beside an archive: the summary of its
// manifest (set by the backup job) and the outcome of its last verification.
type Meta struct {
	CreatedAt  time.Time         `json:"created_at,omitzero"`
	JobID      string            `json:"job_id,omitempty"`
	AppVersion string            `json:"app_version,omitempty"`
	Note       string            `json:"note,omitempty"`
	Components []string          `json:"components,omitempty"` // included components
	Skipped    map[string]string `json:"skipped,omitempty"`    // component → reason
	// Verification is the last verification's outcome, nil if never verified.
	Verification *Verification `json:"verification,omitempty"`
	// Drill is the outcome of the last restore drill of this archive (a
	// scheduled verification), nil if never drilled.
	Drill *Verification `json:"drill,omitempty"`
	// Pinned archives are never deleted by retention.
	Pinned bool `json:"pinned,omitempty"`
	// Encryption records how the archive was encrypted at rest (nil: a
	// plaintext archive): recipient fingerprints, plaintext and
	// ciphertext digests.
	Encryption *backupfmt.Encryption `json:"encryption,omitempty"`
}

// Verification outcomes.
const (
	OutcomePassed = "passed"
	OutcomeFailed = "failed"
)

// Verification is the outcome of a verify job.
type Verification struct {
	VerifiedAt time.Time `json:"verified_at"`
	Outcome    string    `json:"outcome"`          // OutcomePassed or OutcomeFailed
	Error      string    `json:"error,omitempty"`  // the first problem, e.g. "target/vanna_db.db: sha256 mismatch"
	JobID      string    `json:"job_id,omitempty"` // the verify job
}

// Verified reports whether the last verification passed.
func (m Meta) Verified() bool {
	return m.Verification != nil && m.Verification.Outcome == OutcomePassed
}

// Summary returns the Meta of a manifest (without a verification).
func Summary(m backupfmt.Manifest) Meta {
	s := Meta{CreatedAt: m.CreatedAt, JobID: m.JobID, AppVersion: m.AppVersion, Note: m.Note, Components: m.Included()}
	for _, c := range backupfmt.Components {
		if comp, ok := m.Components[c]; ok && comp.Status == backupfmt.StatusSkipped {
			if s.Skipped == nil {
				s.Skipped = map[string]string{}
			}
			s.Skipped[c] = comp.Reason
		}
	}
	return s
}

func encodeMeta(m Meta) ([]byte, error) {
	b, err := json.Marshal(m)
	if err != nil {
		return nil, fmt.Errorf("encode meta: %w", err)
	}
	if len(b) > MaxMetaSize {
		return nil, fmt.Errorf("meta: %d bytes, more than %d", len(b), MaxMetaSize)
	}
	return b, nil
}

func decodeMeta(b []byte) (Meta, error) {
	var m Meta
	if len(b) == 0 {
		return m, nil
	}
	if err := json.Unmarshal(b, &m); err != nil {
		return Meta{}, fmt.Errorf("decode meta: %w", err)
	}
	return m, nil
}

// checkName validates a name from the outside: ErrNotFound and ErrBadName.
func checkName(op, name string) error {
	if _, err := backupfmt.ParseArchiveName(name); err != nil {
		return fmt.Errorf("backup store: %s: %w: %w", op, ErrNotFound, err)
	}
	return nil
}

// created is Info.Created: the manifest's time if known, else the name's.
func created(name string, m Meta) time.Time {
	if !m.CreatedAt.IsZero() {
		return m.CreatedAt.UTC()
	}
	n, err := backupfmt.ParseArchiveName(name)
	if err != nil {
		return time.Time{}
	}
	return n.Created
}

func sortInfos(infos []Info) {
	sort.Slice(infos, func(i, j int) bool {
		if !infos[i].Created.Equal(infos[j].Created) {
			return infos[i].Created.After(infos[j].Created)
		}
		return infos[i].Name > infos[j].Name
	})
}

// FromConfig opens the store BACKUP_STORE selects: local (BACKUP_DIR),
// nats (bucket BACKUPS with NATS_REPLICAS replicas; js is required then)
// or s3 (BACKUP_S3_*, see s3.go).
func FromConfig(ctx context.Context, cfg config.Config, js jetstream.JetStream) (Store, error) {
	switch cfg.BackupStore {
	case "", "local":
		return NewLocal(cfg.BackupDir)
	case "nats":
		if js == nil {
			return nil, errors.New("backup store: BACKUP_STORE=nats needs a JetStream connection")
		}
		return NewNATS(ctx, js, cfg.NATSReplicas)
	case "s3":
		return NewS3(ctx, cfg.BackupS3)
	}
	return nil, fmt.Errorf("backup store: BACKUP_STORE=%q: accepted values: local, nats, s3", cfg.BackupStore)
}
