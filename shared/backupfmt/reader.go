package backupfmt

import (
	"archive/tar"
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"runtime"
	"sort"
	"strconv"
	"sync"

	"github.com/klauspost/compress/gzip"
)

// ErrInvalidArchive is wrapped by every error that says the archive itself
// is wrong (corrupt, truncated, tampered with, not an archive). A failure to
// read the source, or a cancelled context, does not wrap it.
var ErrInvalidArchive = errors.New("invalid backup archive")

// Error is a problem with one entry of an archive. Path names the precise
// tar entry (a part when the file is split) or the logical file.
type Error struct {
	Path    string
	Problem string
	Err     error // the underlying cause, if any
	order   int
}

func (e *Error) Error() string { return e.Path + ": " + e.Problem }

// Unwrap returns ErrInvalidArchive and the cause.
func (e *Error) Unwrap() []error {
	if e.Err != nil {
		return []error{ErrInvalidArchive, e.Err}
	}
	return []error{ErrInvalidArchive}
}

// ReadOptions are shared by Walk, Verify and Extract.
type ReadOptions struct {
	// Name, when set, is the archive's name: its creation time, job id and
	// compression must match the manifest (a renamed archive is invalid).
	Name string
	// Expect, when set (the Manifest a previous Verify returned), is
	// enforced while streaming: an entry not in it, larger than it says, or
	// whose SHA-256 differs fails the content reader before it returns EOF,
	// so a consumer (pg_restore, a restore into a scratch file) sees an
	// error instead of the end of bad data. The archive's own manifest must
	// then list exactly the same files. A file stored in parts is then
	// checked part by part (each part's SHA-256 against Expect's; nothing
	// is hashed with SameCopy) and not hashed whole a second time: its
	// whole-file SHA-256 is the one the Verify that produced Expect
	// computed from the same parts.
	Expect *Manifest
	// SameCopy, with Expect, says the source is the very copy whose
	// Verify produced Expect, and that nothing can have changed it since:
	// a private file with no name, read again through the descriptor the
	// Verify read (archiver.Authentic.Unshared). The content is then not
	// hashed a second time; every entry's name, kind, size and place in
	// the archive are still checked against Expect, the manifest compared,
	// and the decompressor's own checksums (each zstd frame's, each gzip
	// member's CRC-32) still fail an entry whose bytes changed on the way
	// from the disk before its content reader returns EOF.
	SameCopy bool
	// MaxDecompressed caps the bytes the decompressed (tar) stream may
	// hold, and the sum of the sizes its entry headers declare: 0 means
	// DefaultMaxDecompressed. With Expect the cap is lowered to
	// ExpectedTarBytes(*Expect), so no file can decompress to more than
	// the manifest says and the whole to no more than its total plus tar
	// overhead. Past the cap reading stops with an *Error wrapping
	// ErrDecompressionLimit.
	MaxDecompressed int64
}

// WalkFunc receives each logical file in archive order, its parts
// concatenated. f has Path and Kind; Size, SHA256, Count and Parts too
// when ReadOptions.Expect is set (the manifest comes last, so they are
// not known otherwise). content need not be read to the end. An error
// stops the walk.
type WalkFunc func(ctx context.Context, f File, content io.Reader) error

// Walk streams the archive once, calls fn for every logical file, then
// checks everything against the manifest: every entry's size and SHA-256,
// no file missing or extra, the name (ReadOptions.Name). It returns the
// manifest if all is well. Without ReadOptions.Expect, fn sees content
// before it is verified: restore from a Walk only with Expect set from a
// Verify of the same archive.
func Walk(ctx context.Context, r io.Reader, opts ReadOptions, fn WalkFunc) (Manifest, error) {
	w := newWalker(ctx, opts)
	w.skipSourceHash = true // Walk returns no Report: nobody reads the archive's own SHA-256
	rep, err := w.result(w.run(r, fn))
	if err != nil {
		return Manifest{}, err
	}
	return rep.Manifest, nil
}

// Checker tests that a file can be restored (pg_restore --list, SQLite
// integrity_check on a scratch copy, JSONL parsing) and returns the rows or
// records it counted, or CountUnknown. A count >= 0 is compared with the
// manifest's. An error makes the file fail verification (the context's
// own error aborts Verify instead).
type Checker func(ctx context.Context, f File, content io.Reader) (count int64, err error)

// DefaultCheckers returns the checkers this package provides: jsonl.
func DefaultCheckers() map[string]Checker {
	return map[string]Checker{KindJSONL: CheckJSONL}
}

// VerifyOptions configure Verify.
type VerifyOptions struct {
	ReadOptions
	// Checkers by file kind; nil means DefaultCheckers(). A kind without a
	// checker is verified by size and SHA-256 only.
	Checkers map[string]Checker
}

// Report is the outcome of Verify.
type Report struct {
	Manifest      Manifest // zero if it could not be read
	Compression   Compression
	ArchiveSize   int64  // bytes read from the source
	ArchiveSHA256 string // of those bytes; compare with the stored SHA-256
	// ManifestSHA256 is the SHA-256 of the manifest.json entry's bytes
	// (what an archive's signature names), empty if it could not be read.
	ManifestSHA256 string
	Files          []FileReport
	// Problems, in archive order; the first is also Verify's error.
	Problems []*Error
}

// OK reports whether verification found no problem.
func (r Report) OK() bool { return len(r.Problems) == 0 && r.Manifest.FormatVersion != 0 }

// FileReport is what Verify found of one logical file.
type FileReport struct {
	Path    string
	Kind    string
	Size    int64  // content length found
	SHA256  string // of the content found
	Parts   int    // tar entries beyond one (0 when not split)
	Checked bool   // a checker ran
	Count   int64  // what the checker counted, CountUnknown if none
}

// Verify streams the archive once and checks every file's size and SHA-256
// (each part, and the parts concatenated) against the manifest, that no
// file is missing or extra, the name (opts.Name), and runs the checker of
// each file's kind on its content, comparing the count it returns with the
// manifest's. It returns the Report and, if anything is wrong, the first
// problem in archive order as an *Error (wrapping ErrInvalidArchive), e.g.
// "target/vanna_db.db: sha256 mismatch". A read error of the source or a
// cancelled ctx is returned as such (not ErrInvalidArchive): try again.
func Verify(ctx context.Context, r io.Reader, opts VerifyOptions) (Report, error) {
	checkers := opts.Checkers
	if checkers == nil {
		checkers = DefaultCheckers()
	}
	type result struct {
		count   int64
		checked bool
	}
	var w *walker
	results := map[string]result{}
	fn := func(ctx context.Context, f File, content io.Reader) error {
		check := checkers[f.Kind]
		if check == nil {
			return nil
		}
		n, err := check(ctx, f, content)
		if ctxErr := ctx.Err(); ctxErr != nil {
			return ctxErr
		}
		if err != nil {
			if fe := w.fileErr(); fe != nil {
				return nil //nolint:nilerr // the content itself failed; that is the problem reported
			}
			w.problem(f.Path, "check: "+err.Error(), err)
			n = CountUnknown
		}
		results[f.Path] = result{count: n, checked: true}
		return nil
	}
	w = newWalker(ctx, opts.ReadOptions)
	rep, err := w.run(r, fn)
	for i := range rep.Files {
		fr := &rep.Files[i]
		res, ok := results[fr.Path]
		fr.Count, fr.Checked = CountUnknown, ok
		if ok {
			fr.Count = res.count
		}
	}
	if err != nil && !errors.Is(err, ErrInvalidArchive) {
		return rep, err
	}
	if rep.Manifest.FormatVersion != 0 {
		byPath := map[string]File{}
		for _, f := range rep.Manifest.Files() {
			byPath[f.Path] = f
		}
		for i, fr := range rep.Files {
			mf, ok := byPath[fr.Path]
			if ok && fr.Checked && fr.Count >= 0 && mf.Count >= 0 && fr.Count != mf.Count {
				rep.Problems = append(rep.Problems, &Error{Path: fr.Path, Problem: fmt.Sprintf("count mismatch: manifest says %d, content has %d", mf.Count, fr.Count), order: i})
			}
		}
	}
	sortProblems(rep.Problems)
	if len(rep.Problems) > 0 {
		return rep, rep.Problems[0]
	}
	return rep, err
}

// sortProblems puts ps in archive order, a decompression limit first: it
// stopped the reading, so it is the error whatever else was found.
func sortProblems(ps []*Error) {
	sort.SliceStable(ps, func(i, j int) bool {
		li, lj := errors.Is(ps[i], ErrDecompressionLimit), errors.Is(ps[j], ErrDecompressionLimit)
		if li != lj {
			return li
		}
		return ps[i].order < ps[j].order
	})
}

// walker reads one archive.
type walker struct {
	ctx  context.Context
	opts ReadOptions
	src  *sourceReader
	// skipSourceHash: the archive's own SHA-256 is not computed (Walk).
	skipSourceHash bool
	tr             *tar.Reader
	pending        *tar.Header
	last           string // name of the last entry read, to attribute errors of the next header
	expect         map[string]File
	seen           map[string]bool
	found          []FileReport
	parts          map[string][]Part
	manifest       *Manifest
	// manifestSHA256 is the digest of the manifest entry's bytes.
	manifestSHA256 string
	problems       []*Error
	cur            *fileReader
	limit          int64        // decompressionLimit
	limitWhy       string       // where limit comes from, for the error
	declared       int64        // sum of the entry sizes the headers declared
	dec            *limitReader // the decompressed stream
}

func newWalker(ctx context.Context, opts ReadOptions) *walker {
	w := &walker{ctx: ctx, opts: opts, seen: map[string]bool{}, parts: map[string][]Part{}}
	w.limit, w.limitWhy = decompressionLimit(opts)
	if opts.Expect != nil {
		w.expect = map[string]File{}
		for _, f := range opts.Expect.Files() {
			w.expect[f.Path] = f
		}
	}
	return w
}

// result is the outcome of run: a read error as is, else the first
// problem, if any.
func (w *walker) result(rep Report, err error) (Report, error) {
	if err != nil && !errors.Is(err, ErrInvalidArchive) {
		return rep, err
	}
	if len(rep.Problems) > 0 {
		return rep, rep.Problems[0]
	}
	return rep, err
}

// problem records a problem with path; the first one in archive order wins.
func (w *walker) problem(path, problem string, cause error) *Error {
	e := &Error{Path: displayName(path), Problem: problem, Err: cause, order: len(w.found)}
	w.problems = append(w.problems, e)
	return e
}

// fileErr is the error of the current file's content, if it failed.
func (w *walker) fileErr() error {
	if w.cur != nil && w.cur.err != nil {
		return w.cur.err
	}
	return nil
}

// readErr classifies an error from the tar reader while reading entry (or
// the header after it): the context, the source, or the archive.
func (w *walker) readErr(entry string, err error) error {
	if ctxErr := w.ctx.Err(); ctxErr != nil {
		return ctxErr
	}
	if srcErr := w.src.readError(); srcErr != nil {
		return fmt.Errorf("read backup archive: %w", srcErr)
	}
	if errors.Is(err, ErrDecompressionLimit) {
		return w.limitProblem(entry)
	}
	if errors.Is(err, io.EOF) {
		err = io.ErrUnexpectedEOF
	}
	problem := "read: " + err.Error()
	if errors.Is(err, io.ErrUnexpectedEOF) {
		problem = "archive truncated (unexpected end of data)"
	}
	return w.problem(entry, problem, err)
}

// next returns the next tar header, nil at the end of the archive.
func (w *walker) next() (*tar.Header, error) {
	if h := w.pending; h != nil {
		w.pending = nil
		return h, nil
	}
	if err := w.ctx.Err(); err != nil {
		return nil, err
	}
	h, err := w.tr.Next()
	if err == io.EOF {
		return nil, nil
	}
	if err != nil {
		at := w.last
		if at == "" {
			at = "(archive start)"
		}
		return nil, w.readErr(at, err)
	}
	w.last = h.Name
	w.declared += max(h.Size, 0)
	if w.declared > w.limit {
		// Refused before a byte of it is read (a sparse entry or a bomb
		// declares its size; the stream cap catches what headers hide).
		return nil, w.limitProblem(h.Name)
	}
	return h, nil
}

// limitProblem records that the archive passed the decompression limit at entry.
func (w *walker) limitProblem(entry string) *Error {
	return w.problem(entry, "the archive decompresses to more than "+w.limitWhy+": reading stopped", ErrDecompressionLimit)
}

func (w *walker) run(r io.Reader, fn WalkFunc) (rep Report, err error) {
	w.src = &sourceReader{ctx: w.ctx, r: r}
	if !w.skipSourceHash {
		w.src.h = sha256.New()
	}
	defer func() {
		rep.ArchiveSize, rep.ArchiveSHA256 = w.src.read()
		rep.Files = w.found
		if w.manifest != nil {
			rep.Manifest = *w.manifest
			rep.ManifestSHA256 = w.manifestSHA256
		}
		sortProblems(w.problems)
		rep.Problems = w.problems
	}()
	br := bufio.NewReaderSize(w.src, 256<<10)
	dec, c, closeDec, err := decompressor(br)
	if err != nil {
		if w.src.readError() != nil || w.ctx.Err() != nil {
			return rep, w.readErr("(archive start)", err)
		}
		return rep, w.problem("(archive start)", err.Error(), err)
	}
	defer closeDec()
	rep.Compression = c
	w.dec = &limitReader{r: dec, limit: w.limit, err: ErrDecompressionLimit}
	w.tr = tar.NewReader(w.dec)
	if err := w.entries(fn); err != nil {
		return rep, err
	}
	// Read to the very end: the last member's checksum, trailing garbage.
	if _, err := io.Copy(io.Discard, w.dec); err != nil {
		return rep, w.readErr("(archive end)", err)
	}
	if _, err := io.Copy(io.Discard, br); err != nil {
		return rep, w.readErr("(archive end)", err)
	}
	if w.manifest == nil {
		w.problem(ManifestName, "missing: the archive is truncated or not an insightops backup", nil)
		return rep, nil
	}
	w.compare(c)
	return rep, nil
}

// entries reads every tar entry; it returns an error when it cannot go on.
func (w *walker) entries(fn WalkFunc) error {
	for {
		h, err := w.next()
		if err != nil {
			return err
		}
		if h == nil {
			return nil
		}
		if w.manifest != nil {
			return w.problem(h.Name, "entry after manifest.json (the manifest is the last entry)", nil)
		}
		if h.Typeflag != tar.TypeReg {
			return w.problem(h.Name, fmt.Sprintf("not a regular file (tar type %q): links, directories and devices are refused", h.Typeflag), nil)
		}
		if h.Name == ManifestName {
			if err := w.readManifest(h); err != nil {
				return err
			}
			continue
		}
		if err := w.file(h, fn); err != nil {
			return err
		}
	}
}

func (w *walker) readManifest(h *tar.Header) error {
	if h.Size > MaxManifestSize {
		return w.problem(ManifestName, fmt.Sprintf("%d bytes, more than the %d accepted", h.Size, MaxManifestSize), nil)
	}
	data, err := io.ReadAll(w.tr)
	if err != nil {
		return w.readErr(ManifestName, err)
	}
	m, err := ParseManifest(bytes.NewReader(data))
	if err != nil {
		return w.problem(ManifestName, err.Error(), err)
	}
	w.manifest = &m
	sum := sha256.Sum256(data)
	w.manifestSHA256 = hex.EncodeToString(sum[:])
	return nil
}

// file streams one logical file starting at header h.
func (w *walker) file(h *tar.Header, fn WalkFunc) error {
	p, partNo, isPart := splitPart(h.Name)
	if !isPart {
		p = h.Name
	} else if partNo != 1 {
		return w.problem(h.Name, "part without the parts before it", nil)
	}
	if err := ValidatePath(p); err != nil {
		return w.problem(h.Name, "refused entry name: "+err.Error(), nil)
	}
	if w.seen[p] {
		return w.problem(h.Name, "appears twice", nil)
	}
	w.seen[p] = true
	f := File{Path: p, Kind: KindOf(p), Count: CountUnknown}
	var exp *File
	if w.expect != nil {
		e, ok := w.expect[p]
		if !ok {
			return w.problem(h.Name, "not in the manifest", nil)
		}
		if isPart != (len(e.Parts) > 0) {
			return w.problem(h.Name, "stored differently than the manifest says (parts)", nil)
		}
		exp, f = &e, e
	}
	fr := &fileReader{w: w, path: p, split: isPart, partNo: 1, entry: h.Name, exp: exp}
	// A file stored in one entry is hashed whole. A file stored in parts
	// has each part hashed; the whole is hashed too, except against an
	// expected manifest (a restore after Verify): there every part is
	// checked against the expected part hashes as it ends, so the content
	// is exactly what Verify hashed whole, and hashing it a second time
	// would only double the CPU time of the restore.
	//
	// With SameCopy nothing is hashed: Verify hashed these very bytes.
	rehash := exp == nil || !w.opts.SameCopy
	if isPart && rehash {
		fr.partHash = sha256.New()
	}
	if (!isPart || exp == nil) && rehash {
		fr.fileHash = sha256.New()
	}
	if exp != nil && h.Size > exp.Size {
		fr.fail(h.Name, fmt.Sprintf("entry of %d bytes, larger than the manifest says (%d)", h.Size, exp.Size))
	}
	w.cur = fr
	defer func() { w.cur = nil }()
	if fn != nil && fr.err == nil {
		if err := fn(w.ctx, f, fr); err != nil {
			if fr.err != nil {
				return fr.err
			}
			if ctxErr := w.ctx.Err(); ctxErr != nil {
				return ctxErr
			}
			return fmt.Errorf("%s: %w", p, err)
		}
	}
	if fr.err == nil {
		_, _ = io.Copy(io.Discard, fr)
	}
	if fr.err != nil {
		return fr.err
	}
	w.found = append(w.found, FileReport{Path: p, Kind: KindOf(p), Size: fr.size, SHA256: fr.sum(), Parts: len(fr.parts), Count: CountUnknown})
	w.parts[p] = fr.parts
	return nil
}

// compare checks what was found against the manifest (and Expect, and the name).
func (w *walker) compare(c Compression) {
	m := *w.manifest
	if m.Compression != c {
		w.problem(ManifestName, fmt.Sprintf("manifest says compression %s, the archive is %s", m.Compression, c), nil)
	}
	if w.opts.Name != "" {
		n, err := ParseArchiveName(w.opts.Name)
		switch {
		case err != nil:
			w.problem(ManifestName, err.Error(), err)
		case n.JobID != m.JobID:
			w.problem(ManifestName, fmt.Sprintf("archive name has job id %s, manifest %s", n.JobID, m.JobID), nil)
		case n.Compression != c:
			w.problem(ManifestName, fmt.Sprintf("archive name says %s, the archive is %s", n.Compression, c), nil)
		case !n.Created.Equal(m.CreatedAt.UTC().Truncate(1e9)):
			w.problem(ManifestName, fmt.Sprintf("archive name has creation time %s, manifest %s", n.Created.Format(TimeLayout), m.CreatedAt.UTC().Format(TimeLayout)), nil)
		}
	}
	listed := map[string]File{}
	for _, f := range m.Files() {
		listed[f.Path] = f
	}
	for i, got := range w.found {
		want, ok := listed[got.Path]
		if !ok {
			w.problems = append(w.problems, &Error{Path: got.Path, Problem: "not in the manifest", order: i})
			continue
		}
		delete(listed, got.Path)
		if e := compareFile(want, got, w.parts[got.Path]); e != nil {
			e.order = i
			w.problems = append(w.problems, e)
		}
	}
	for _, f := range m.Files() {
		if _, missing := listed[f.Path]; missing {
			w.problems = append(w.problems, &Error{Path: f.Path, Problem: "missing from the archive", order: len(w.found)})
		}
	}
	if w.expect != nil {
		for _, f := range m.Files() {
			e, ok := w.expect[f.Path]
			if !ok || e.SHA256 != f.SHA256 || e.Size != f.Size || len(e.Parts) != len(f.Parts) {
				w.problems = append(w.problems, &Error{Path: ManifestName, Problem: "differs from the expected manifest at " + f.Path, order: len(w.found)})
				break
			}
		}
		if len(w.expect) != len(m.Files()) {
			w.problems = append(w.problems, &Error{Path: ManifestName, Problem: "lists other files than the expected manifest", order: len(w.found)})
		}
	}
}

func compareFile(want File, got FileReport, parts []Part) *Error {
	if len(want.Parts) != len(parts) {
		return &Error{Path: want.Path, Problem: fmt.Sprintf("stored in %d parts, the manifest says %d", len(parts), len(want.Parts))}
	}
	for i, p := range parts {
		wp := want.Parts[i]
		if p.Size != wp.Size {
			return &Error{Path: p.Path, Problem: fmt.Sprintf("size mismatch: manifest says %d bytes, archive has %d", wp.Size, p.Size)}
		}
		if p.SHA256 != wp.SHA256 {
			return &Error{Path: p.Path, Problem: fmt.Sprintf("sha256 mismatch: manifest says %s, content is %s", wp.SHA256, p.SHA256)}
		}
	}
	if got.Size != want.Size {
		return &Error{Path: want.Path, Problem: fmt.Sprintf("size mismatch: manifest says %d bytes, archive has %d", want.Size, got.Size)}
	}
	if got.SHA256 != want.SHA256 {
		return &Error{Path: want.Path, Problem: fmt.Sprintf("sha256 mismatch: manifest says %s, content is %s", want.SHA256, got.SHA256)}
	}
	return nil
}

// fileReader reads one logical file, its parts concatenated, hashing as it goes.
type fileReader struct {
	w        *walker
	path     string
	split    bool
	partNo   int
	entry    string
	exp      *File
	fileHash hash.Hash
	partHash hash.Hash
	size     int64
	partSize int64
	parts    []Part
	done     bool
	err      error
}

func (r *fileReader) fail(entry, problem string) error {
	if r.err == nil {
		r.err = r.w.problem(entry, problem, nil)
	}
	return r.err
}

func (r *fileReader) Read(p []byte) (int, error) {
	for {
		if r.err != nil {
			return 0, r.err
		}
		if r.done {
			return 0, io.EOF
		}
		if len(p) == 0 {
			return 0, nil
		}
		if err := r.w.ctx.Err(); err != nil {
			r.err = err
			return 0, err
		}
		n, err := r.w.tr.Read(p)
		if n > 0 {
			if r.fileHash != nil {
				r.fileHash.Write(p[:n])
			}
			if r.partHash != nil {
				r.partHash.Write(p[:n])
			}
			r.size += int64(n)
			r.partSize += int64(n)
			if r.exp != nil && r.size > r.exp.Size {
				return 0, r.fail(r.entry, fmt.Sprintf("larger than the manifest says (%d bytes)", r.exp.Size))
			}
			if err == nil || err == io.EOF {
				if err == io.EOF {
					if e := r.endEntry(); e != nil {
						return 0, e
					}
				}
				return n, nil
			}
		}
		switch {
		case err == io.EOF:
			if e := r.endEntry(); e != nil {
				return 0, e
			}
		case err != nil:
			if r.err == nil {
				r.err = r.w.readErr(r.entry, err)
			}
			return 0, r.err
		}
	}
}

// sum is the file's SHA-256: computed, or, for a file in parts read
// against an expected manifest (no whole-file hash, see walker.file) or
// any file read with SameCopy, the expected one, which every part's
// checked hash (or the Verify of the same copy) stands for.
func (r *fileReader) sum() string {
	if r.fileHash == nil {
		return r.exp.SHA256
	}
	return hex.EncodeToString(r.fileHash.Sum(nil))
}

// endEntry finishes the current tar entry and moves to the next part, or
// ends the file.
func (r *fileReader) endEntry() error {
	if r.split {
		var sum string // "" when not hashed (SameCopy): the expected one below
		if r.partHash != nil {
			sum = hex.EncodeToString(r.partHash.Sum(nil))
		}
		part := Part{Path: r.entry, Size: r.partSize, SHA256: sum}
		if r.partSize == 0 {
			return r.fail(r.entry, "empty part")
		}
		if r.exp != nil {
			if len(r.exp.Parts) < r.partNo {
				return r.fail(r.entry, "not in the manifest")
			}
			want := r.exp.Parts[r.partNo-1]
			if part.Size != want.Size {
				return r.fail(r.entry, fmt.Sprintf("size mismatch: manifest says %d bytes, archive has %d", want.Size, part.Size))
			}
			if sum == "" {
				part.SHA256 = want.SHA256
			} else if part.SHA256 != want.SHA256 {
				return r.fail(r.entry, fmt.Sprintf("sha256 mismatch: manifest says %s, content is %s", want.SHA256, part.SHA256))
			}
		}
		r.parts = append(r.parts, part)
		h, err := r.w.next()
		if err != nil {
			if r.err == nil {
				r.err = err
			}
			return err
		}
		if h != nil && h.Name == PartPath(r.path, r.partNo+1) {
			if h.Typeflag != tar.TypeReg {
				return r.fail(h.Name, fmt.Sprintf("not a regular file (tar type %q)", h.Typeflag))
			}
			r.partNo++
			r.entry, r.partSize = h.Name, 0
			if r.partHash != nil {
				r.partHash.Reset()
			}
			if r.exp != nil && r.size+h.Size > r.exp.Size {
				return r.fail(h.Name, fmt.Sprintf("larger than the manifest says (%d bytes)", r.exp.Size))
			}
			return nil
		}
		r.w.pending = h
	}
	r.done = true
	if r.exp != nil {
		if len(r.parts) != len(r.exp.Parts) {
			return r.fail(r.path, fmt.Sprintf("stored in %d parts, the manifest says %d", len(r.parts), len(r.exp.Parts)))
		}
		if r.size != r.exp.Size {
			return r.fail(r.path, fmt.Sprintf("size mismatch: manifest says %d bytes, archive has %d", r.exp.Size, r.size))
		}
		if sum := r.sum(); sum != r.exp.SHA256 {
			return r.fail(r.path, fmt.Sprintf("sha256 mismatch: manifest says %s, content is %s", r.exp.SHA256, sum))
		}
	}
	return nil
}

// sourceReader reads the raw archive: it hashes (when h is set) and counts it, fails once
// ctx is done, and remembers a read error of the source itself so it is not
// mistaken for a corrupt archive.
type sourceReader struct {
	ctx context.Context
	r   io.Reader
	// mu guards what Read records: Read may run on frameReader's splitter
	// (reading ahead, and after a failed walk until it stops) while the
	// walk reads the error and, at its end, the count and hash.
	mu  sync.Mutex
	h   hash.Hash
	n   int64
	err error
}

func (s *sourceReader) Read(p []byte) (int, error) {
	if err := s.ctx.Err(); err != nil {
		return 0, err
	}
	n, err := s.r.Read(p)
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.h != nil {
		s.h.Write(p[:n])
	}
	s.n += int64(n)
	if err != nil && err != io.EOF && s.err == nil {
		s.err = err
	}
	return n, err
}

// readError is the source's own read error, if any.
func (s *sourceReader) readError() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.err
}

// read returns how many bytes were read and their SHA-256 (hex; "" when
// not hashed).
func (s *sourceReader) read() (int64, string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.h == nil {
		return s.n, ""
	}
	return s.n, hex.EncodeToString(s.h.Sum(nil))
}

var (
	gzipMagic = []byte{0x1f, 0x8b}
	zstdMagic = []byte{0x28, 0xb5, 0x2f, 0xfd}
)

// maxReadWorkers caps the goroutines that decompress one zstd archive.
const maxReadWorkers = 4

// decompressor detects the compression from the first bytes.
func decompressor(br *bufio.Reader) (io.Reader, Compression, func(), error) {
	head, err := br.Peek(4)
	if err != nil && len(head) < 2 {
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return nil, "", nil, fmt.Errorf("not a gzip or zstd stream: %w", err)
	}
	switch {
	case bytes.HasPrefix(head, gzipMagic):
		gz, err := gzip.NewReader(br)
		if err != nil {
			return nil, "", nil, fmt.Errorf("gzip: %w", err)
		}
		return gz, Gzip, func() { _ = gz.Close() }, nil
	case bytes.Equal(head, zstdMagic):
		zr, closeZ, err := newZstdReader(br, min(runtime.GOMAXPROCS(0), maxReadWorkers))
		if err != nil {
			return nil, "", nil, fmt.Errorf("zstd: %w", err)
		}
		return zr, Zstd, closeZ, nil
	}
	return nil, "", nil, errors.New("not a gzip or zstd stream")
}

// displayName returns an entry name fit for logs and API answers: as is
// when it is short printable ASCII, quoted and truncated otherwise (names
// come from possibly hostile archives).
func displayName(s string) string {
	if len(s) > 200 {
		return strconv.Quote(s[:200]) + "…"
	}
	for i := range len(s) {
		if s[i] < 0x20 || s[i] > 0x7e {
			return strconv.Quote(s)
		}
	}
	return s
}
