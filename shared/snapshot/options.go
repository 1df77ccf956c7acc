package snapshot

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"hash"
	"io"
	"os"
)

// Kinds of System DB dump, reported in [SystemDump.Kind] and passed to
// [CheckSystem].
const (
	// KindPgDump is a pg_dump custom-format archive of a PostgreSQL System DB.
	KindPgDump = "pg_dump"
	// KindSQLite is a SQLite database file (a consistent online copy).
	KindSQLite = "sqlite"
)

// Formats reported in [SystemDump.Format] and [TargetDump.Format].
const (
	// FormatCustom is pg_dump's custom format (pg_dump -Fc).
	FormatCustom = "custom"
	// FormatSQLite3 is a SQLite 3 database file.
	FormatSQLite3 = "sqlite3"
)

// Counts maps a table name to its number of rows.
type Counts map[string]int64

// Total returns the sum of the counts: the single row count of a dump file,
// as an archive manifest records it.
func (c Counts) Total() int64 {
	var n int64
	for _, v := range c {
		n += v
	}
	return n
}

// CountUnknown is what [SystemCheck.Total] returns when the check did not
// count rows (pg_restore --list); it equals backupfmt.CountUnknown.
const CountUnknown int64 = -1

// Option adjusts a dump, check or restore.
type Option func(*options)

type options struct {
	pgDump    string
	pgRestore string
	// pgDumpCompress is pg_dump's --compress value; empty: pg_dump's default.
	pgDumpCompress string
	scratchDir     string
	progress       func(int64)
	// checked: the input already passed integrity_check and its reader
	// checks it against checkedSHA256 (see WithCheckedInput).
	checked       bool
	checkedSHA256 string
	// noDigest: the dump's bytes are not hashed (see WithoutDigest).
	noDigest bool
}

// WithPgDump makes the PostgreSQL dump run this pg_dump binary (a path, or a
// name looked up in PATH) instead of the newest one found in PATH and under
// /usr/lib/postgresql/*/bin.
func WithPgDump(path string) Option { return func(o *options) { o.pgDump = path } }

// WithPgRestore makes PostgreSQL checks and restores run this pg_restore
// binary instead of the newest one found in PATH and under
// /usr/lib/postgresql/*/bin.
func WithPgRestore(path string) Option { return func(o *options) { o.pgRestore = path } }

// WithPgDumpCompression passes --compress=spec to pg_dump (for example "0"
// for none, "6", or "zstd" with pg_dump 16+). The default is pg_dump's own
// (gzip). When the archive is compressed anyway (gzip or zstd), "0" avoids
// compressing the dump twice, which is most of the backup's CPU time.
func WithPgDumpCompression(spec string) Option { return func(o *options) { o.pgDumpCompress = spec } }

// WithScratchDir sets the directory for temporary files: SQLite copies
// (about the size of the database) and the saved audit rows of a restore.
// The default is os.TempDir(). Give a directory on a volume with room for a
// full copy of the largest database (for example under DATA_DIR), not a
// small tmpfs.
func WithScratchDir(dir string) Option { return func(o *options) { o.scratchDir = dir } }

// WithProgress registers a callback for restores and checks, called with the
// cumulative number of bytes read from the input so far (at most about once
// per MiB, and once at the end). Dumps take their progress callback as a
// parameter instead.
func WithProgress(fn func(bytes int64)) Option { return func(o *options) { o.progress = fn } }

// WithCheckedInput tells [RestoreTarget] that its input is bytes that
// already passed [CheckSQLite] (integrity_check) and hashed to digest (a
// hex SHA-256), and that its reader fails before EOF if they differ: the
// restore worker reads them through backupfmt.Walk with the manifest of
// the verification that ran that check as Expect, either hashing them
// again or, with SameCopy, from the very unnamed copy that verification
// hashed, so a differing byte never reaches the rename. The restore then
// skips its own integrity_check of the same bytes (most of a large
// restore's time) and its own hash of them (the result's SHA256 is
// digest); it still checks the header and counts the rows of the copy.
func WithCheckedInput(digest string) Option {
	return func(o *options) { o.checked, o.checkedSHA256 = true, digest }
}

// WithoutDigest tells [DumpTarget] not to hash what it writes (the
// result's SHA256 is empty) because the reader hashes it anyway: the
// archive writer hashes every file it stores, and a second SHA-256 of a
// large database is about a tenth of its backup's CPU time.
func WithoutDigest() Option { return func(o *options) { o.noDigest = true } }

func buildOptions(opts []Option) options {
	var o options
	for _, fn := range opts {
		if fn != nil {
			fn(&o)
		}
	}
	if o.scratchDir == "" {
		o.scratchDir = os.TempDir()
	}
	return o
}

// progressStep is how many bytes pass between two progress callbacks.
const progressStep = 1 << 20

// meter counts, hashes (unless h is nil) and reports the bytes written through it.
type meter struct {
	w        io.Writer
	h        hash.Hash
	n        int64
	reported int64
	fn       func(int64)
}

// newMeter counts what is written through it to w, reports it to fn, and
// hashes it when digest is set (else finish returns an empty SHA-256).
func newMeter(w io.Writer, fn func(int64), digest bool) *meter {
	m := &meter{w: w, fn: fn, reported: -1}
	if digest {
		m.h = sha256.New()
	}
	return m
}

func (m *meter) Write(p []byte) (int, error) {
	n, err := m.w.Write(p)
	if m.h != nil {
		m.h.Write(p[:n])
	}
	m.n += int64(n)
	if m.fn != nil && m.n-max(m.reported, 0) >= progressStep {
		m.fn(m.n)
		m.reported = m.n
	}
	return n, err
}

// finish reports the final count once and returns the size and hex SHA-256.
func (m *meter) finish() (int64, string) {
	if m.fn != nil && m.reported != m.n {
		m.fn(m.n)
		m.reported = m.n
	}
	if m.h == nil {
		return m.n, ""
	}
	return m.n, hex.EncodeToString(m.h.Sum(nil))
}

// countingReader counts and reports the bytes read through it, and stops
// with the context's error once the context is done.
type countingReader struct {
	ctx      context.Context
	r        io.Reader
	n        int64
	reported int64
	fn       func(int64)
}

func newCountingReader(ctx context.Context, r io.Reader, fn func(int64)) *countingReader {
	return &countingReader{ctx: ctx, r: r, fn: fn, reported: -1}
}

func (c *countingReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	n, err := c.r.Read(p)
	c.n += int64(n)
	if c.fn != nil && c.n-max(c.reported, 0) >= progressStep {
		c.fn(c.n)
		c.reported = c.n
	}
	return n, err
}

func (c *countingReader) finish() int64 {
	if c.fn != nil && c.reported != c.n {
		c.fn(c.n)
		c.reported = c.n
	}
	return c.n
}
