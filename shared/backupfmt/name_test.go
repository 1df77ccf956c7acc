package backupfmt

import (
	"errors"
	"strings"
	"testing"
	"time"
)

const testJobID = "01JD5ZQ8W3K9V4T7X2M6N1P0RS"

func TestArchiveNameRoundTrip(t *testing.T) {
	created := time.Date(2026, 11, 27, 10, 15, 0, 999, time.FixedZone("CET", 3600))
	for _, c := range []Compression{Gzip, Zstd} {
		name := ArchiveName(created, testJobID, c)
		want := "backup-20261127T091500Z-" + testJobID + c.Ext()
		if name != want {
			t.Fatalf("ArchiveName = %q, want %q", name, want)
		}
		n, err := ParseArchiveName(name)
		if err != nil {
			t.Fatalf("ParseArchiveName(%q): %v", name, err)
		}
		if !n.Created.Equal(created.Truncate(time.Second)) || n.JobID != testJobID || n.Compression != c || n.Created.Location() != time.UTC {
			t.Fatalf("ParseArchiveName(%q) = %+v", name, n)
		}
		if n.String() != name {
			t.Fatalf("Name.String() = %q, want %q", n.String(), name)
		}
	}
}

func TestParseArchiveNameRejects(t *testing.T) {
	good := "backup-20261127T101500Z-" + testJobID + ".tar.gz"
	if _, err := ParseArchiveName(good); err != nil {
		t.Fatalf("good name rejected: %v", err)
	}
	bad := []string{
		"",
		"backup-",
		good + ".tmp",
		".tmp-" + good,
		"/" + good,
		"./" + good,
		"../" + good,
		"x/" + good,
		good + "/",
		"backup-20261127T101500Z-" + testJobID + ".tar",
		"backup-20261127T101500Z-" + testJobID + ".tgz",
		"backup-20261127T101500Z-" + testJobID + ".tar.xz",
		"backup-20261127T101500Z-" + testJobID + ".TAR.GZ",
		"Backup-20261127T101500Z-" + testJobID + ".tar.gz",
		"backup-20261127T101500Z-" + strings.ToLower(testJobID) + ".tar.gz",             // non-canonical ULID
		"backup-20261127T101500Z-" + testJobID[:25] + ".tar.gz",                         // short id
		"backup-20261127T101500Z-" + testJobID + "X.tar.gz",                             // long id
		"backup-20261127T101500Z-8" + testJobID[1:] + ".tar.gz",                         // ULID overflow
		"backup-20261127T101500Z-" + testJobID[:10] + "IL" + testJobID[12:] + ".tar.gz", // not Crockford
		"backup-20261327T101500Z-" + testJobID + ".tar.gz",                              // month 13
		"backup-20260230T101500Z-" + testJobID + ".tar.gz",                              // Feb 30
		"backup-20261127T251500Z-" + testJobID + ".tar.gz",                              // hour 25
		"backup-20261127 101500Z-" + testJobID + ".tar.gz",
		"backup-20261127T101500-" + testJobID + "Z.tar.gz",
		"backup-2026-11-27T10:15Z-" + testJobID + ".tar.gz",
		"backup-+0261127T101500Z-" + testJobID + ".tar.gz",
		"backup-20261127T101500Z_" + testJobID + ".tar.gz",
		"backup-20261127T101500Z-" + testJobID + ".tar.gz\x00",
		"backup-20261127T101500Z-" + testJobID + "\x00.tar.gz",
		"backup-20261127T101500Z-" + testJobID + ".tar.gz ",
		" backup-20261127T101500Z-" + testJobID + ".tar.gz",
		"backup-20261127T101500Z-../../../../etc/passwd.tar.gz",
		"backup-20261127T101500Z-" + testJobID + "/../../x.tar.gz",
		"backup-x/../../y",
		"../../etc/passwd",
		"/etc/passwd",
		"backup-20261127T101500Z-" + testJobID + ".tar.gz.sha256",
		"backup-20261127T101500Z-" + testJobID + ".tar.gz.meta.json",
		"backup-20261127T101500Z-" + testJobID + ".tar.zst.tar.gz",
		"backup-20261127T101500Z-" + testJobID + "\\.tar.gz",
		"backup-２0261127T101500Z-" + testJobID + ".tar.gz",
	}
	for _, name := range bad {
		n, err := ParseArchiveName(name)
		if err == nil {
			t.Errorf("ParseArchiveName(%q) accepted: %+v", name, n)
			continue
		}
		if !errors.Is(err, ErrBadName) {
			t.Errorf("ParseArchiveName(%q): error %v does not wrap ErrBadName", name, err)
		}
	}
}

func TestParseCompression(t *testing.T) {
	for _, s := range []string{"gzip", "zstd"} {
		if c, err := ParseCompression(s); err != nil || string(c) != s {
			t.Errorf("ParseCompression(%q) = %q, %v", s, c, err)
		}
	}
	for _, s := range []string{"", "gz", "GZIP", "xz"} {
		if _, err := ParseCompression(s); err == nil || !strings.Contains(err.Error(), "accepted values: gzip, zstd") {
			t.Errorf("ParseCompression(%q) = %v, want the accepted-values refusal", s, err)
		}
	}
}

// TestEncryptedArchiveNames: an age-encrypted archive's name is the
// compression's name plus ".age"; older names stay valid and plaintext;
// ".age" anywhere else is refused.
func TestEncryptedArchiveNames(t *testing.T) {
	created := time.Date(2026, 12, 4, 15, 0, 0, 0, time.UTC)
	for _, c := range []Compression{Gzip, Zstd} {
		n := Name{Created: created, JobID: testJobID, Compression: c, Encrypted: true}
		want := "backup-20261204T150000Z-" + testJobID + c.Ext() + ".age"
		if n.String() != want {
			t.Fatalf("Name.String() = %q, want %q", n.String(), want)
		}
		got, err := ParseArchiveName(want)
		if err != nil || got != n {
			t.Fatalf("ParseArchiveName(%q) = %+v, %v", want, got, err)
		}
		plain, err := ParseArchiveName(ArchiveName(created, testJobID, c))
		if err != nil || plain.Encrypted {
			t.Fatalf("plaintext name: %+v, %v", plain, err)
		}
	}
	for _, bad := range []string{
		"backup-20261204T150000Z-" + testJobID + ".age",
		"backup-20261204T150000Z-" + testJobID + ".tar.gz.age.age",
		"backup-20261204T150000Z-" + testJobID + ".age.tar.gz",
		"backup-20261204T150000Z-" + testJobID + ".tar.zst.AGE",
		"backup-20261204T150000Z-" + testJobID + ".tar.zst.age/",
	} {
		if _, err := ParseArchiveName(bad); !errors.Is(err, ErrBadName) {
			t.Errorf("ParseArchiveName(%q) = %v, want ErrBadName", bad, err)
		}
	}
}
