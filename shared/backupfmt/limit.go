package backupfmt

import (
	"errors"
	"fmt"
	"io"
)

// DefaultMaxDecompressed is the cap on the decompressed size of an archive
// when ReadOptions.MaxDecompressed is zero (the default of
// BACKUP_MAX_DECOMPRESSED): 32 GiB.
const DefaultMaxDecompressed int64 = 32 << 30

// Tar overhead a reader allows beyond the manifest's sizes when
// ReadOptions.Expect is set: per entry a header, PAX records and the padding
// to a 512-byte block; once, the end-of-archive blocks and slack for
// trailing zero records.
const (
	entryOverhead   = 8 << 10
	archiveOverhead = 64 << 10
)

// ErrDecompressionLimit is wrapped (with ErrInvalidArchive) by the *Error of
// an archive that decompresses to more than the reader allows: more than
// ReadOptions.MaxDecompressed, or, with ReadOptions.Expect, more than the
// manifest's sizes plus tar overhead. Reading stops at the limit, so a
// decompression bomb costs no more than the limit in work and nothing in
// disk beyond what a consumer wrote before (and removes on error).
var ErrDecompressionLimit = errors.New("decompression limit exceeded")

// ExpectedTarBytes is the most a tar stream holding exactly m's files may
// decompress to: their sizes, the manifest entry, and tar overhead per entry.
func ExpectedTarBytes(m Manifest) int64 {
	total, entries := int64(MaxManifestSize), int64(1)
	for _, f := range m.Files() {
		total += f.Size
		entries += int64(max(len(f.Parts), 1))
	}
	return total + entries*entryOverhead + archiveOverhead
}

// decompressionLimit is the cap of one read: the absolute one, lowered to
// the manifest's sizes with Expect. why says where it comes from.
func decompressionLimit(opts ReadOptions) (limit int64, why string) {
	limit = opts.MaxDecompressed
	if limit <= 0 {
		limit = DefaultMaxDecompressed
	}
	why = fmt.Sprintf("the cap of %d bytes (BACKUP_MAX_DECOMPRESSED)", limit)
	if opts.Expect != nil {
		if e := ExpectedTarBytes(*opts.Expect); e < limit {
			limit, why = e, fmt.Sprintf("the %d bytes its manifest allows (file sizes plus tar overhead)", e)
		}
	}
	return limit, why
}

// limitReader reads the decompressed stream and fails once it holds more
// than limit bytes, before handing any byte beyond it to the tar reader.
type limitReader struct {
	r     io.Reader
	n     int64
	limit int64
	err   error // returned once the limit is passed
}

func (l *limitReader) Read(p []byte) (int, error) {
	if l.n >= l.limit {
		// At the cap: any further byte is one too many.
		var one [1]byte
		k, err := l.r.Read(one[:])
		if k > 0 {
			return 0, l.err
		}
		return 0, err
	}
	if rem := l.limit - l.n; int64(len(p)) > rem {
		p = p[:rem]
	}
	k, err := l.r.Read(p)
	l.n += int64(k)
	return k, err
}
