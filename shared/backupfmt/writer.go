package backupfmt

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"runtime"
	"time"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"

	"github.com/insightops/insightops/shared/backupfmt/complevel"
	"github.com/insightops/insightops/shared/ctxio"
)

// DefaultChunkSize is the largest tar entry AddStream writes: a stream
// longer than this is stored as consecutive parts of this size. It is also
// the memory AddStream needs, whatever the stream's length.
const DefaultChunkSize = 16 << 20

type writerOptions struct {
	chunk    int
	level    int
	levelSet bool
	modTime  time.Time
	workers  int
}

// Option configures a Writer.
type Option func(*writerOptions)

// WithChunkSize sets the part size of AddStream (default DefaultChunkSize;
// values below 1 are ignored). Tests use small values to exercise parts.
func WithChunkSize(n int) Option {
	return func(o *writerOptions) {
		if n > 0 {
			o.chunk = n
		}
	}
}

// WithLevel sets the compression level, within the compression's
// [complevel.Of] range (NewWriter refuses another). Without it a Writer
// uses the compression's default level.
func WithLevel(level int) Option {
	return func(o *writerOptions) { o.level, o.levelSet = level, true }
}

// WithConcurrency sets how many goroutines compress a zstd archive's
// AddStream data (default runtime.GOMAXPROCS(0)); 1 compresses on the
// caller's goroutine, one frame per entry. With more, the data is cut into
// 1 MiB frames compressed in parallel (see AddStream). gzip always
// compresses on the caller's goroutine.
func WithConcurrency(n int) Option {
	return func(o *writerOptions) {
		if n > 0 {
			o.workers = n
		}
	}
}

// WithModTime sets the modification time stored in every tar header
// (default: the time NewWriter ran). With the same inputs, options and
// modification time the archive is byte-for-byte the same.
func WithModTime(t time.Time) Option {
	return func(o *writerOptions) { o.modTime = t }
}

// compressor is a gzip.Writer or a zstd.Encoder.
type compressor interface {
	io.WriteCloser
	Reset(w io.Writer)
}

// Writer writes an archive as a stream: tar, compressed, to an io.Writer,
// never seeking and never buffering more than one chunk. Files come first,
// in the order they are added, and manifest.json is written last by Close,
// since only then are every size and hash known.
//
// Each tar header and each entry's data is compressed as its own gzip
// member or zstd frame (with a checksum): the standard tools read the
// concatenation as one stream, while a reader detects a corrupt byte within
// the entry that holds it and can name that entry.
//
// A Writer is not safe for concurrent use. After any error it is unusable:
// abandon the output (it has no manifest, so it can never pass Verify).
type Writer struct {
	c     Compression
	opts  writerOptions
	level zstd.EncoderLevel // of zstd
	out   *hashCounter
	comp  compressor
	tw    *tar.Writer
	buf   []byte // chunk+1 bytes for AddStream, allocated on first use
	copy  []byte // AddFile's copy buffer
	files []File
	index map[string]int
	err   error
}

// NewWriter starts an archive on w with compression c. The caller closes w
// after Close.
func NewWriter(w io.Writer, c Compression, opts ...Option) (*Writer, error) {
	o := writerOptions{chunk: DefaultChunkSize, modTime: time.Now(), workers: runtime.GOMAXPROCS(0)}
	for _, opt := range opts {
		opt(&o)
	}
	o.modTime = o.modTime.UTC().Truncate(time.Second)
	if o.modTime.Before(time.Unix(0, 0)) {
		o.modTime = time.Unix(0, 0).UTC()
	}
	out := &hashCounter{w: w, h: sha256.New()}
	levels, err := complevel.Of(string(c))
	if err != nil {
		return nil, fmt.Errorf("backup archive: %w", err)
	}
	lv := levels.Default
	if o.levelSet {
		if err := complevel.Check(string(c), o.level); err != nil {
			return nil, fmt.Errorf("backup archive: %w", err)
		}
		lv = o.level
	}
	var (
		comp  compressor
		level zstd.EncoderLevel // of zstd
	)
	switch c {
	case Gzip:
		gz, err := gzip.NewWriterLevel(out, lv)
		if err != nil {
			return nil, fmt.Errorf("backup archive: gzip level %d: %w", lv, err)
		}
		comp = gz
	case Zstd:
		level = zstd.EncoderLevelFromZstd(lv)
		zo := []zstd.EOption{zstd.WithEncoderCRC(true), zstd.WithEncoderLevel(level)}
		if o.workers > 1 {
			// AddStream's data goes through a pool of its own (see
			// addStreamParallel): this encoder only compresses tar
			// headers, the manifest and AddFile, on the caller's
			// goroutine.
			zo = append(zo, zstd.WithEncoderConcurrency(1))
		}
		enc, err := zstd.NewWriter(out, zo...)
		if err != nil {
			return nil, fmt.Errorf("backup archive: zstd: %w", err)
		}
		comp = enc
	}
	return &Writer{c: c, opts: o, level: level, out: out, comp: comp, tw: tar.NewWriter(comp), index: map[string]int{}}, nil
}

// Compression returns the writer's compression.
func (w *Writer) Compression() Compression { return w.c }

// Written returns the number of compressed bytes written to the output so
// far (progress reporting).
func (w *Writer) Written() int64 { return w.out.n }

// Files returns the files added so far, in archive order.
func (w *Writer) Files() []File { return append([]File(nil), w.files...) }

func (w *Writer) begin(ctx context.Context, component, p, kind string) error {
	if w.err != nil {
		return w.err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := ValidatePath(p); err != nil {
		return fmt.Errorf("backup archive: %w", err)
	}
	if f := (File{Path: p}); f.Component() != component {
		return fmt.Errorf("backup archive: %s is not under the component directory %s/", p, component)
	}
	if want := KindOf(p); kind != want {
		return fmt.Errorf("backup archive: %s: kind %q, but its extension means %q", p, kind, want)
	}
	if _, dup := w.index[p]; dup {
		return fmt.Errorf("backup archive: %s added twice", p)
	}
	return nil
}

// AddStream adds the file p (of component, e.g. "system", "system/system.dump")
// from r, whose length is not known in advance (pg_dump's stdout). It reads
// up to the chunk size: a stream that ends within it becomes one tar entry
// named p; a longer one becomes entries p.part-000001, p.part-000002, … of
// exactly the chunk size but the last. Memory stays at one chunk whatever the
// length. The content is hashed (SHA-256 of the whole, and of each part) and
// counted while streaming; for kind jsonl the records (lines) are counted
// too, otherwise Count is CountUnknown until SetCount. kind must be
// KindOf(p). r is read to EOF; a read error or a cancelled ctx fails the
// writer.
//
// With zstd and WithConcurrency above 1 (the default on a machine with
// more than one core), each entry's data is compressed as 1 MiB frames on
// that many goroutines while the stream is read and hashed; the entries,
// names, sizes and hashes are the same as with one goroutine.
func (w *Writer) AddStream(ctx context.Context, component, p, kind string, r io.Reader) (File, error) {
	if err := w.begin(ctx, component, p, kind); err != nil {
		return File{}, err
	}
	if w.c == Zstd && w.opts.workers > 1 {
		return w.addStreamParallel(ctx, p, kind, r)
	}
	chunk := w.opts.chunk
	if len(w.buf) != chunk+1 {
		w.buf = make([]byte, chunk+1)
	}
	f := File{Path: p, Kind: kind, Count: CountUnknown}
	fileHash := sha256.New()
	lines := newLineCounter(kind)
	src := ctxio.Reader(ctx, r)
	carry := 0 // bytes already at the start of buf (the one byte read ahead)
	for {
		n, err := io.ReadFull(src, w.buf[carry:])
		n += carry
		switch {
		case err == io.EOF || err == io.ErrUnexpectedEOF:
			name := p
			if len(f.Parts) > 0 {
				name = PartPath(p, len(f.Parts)+1)
			}
			if err := w.entry(name, w.buf[:n], &f, fileHash, lines); err != nil {
				return File{}, err
			}
			return w.finish(f, fileHash, lines), nil
		case err != nil:
			return File{}, w.fail(fmt.Errorf("backup archive: %s: read: %w", p, err))
		}
		// A full chunk and one byte more: the stream is longer than a chunk.
		if err := w.entry(PartPath(p, len(f.Parts)+1), w.buf[:chunk], &f, fileHash, lines); err != nil {
			return File{}, err
		}
		w.buf[0], carry = w.buf[chunk], 1
	}
}

// entry writes one tar entry from data, in its own compression member. When
// name is a part it is recorded in f.Parts.
func (w *Writer) entry(name string, data []byte, f *File, fileHash hash.Hash, lines *lineCounter) error {
	if err := w.header(name, int64(len(data))); err != nil {
		return err
	}
	if _, err := w.tw.Write(data); err != nil {
		return w.fail(fmt.Errorf("backup archive: write %s: %w", name, err))
	}
	fileHash.Write(data)
	_, _ = lines.Write(data) // counting never fails
	f.Size += int64(len(data))
	if name != f.Path {
		sum := sha256.Sum256(data)
		f.Parts = append(f.Parts, Part{Path: name, Size: int64(len(data)), SHA256: hex.EncodeToString(sum[:])})
	}
	return w.endMember(name)
}

// tarHeader is the header of every entry: a regular file, mode 0600, the
// writer's modification time.
func (w *Writer) tarHeader(name string, size int64) *tar.Header {
	return &tar.Header{
		Typeflag: tar.TypeReg,
		Name:     name,
		Size:     size,
		Mode:     0o600,
		ModTime:  w.opts.modTime,
	}
}

func (w *Writer) header(name string, size int64) error {
	if err := w.tw.WriteHeader(w.tarHeader(name, size)); err != nil {
		return w.fail(fmt.Errorf("backup archive: tar header %s: %w", name, err))
	}
	if size == 0 {
		return nil
	}
	// The header gets a member of its own, so a corrupt byte in the data
	// is reported by the data's member, after the reader knows its name.
	if err := w.comp.Close(); err != nil {
		return w.fail(fmt.Errorf("backup archive: compress %s: %w", name, err))
	}
	w.comp.Reset(w.out)
	return nil
}

// endMember pads the tar entry and ends the compression member (gzip
// member, zstd frame), starting a new one for what follows.
func (w *Writer) endMember(name string) error {
	if err := w.tw.Flush(); err != nil {
		return w.fail(fmt.Errorf("backup archive: write %s: %w", name, err))
	}
	if err := w.comp.Close(); err != nil {
		return w.fail(fmt.Errorf("backup archive: compress %s: %w", name, err))
	}
	w.comp.Reset(w.out)
	return nil
}

func (w *Writer) finish(f File, fileHash hash.Hash, lines *lineCounter) File {
	f.SHA256 = hex.EncodeToString(fileHash.Sum(nil))
	if lines != nil {
		f.Count = lines.count()
	}
	w.index[f.Path] = len(w.files)
	w.files = append(w.files, f)
	return f
}

// AddFile adds the file p from r, whose size is known (a scratch copy of a
// SQLite database): one tar entry, streamed, whatever the size. r must
// deliver exactly size bytes; fewer or more is an error. Otherwise as
// AddStream.
func (w *Writer) AddFile(ctx context.Context, component, p, kind string, r io.Reader, size int64) (File, error) {
	if err := w.begin(ctx, component, p, kind); err != nil {
		return File{}, err
	}
	if size < 0 {
		return File{}, fmt.Errorf("backup archive: %s: negative size %d", p, size)
	}
	if w.copy == nil {
		w.copy = make([]byte, 1<<20)
	}
	if err := w.header(p, size); err != nil {
		return File{}, err
	}
	f := File{Path: p, Kind: kind, Count: CountUnknown, Size: size}
	fileHash := sha256.New()
	lines := newLineCounter(kind)
	dst := io.MultiWriter(w.tw, fileHash, lines)
	n, err := io.CopyBuffer(dst, io.LimitReader(ctxio.Reader(ctx, r), size), w.copy)
	if err != nil {
		return File{}, w.fail(fmt.Errorf("backup archive: %s: %w", p, err))
	}
	if n != size {
		return File{}, w.fail(fmt.Errorf("backup archive: %s: source ended after %d of %d bytes", p, n, size))
	}
	var one [1]byte
	if m, _ := io.ReadFull(r, one[:]); m > 0 {
		return File{}, w.fail(fmt.Errorf("backup archive: %s: source is longer than the %d bytes given", p, size))
	}
	if err := w.endMember(p); err != nil {
		return File{}, err
	}
	return w.finish(f, fileHash, lines), nil
}

// SetCount records the row or record count of an added file (n >= 0, or
// CountUnknown).
func (w *Writer) SetCount(p string, n int64) error {
	i, ok := w.index[p]
	if !ok {
		return fmt.Errorf("backup archive: set count: %s was not added", p)
	}
	if n < CountUnknown {
		return fmt.Errorf("backup archive: set count: %s: invalid count %d", p, n)
	}
	w.files[i].Count = n
	return nil
}

// Result describes a finished archive.
type Result struct {
	Manifest Manifest // as written
	Size     int64    // compressed bytes written
	SHA256   string   // of the compressed bytes: the archive file's own SHA-256
	// ManifestSHA256 is the SHA-256 of the manifest.json entry's bytes,
	// what an archive's signature names beside SHA256.
	ManifestSHA256 string
}

// Close completes the archive: it fills m's files from what was added, sets
// FormatVersion and Compression, marks every component that has files as
// included (unless m says otherwise, which is an error) and every component
// m does not mention as skipped ("not requested"), validates the result as
// ParseManifest would, and writes it as the last entry, manifest.json. m's
// components must not list files themselves; CreatedAt and JobID are
// required. Close does not close the underlying writer.
func (w *Writer) Close(m Manifest) (Result, error) {
	if w.err != nil {
		return Result{}, w.err
	}
	m.FormatVersion = FormatVersion
	m.Compression = w.c
	m.CreatedAt = m.CreatedAt.UTC()
	comps := make(map[string]Component, len(Components))
	for name, c := range m.Components {
		if len(c.Files) > 0 {
			return Result{}, fmt.Errorf("backup archive: component %s: leave Files empty, Close fills them from what was added", name)
		}
		comps[name] = c
	}
	for _, f := range w.files {
		c := comps[f.Component()]
		if c.Status == "" {
			c.Status = StatusIncluded
		}
		c.Files = append(c.Files, f)
		comps[f.Component()] = c
	}
	for _, name := range Components {
		if _, ok := comps[name]; !ok {
			comps[name] = Component{Status: StatusSkipped, Reason: "not requested"}
		}
	}
	for name, c := range comps {
		if c.Files == nil {
			c.Files = []File{}
			comps[name] = c
		}
	}
	m.Components = comps
	if err := m.Validate(); err != nil {
		return Result{}, fmt.Errorf("backup archive: %w", err)
	}
	data, err := m.Marshal()
	if err != nil {
		return Result{}, err
	}
	if err := w.header(ManifestName, int64(len(data))); err != nil {
		return Result{}, err
	}
	if _, err := w.tw.Write(data); err != nil {
		return Result{}, w.fail(fmt.Errorf("backup archive: write manifest: %w", err))
	}
	if err := w.tw.Close(); err != nil {
		return Result{}, w.fail(fmt.Errorf("backup archive: close tar: %w", err))
	}
	if err := w.comp.Close(); err != nil {
		return Result{}, w.fail(fmt.Errorf("backup archive: close compression: %w", err))
	}
	w.err = errors.New("backup archive: writer already closed")
	msum := sha256.Sum256(data)
	return Result{Manifest: m, Size: w.out.n, SHA256: hex.EncodeToString(w.out.h.Sum(nil)), ManifestSHA256: hex.EncodeToString(msum[:])}, nil
}

// Abort gives up on the archive and releases the compressor. The output
// is left without a manifest, so it never passes Verify; delete it.
func (w *Writer) Abort() {
	if w.err == nil {
		w.err = errors.New("backup archive: writer aborted")
	}
	if w.comp != nil {
		if enc, ok := w.comp.(*zstd.Encoder); ok {
			enc.Reset(io.Discard)
			_ = enc.Close()
		}
	}
}

func (w *Writer) fail(err error) error {
	if w.err == nil {
		w.err = err
	}
	return err
}

// hashCounter counts and hashes what is written through it.
type hashCounter struct {
	w io.Writer
	h hash.Hash
	n int64
}

func (c *hashCounter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.h.Write(p[:n])
	c.n += int64(n)
	return n, err
}

// lineCounter counts JSONL records: newline-terminated lines plus a last
// line without a newline. nil (for other kinds) counts nothing.
type lineCounter struct {
	n    int64
	last byte
	any  bool
}

func newLineCounter(kind string) *lineCounter {
	if kind != KindJSONL {
		return nil
	}
	return &lineCounter{}
}

func (c *lineCounter) Write(p []byte) (int, error) {
	if c == nil || len(p) == 0 {
		return len(p), nil
	}
	c.n += int64(bytes.Count(p, []byte{'\n'}))
	c.last, c.any = p[len(p)-1], true
	return len(p), nil
}

func (c *lineCounter) count() int64 {
	if c.any && c.last != '\n' {
		return c.n + 1
	}
	return c.n
}
