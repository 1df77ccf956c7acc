package backupfmt

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/oklog/ulid/v2"
)

// ErrBadName is wrapped by every error ParseArchiveName returns: the name is
// not exactly backup-<yyyymmddThhmmssZ>-<ULID>.tar.gz|.tar.zst, optionally
// followed by .age (EncryptedExt).
var ErrBadName = errors.New("not a backup archive name")

// Compression is the compression of the tar stream, as BACKUP_COMPRESSION spells it.
type Compression string

// The compressions of an archive.
const (
	Gzip Compression = "gzip"
	Zstd Compression = "zstd"
)

// ParseCompression accepts the BACKUP_COMPRESSION values "gzip" and "zstd".
func ParseCompression(s string) (Compression, error) {
	switch c := Compression(s); c {
	case Gzip, Zstd:
		return c, nil
	}
	return "", fmt.Errorf("compression %q: accepted values: gzip, zstd", s)
}

// Ext is the file name suffix of an archive with this compression:
// ".tar.gz" or ".tar.zst" ("" for an unknown compression).
func (c Compression) Ext() string {
	switch c {
	case Gzip:
		return ".tar.gz"
	case Zstd:
		return ".tar.zst"
	}
	return ""
}

// EncryptedExt follows the compression's suffix in the name of an archive
// encrypted with age (package backupcrypt): backup-…-<id>.tar.zst.age is
// the age ciphertext of a zstd-compressed archive.
const EncryptedExt = ".age"

// TimeLayout is the layout of the creation time in an archive name (UTC).
const TimeLayout = "20060102T150405Z"

const namePrefix = "backup-"

// Name is a parsed archive name.
type Name struct {
	Created     time.Time // UTC, whole seconds
	JobID       string    // canonical (upper case) ULID
	Compression Compression
	// Encrypted: the stored bytes are the age ciphertext of the
	// compressed archive (the name ends in EncryptedExt).
	Encrypted bool
}

// String formats n as ArchiveName does, with EncryptedExt when encrypted.
func (n Name) String() string {
	s := ArchiveName(n.Created, n.JobID, n.Compression)
	if n.Encrypted {
		s += EncryptedExt
	}
	return s
}

// ArchiveName returns backup-<UTC yyyymmddThhmmssZ>-<jobID><ext>, ext being
// .tar.gz (Gzip) or .tar.zst (Zstd). created is truncated to the second.
// It does not validate jobID; ParseArchiveName does.
func ArchiveName(created time.Time, jobID string, c Compression) string {
	return namePrefix + created.UTC().Format(TimeLayout) + "-" + jobID + c.Ext()
}

// ParseArchiveName is the only gate for archive names coming from the
// outside (URLs, directory listings, object names). It accepts exactly what
// ArchiveName produces for a canonical ULID job id and a valid time, and
// nothing else: no slashes, dots other than the suffix, NUL bytes, spaces,
// lower-case ULIDs, or other suffixes. A name ending in EncryptedExt after
// the compression's suffix is an encrypted archive (Name.Encrypted).
// Every error wraps ErrBadName.
func ParseArchiveName(name string) (Name, error) {
	bad := func(why string) (Name, error) {
		return Name{}, fmt.Errorf("%w: %q: %s", ErrBadName, truncate(name, 80), why)
	}
	const tsLen, idLen = len(TimeLayout), ulid.EncodedSize
	rest, ok := strings.CutPrefix(name, namePrefix)
	if !ok {
		return bad("does not start with " + namePrefix)
	}
	rest, encrypted := strings.CutSuffix(rest, EncryptedExt)
	var c Compression
	switch {
	case strings.HasSuffix(rest, Gzip.Ext()):
		c, rest = Gzip, strings.TrimSuffix(rest, Gzip.Ext())
	case strings.HasSuffix(rest, Zstd.Ext()):
		c, rest = Zstd, strings.TrimSuffix(rest, Zstd.Ext())
	default:
		return bad("suffix is neither .tar.gz nor .tar.zst (optionally followed by .age)")
	}
	if len(rest) != tsLen+1+idLen || rest[tsLen] != '-' {
		return bad("expected <yyyymmddThhmmssZ>-<26-character job id>")
	}
	ts, id := rest[:tsLen], rest[tsLen+1:]
	for i := range len(ts) {
		ch := ts[i]
		if (i == 8 && ch != 'T') || (i == tsLen-1 && ch != 'Z') || (i != 8 && i != tsLen-1 && (ch < '0' || ch > '9')) {
			return bad("creation time is not yyyymmddThhmmssZ")
		}
	}
	created, err := time.Parse(TimeLayout, ts)
	if err != nil || created.Format(TimeLayout) != ts {
		return bad("creation time is not a valid UTC time")
	}
	u, err := ulid.ParseStrict(id)
	if err != nil || u.String() != id {
		return bad("job id is not a canonical ULID")
	}
	return Name{Created: created.UTC(), JobID: id, Compression: c, Encrypted: encrypted}, nil
}

// ValidJobID reports whether id is a canonical (upper-case) ULID, the only
// job id an archive name may carry.
func ValidJobID(id string) bool {
	u, err := ulid.ParseStrict(id)
	return err == nil && u.String() == id
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
