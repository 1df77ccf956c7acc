package backupfmt

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"runtime"
	"strings"
	"testing"
	"testing/iotest"
	"time"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"

	"github.com/insightops/insightops/shared/backupfmt/complevel"
)

const testChunk = 1000

func roundTripCases() map[string][]input {
	return map[string][]input{
		"small": {
			{path: "system/system.db", data: compressible(1, 700), count: 42},
			{path: "target/vanna_db.db", data: compressible(2, 300), count: 7},
			{path: "chroma/sql.jsonl", data: jsonl(3), stream: true},
		},
		"multi-part stream": {
			{path: "system/system.dump", data: compressible(3, 5*testChunk+123), stream: true, count: 99},
			{path: "chroma/ddl.jsonl", data: jsonl(40), stream: true},
			{path: "chroma/documentation.jsonl", data: nil, stream: true},
		},
		"exact chunk boundaries": {
			{path: "system/system.dump", data: compressible(4, testChunk), stream: true},
			{path: "target/vanna_db.db", data: compressible(5, 3*testChunk), stream: true},
			{path: "chroma/sql.jsonl", data: compressible(6, testChunk+1)[:0], stream: true},
		},
		"large known-size file": {
			{path: "target/vanna_db.db", data: compressible(7, 7*testChunk+5)},
		},
	}
}

func TestRoundTrip(t *testing.T) {
	for name, inputs := range roundTripCases() {
		for _, c := range []Compression{Gzip, Zstd} {
			t.Run(fmt.Sprintf("%s/%s", name, c), func(t *testing.T) {
				ctx := context.Background()
				archive, res := build(t, c, testChunk, inputs)
				sum := sha256.Sum256(archive)
				if res.SHA256 != hex.EncodeToString(sum[:]) {
					t.Fatalf("Result.SHA256 %s is not the archive's %x", res.SHA256, sum)
				}
				byPath := map[string]input{}
				for _, in := range inputs {
					byPath[in.path] = in
				}
				// Manifest content.
				files := res.Manifest.Files()
				if len(files) != len(inputs) {
					t.Fatalf("manifest has %d files, want %d", len(files), len(inputs))
				}
				for _, f := range files {
					in := byPath[f.Path]
					want := sha256.Sum256(in.data)
					if f.SHA256 != hex.EncodeToString(want[:]) || f.Size != int64(len(in.data)) {
						t.Errorf("%s: manifest size/sha %d/%s, want %d/%x", f.Path, f.Size, f.SHA256, len(in.data), want)
					}
					wantParts := 0
					if in.stream && len(in.data) > testChunk {
						wantParts = (len(in.data) + testChunk - 1) / testChunk
					}
					if len(f.Parts) != wantParts {
						t.Errorf("%s: %d parts, want %d", f.Path, len(f.Parts), wantParts)
					}
					for i, p := range f.Parts {
						if p.Size > testChunk || (i < len(f.Parts)-1 && p.Size != testChunk) {
							t.Errorf("%s: part %d has %d bytes", f.Path, i+1, p.Size)
						}
					}
					switch {
					case f.Kind == KindJSONL:
						if want := int64(bytes.Count(in.data, []byte("\n"))); f.Count != want {
							t.Errorf("%s: count %d, want %d", f.Path, f.Count, want)
						}
					case in.count > 0 && f.Count != in.count:
						t.Errorf("%s: count %d, want %d", f.Path, f.Count, in.count)
					}
				}
				if got := res.Manifest.Included(); len(got) == 0 {
					t.Fatal("no component included")
				}

				// Verify.
				rep, err := Verify(ctx, bytes.NewReader(archive), VerifyOptions{ReadOptions: ReadOptions{Name: ArchiveName(testCreated, testJobID, c)}})
				if err != nil {
					t.Fatalf("verify: %v", err)
				}
				if !rep.OK() || rep.Compression != c || rep.ArchiveSHA256 != res.SHA256 || rep.ArchiveSize != int64(len(archive)) {
					t.Fatalf("report: ok=%v compression=%s sha=%s size=%d", rep.OK(), rep.Compression, rep.ArchiveSHA256, rep.ArchiveSize)
				}
				for _, fr := range rep.Files {
					if fr.Kind == KindJSONL && (!fr.Checked || fr.Count != int64(bytes.Count(byPath[fr.Path].data, []byte("\n")))) {
						t.Errorf("%s: checked=%v count=%d", fr.Path, fr.Checked, fr.Count)
					}
				}

				// Walk, with and without Expect; and reading only part of a file.
				for _, expect := range []*Manifest{nil, &rep.Manifest} {
					var order []string
					m, err := Walk(ctx, bytes.NewReader(archive), ReadOptions{Expect: expect}, func(_ context.Context, f File, content io.Reader) error {
						order = append(order, f.Path)
						if f.Path == inputs[0].path {
							_, err := io.CopyN(io.Discard, content, 10)
							if err != nil && !errors.Is(err, io.EOF) {
								return err
							}
							return nil
						}
						got, err := io.ReadAll(content)
						if err != nil {
							return err
						}
						if !bytes.Equal(got, byPath[f.Path].data) {
							t.Errorf("%s: content differs (%d bytes, want %d)", f.Path, len(got), len(byPath[f.Path].data))
						}
						if expect != nil && (f.SHA256 == "" || f.Size != int64(len(got))) {
							t.Errorf("%s: Expect did not fill the file: %+v", f.Path, f)
						}
						return nil
					})
					if err != nil {
						t.Fatalf("walk (expect=%v): %v", expect != nil, err)
					}
					if m.JobID != testJobID {
						t.Fatalf("walk manifest job id %q", m.JobID)
					}
					for i, in := range inputs {
						if order[i] != in.path {
							t.Fatalf("walk order %v", order)
						}
					}
				}

				// Extract.
				dir := t.TempDir()
				if _, err := Extract(ctx, bytes.NewReader(archive), dir, ExtractOptions{}); err != nil {
					t.Fatalf("extract: %v", err)
				}
				for _, in := range inputs {
					got := readFile(t, dir, in.path)
					if !bytes.Equal(got, in.data) {
						t.Errorf("extracted %s differs", in.path)
					}
				}
			})
		}
	}
}

func TestManifestIsLastEntryAndPartsAreConsecutive(t *testing.T) {
	inputs := roundTripCases()["multi-part stream"]
	archive, _ := build(t, Gzip, testChunk, inputs)
	names := tarNames(t, archive)
	if names[len(names)-1] != ManifestName {
		t.Fatalf("last entry %q, want manifest.json: %v", names[len(names)-1], names)
	}
	want := []string{}
	for i := 1; i <= 6; i++ {
		want = append(want, PartPath("system/system.dump", i))
	}
	want = append(want, "chroma/ddl.jsonl.part-000001")
	if strings.Join(names[:7], ",") != strings.Join(want, ",") {
		t.Fatalf("entries %v", names)
	}
}

func TestDeterministic(t *testing.T) {
	inputs := roundTripCases()["multi-part stream"]
	for _, c := range []Compression{Gzip, Zstd} {
		a, ra := build(t, c, testChunk, inputs)
		b, rb := build(t, c, testChunk, inputs)
		if !bytes.Equal(a, b) || ra.SHA256 != rb.SHA256 {
			t.Errorf("%s: two archives of the same input differ", c)
		}
		// The files' hashes do not depend on the chunk size or compression.
		_, rc := build(t, Zstd, 7*testChunk, inputs)
		for i, f := range ra.Manifest.Files() {
			g := rc.Manifest.Files()[i]
			if f.SHA256 != g.SHA256 || f.Size != g.Size {
				t.Errorf("%s: hash depends on chunking", f.Path)
			}
		}
	}
}

// recompress rewrites the tar inside an archive through fn (the entries'
// raw bytes), keeping the compression.
func recompress(t *testing.T, archive []byte, c Compression, fn func(tarBytes []byte) []byte) []byte {
	t.Helper()
	var raw []byte
	var err error
	switch c {
	case Gzip:
		zr, e := gzip.NewReader(bytes.NewReader(archive))
		if e != nil {
			t.Fatal(e)
		}
		raw, err = io.ReadAll(zr)
	case Zstd:
		zr, e := zstd.NewReader(bytes.NewReader(archive))
		if e != nil {
			t.Fatal(e)
		}
		defer zr.Close()
		raw, err = io.ReadAll(zr)
	}
	if err != nil {
		t.Fatal(err)
	}
	raw = fn(raw)
	var out bytes.Buffer
	switch c {
	case Gzip:
		zw := gzip.NewWriter(&out)
		zw.Write(raw)
		zw.Close()
	case Zstd:
		zw, _ := zstd.NewWriter(&out)
		zw.Write(raw)
		zw.Close()
	}
	return out.Bytes()
}

// offsetOf returns where the content of entry name starts in a tar stream.
func offsetOf(t *testing.T, tarBytes []byte, name string) int {
	t.Helper()
	cr := &countReader{r: bytes.NewReader(tarBytes)}
	tr := tar.NewReader(cr)
	for {
		h, err := tr.Next()
		if err != nil {
			t.Fatalf("entry %s not found: %v", name, err)
		}
		if h.Name == name {
			return int(cr.n)
		}
	}
}

type countReader struct {
	r io.Reader
	n int64
}

func (c *countReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

func TestFlippedByteNamesThePart(t *testing.T) {
	inputs := []input{
		{path: "system/system.dump", data: compressible(3, 5*testChunk+123), stream: true},
		{path: "target/vanna_db.db", data: compressible(2, 800)},
		{path: "chroma/sql.jsonl", data: jsonl(5), stream: true},
	}
	cases := []struct {
		entry, want string
	}{
		{"system/system.dump.part-000003", "system/system.dump.part-000003: sha256 mismatch"},
		{"target/vanna_db.db", "target/vanna_db.db: sha256 mismatch"},
		{"chroma/sql.jsonl", "chroma/sql.jsonl: "},
	}
	for _, c := range []Compression{Gzip, Zstd} {
		archive, _ := build(t, c, testChunk, inputs)
		for _, tc := range cases {
			bad := recompress(t, archive, c, func(raw []byte) []byte {
				off := offsetOf(t, raw, tc.entry) + 17
				raw[off] ^= 0x01
				return raw
			})
			rep, err := Verify(context.Background(), bytes.NewReader(bad), VerifyOptions{})
			if err == nil || !errors.Is(err, ErrInvalidArchive) {
				t.Fatalf("%s %s: verify = %v, want ErrInvalidArchive", c, tc.entry, err)
			}
			if !strings.HasPrefix(err.Error(), tc.want) {
				t.Errorf("%s %s: error %q, want prefix %q", c, tc.entry, err, tc.want)
			}
			var ae *Error
			if !errors.As(err, &ae) || !strings.HasPrefix(ae.Path, strings.TrimSuffix(tc.want[:strings.Index(tc.want, ":")], "")) {
				t.Errorf("%s: errors.As: %#v", c, ae)
			}
			if rep.OK() {
				t.Errorf("report OK despite %v", err)
			}
			// With Expect, the consumer sees the error instead of EOF.
			good, err := Verify(context.Background(), bytes.NewReader(archive), VerifyOptions{})
			if err != nil {
				t.Fatal(err)
			}
			var sawErr error
			_, err = Walk(context.Background(), bytes.NewReader(bad), ReadOptions{Expect: &good.Manifest}, func(_ context.Context, f File, content io.Reader) error {
				_, e := io.Copy(io.Discard, content)
				if e != nil {
					sawErr = e
				}
				return e
			})
			if err == nil || sawErr == nil || !errors.Is(sawErr, ErrInvalidArchive) {
				t.Errorf("%s %s: walk with Expect: err=%v, consumer saw %v", c, tc.entry, err, sawErr)
			}
		}
	}
}

func TestCorruptCompressedByte(t *testing.T) {
	inputs := []input{
		{path: "system/system.dump", data: compressible(3, 8*testChunk), stream: true},
		{path: "chroma/sql.jsonl", data: jsonl(50), stream: true},
	}
	for _, c := range []Compression{Gzip, Zstd} {
		archive, res := build(t, c, testChunk, inputs)
		// Flip a byte in the middle of the compressed bytes of part 4.
		offsets := memberOffsets(t, archive, c)
		if len(offsets) < 18 {
			t.Fatalf("%s: %d compression members, want two per entry", c, len(offsets))
		}
		bad := bytes.Clone(archive)
		mid := (offsets[7] + offsets[8]) / 2 // the data of part 4
		bad[mid] ^= 0x40
		_, err := Verify(context.Background(), bytes.NewReader(bad), VerifyOptions{})
		if !errors.Is(err, ErrInvalidArchive) {
			t.Fatalf("%s: verify of a corrupt archive = %v", c, err)
		}
		if !strings.HasPrefix(err.Error(), "system/system.dump.part-000004") {
			t.Errorf("%s: error %q does not name part 4", c, err)
		}
		_ = res
	}
}

// memberOffsets returns where each gzip member / zstd frame starts.
func memberOffsets(t *testing.T, archive []byte, c Compression) []int {
	t.Helper()
	magic := gzipMagic
	if c == Zstd {
		magic = zstdMagic
	}
	var offs []int
	for i := 0; i+len(magic) <= len(archive); i++ {
		if bytes.HasPrefix(archive[i:], magic) {
			// Confirm: a member decodes from here.
			ok := false
			if c == Gzip {
				zr, err := gzip.NewReader(bytes.NewReader(archive[i:]))
				if err == nil {
					zr.Multistream(false)
					_, err = io.Copy(io.Discard, zr)
					ok = err == nil
				}
			} else {
				zr, err := zstd.NewReader(bytes.NewReader(archive[i:]))
				if err == nil {
					_, err = io.Copy(io.Discard, zr)
					ok = err == nil
					zr.Close()
				}
			}
			if ok {
				offs = append(offs, i)
			}
		}
	}
	return offs
}

func TestTruncatedAndGarbage(t *testing.T) {
	inputs := roundTripCases()["multi-part stream"]
	for _, c := range []Compression{Gzip, Zstd} {
		archive, _ := build(t, c, testChunk, inputs)
		for _, n := range []int{0, 1, 3, 10, len(archive) / 3, len(archive) / 2, len(archive) - 30, len(archive) - 1} {
			_, err := Verify(context.Background(), bytes.NewReader(archive[:n]), VerifyOptions{})
			if !errors.Is(err, ErrInvalidArchive) {
				t.Errorf("%s truncated to %d of %d bytes: %v", c, n, len(archive), err)
			}
			dir := t.TempDir()
			if _, err := Extract(context.Background(), bytes.NewReader(archive[:n]), dir, ExtractOptions{}); !errors.Is(err, ErrInvalidArchive) {
				t.Errorf("%s extract truncated to %d: %v", c, n, err)
			}
			assertEmpty(t, dir)
		}
		withGarbage := append(bytes.Clone(archive), []byte("garbage after the end")...)
		if _, err := Verify(context.Background(), bytes.NewReader(withGarbage), VerifyOptions{}); !errors.Is(err, ErrInvalidArchive) {
			t.Errorf("%s: trailing garbage accepted: %v", c, err)
		}
	}
	if _, err := Verify(context.Background(), strings.NewReader("plain text, not an archive"), VerifyOptions{}); !errors.Is(err, ErrInvalidArchive) {
		t.Errorf("plain text: %v", err)
	}
}

func TestSourceErrorIsNotInvalidArchive(t *testing.T) {
	archive, _ := build(t, Gzip, testChunk, roundTripCases()["multi-part stream"])
	boom := errors.New("connection reset")
	r := io.MultiReader(bytes.NewReader(archive[:len(archive)/2]), iotest.ErrReader(boom))
	_, err := Verify(context.Background(), r, VerifyOptions{})
	if err == nil || errors.Is(err, ErrInvalidArchive) || !errors.Is(err, boom) {
		t.Fatalf("verify with a failing source = %v, want the source error, not ErrInvalidArchive", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := Verify(ctx, bytes.NewReader(archive), VerifyOptions{}); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled verify = %v", err)
	}
}

func TestVerifyNameMismatch(t *testing.T) {
	archive, _ := build(t, Gzip, testChunk, roundTripCases()["small"])
	for _, name := range []string{
		ArchiveName(testCreated.Add(1e9), testJobID, Gzip),
		ArchiveName(testCreated, "01JD5ZQ8W3K9V4T7X2M6N1P0RT", Gzip),
		ArchiveName(testCreated, testJobID, Zstd),
	} {
		_, err := Verify(context.Background(), bytes.NewReader(archive), VerifyOptions{ReadOptions: ReadOptions{Name: name}})
		if !errors.Is(err, ErrInvalidArchive) || !strings.HasPrefix(err.Error(), "manifest.json: ") {
			t.Errorf("name %s: %v", name, err)
		}
	}
}

func TestVerifyCheckers(t *testing.T) {
	inputs := []input{
		{path: "system/system.db", data: compressible(1, 100), count: 5},
		{path: "chroma/sql.jsonl", data: []byte("{\"id\":\"a\"}\n{\"id\":\"b\"}\n"), stream: true},
	}
	archive, _ := build(t, Zstd, testChunk, inputs)
	var seen []string
	checkers := map[string]Checker{
		KindSQLite: func(ctx context.Context, f File, r io.Reader) (int64, error) {
			seen = append(seen, f.Path)
			return 4, nil // the manifest says 5
		},
		KindJSONL: CheckJSONL,
	}
	rep, err := Verify(context.Background(), bytes.NewReader(archive), VerifyOptions{Checkers: checkers})
	if err == nil || err.Error() != "system/system.db: count mismatch: manifest says 5, content has 4" {
		t.Fatalf("verify = %v", err)
	}
	if len(seen) != 1 || len(rep.Problems) != 1 {
		t.Fatalf("seen %v, problems %v", seen, rep.Problems)
	}
	checkers[KindSQLite] = func(ctx context.Context, f File, r io.Reader) (int64, error) {
		return CountUnknown, errors.New("database disk image is malformed")
	}
	_, err = Verify(context.Background(), bytes.NewReader(archive), VerifyOptions{Checkers: checkers})
	if err == nil || err.Error() != "system/system.db: check: database disk image is malformed" {
		t.Fatalf("verify = %v", err)
	}
	// A JSONL file whose content does not parse.
	bad := []input{{path: "chroma/sql.jsonl", data: []byte("{\"id\":\"a\"}\nnot json\n"), stream: true}}
	archive, _ = build(t, Gzip, testChunk, bad)
	_, err = Verify(context.Background(), bytes.NewReader(archive), VerifyOptions{})
	if err == nil || !strings.HasPrefix(err.Error(), "chroma/sql.jsonl: check: record 2: not a JSON object") {
		t.Fatalf("verify = %v", err)
	}
}

func TestCheckJSONL(t *testing.T) {
	cases := []struct {
		in    string
		count int64
		err   string
	}{
		{"", 0, ""},
		{"{\"id\":\"a\"}\n", 1, ""},
		{"{\"id\":\"a\"}\n{\"id\":\"b\",\"embedding\":[1,2]}", 2, ""},
		{"{\"id\":\"a\"}\n\n", 1, "blank line"},
		{"[1,2]\n", 0, "not a JSON object"},
		{"{\"id\":\"a\"\n", 0, "not valid JSON"},
		{"{\"document\":\"x\"}\n", 0, "id"},
		{"{\"id\":\"\"}\n", 0, "id"},
		{"{\"id\":7}\n", 0, "id"},
		{"{\"id\":\"a\"} {\"id\":\"b\"}\n", 0, "not valid JSON"},
		// What the restore (vectors.ReadJSONL) would refuse half-way through.
		{"\u00a0{\"id\":\"a\"}\n", 0, "not a JSON object"},
		{"{\"id\":\"a\",\"document\":5}\n", 0, "document"},
		{"{\"id\":\"a\",\"metadata\":[1]}\n", 0, "metadata"},
		{"{\"id\":\"a\",\"embedding\":[\"x\"]}\n", 0, "number"},
		// A repeated key (matched case-insensitively) judged as the restore does.
		{"{\"id\":\"a\",\"metAdAtA\":\"\",\"metadata\":{}}\n", 0, "metadata"},
		{"{\"id\":1,\"id\":\"a\"}\n", 0, "id"},
		{"{\"id\":\"a\",\"embedding\":[1e39]}\n", 0, "float32"},
		{"{\"id\":\"a\",\"document\":null,\"metadata\":null,\"embedding\":null}\n", 1, ""},
	}
	for _, tc := range cases {
		n, err := CheckJSONL(context.Background(), File{}, strings.NewReader(tc.in))
		switch {
		case tc.err == "" && (err != nil || n != tc.count):
			t.Errorf("%q: %d, %v", tc.in, n, err)
		case tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)):
			t.Errorf("%q: error %v, want %q", tc.in, err, tc.err)
		}
	}
	long := "{\"id\":\"a\",\"document\":\"" + strings.Repeat("x", 3<<20) + "\"}\n"
	if n, err := CheckJSONL(context.Background(), File{}, strings.NewReader(long+long)); err != nil || n != 2 {
		t.Errorf("long lines: %d, %v", n, err)
	}
}

func TestWriterErrors(t *testing.T) {
	ctx := context.Background()
	w, err := NewWriter(io.Discard, Gzip)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ component, path, kind, want string }{
		{"system", "target/x.db", KindSQLite, "is not under the component directory system/"},
		{"system", "system/x.db", KindJSONL, "but its extension means"},
		{"system", "system/../x.db", KindSQLite, "x.db"},
		{"system", "/system/x.db", KindSQLite, "/system/x.db"},
		{"system", "system/x.dump.part-000001", "part-000001", "system/x.dump.part-000001"},
		{"other", "other/x.db", KindSQLite, "other"},
	} {
		if _, err := w.AddStream(ctx, tc.component, tc.path, tc.kind, strings.NewReader("x")); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("AddStream(%s, %s, %s) = %v, want an error saying %q", tc.component, tc.path, tc.kind, err, tc.want)
		}
	}
	if _, err := w.AddStream(ctx, "system", "system/x.db", KindSQLite, strings.NewReader("x")); err != nil {
		t.Fatal(err)
	}
	if _, err := w.AddStream(ctx, "system", "system/x.db", KindSQLite, strings.NewReader("x")); err == nil || !strings.Contains(err.Error(), "system/x.db added twice") {
		t.Errorf("duplicate: %v, want the added-twice refusal", err)
	}
	_, shortErr := w.AddFile(ctx, "target", "target/short.db", KindSQLite, strings.NewReader("abc"), 4)
	if shortErr == nil || !strings.Contains(shortErr.Error(), "source ended after 3 of 4 bytes") {
		t.Errorf("short AddFile: %v, want the source-ended error", shortErr)
	}
	// The writer is failed for good: the next call returns the same error.
	if _, err := w.AddFile(ctx, "target", "target/y.db", KindSQLite, strings.NewReader("abc"), 2); err == nil || shortErr == nil || err.Error() != shortErr.Error() {
		t.Errorf("writer after an error: %v, want the earlier %v", err, shortErr)
	}
	// A reader failing mid-stream fails the writer.
	w, _ = NewWriter(io.Discard, Zstd, WithChunkSize(10))
	boom := errors.New("pg_dump died")
	_, err = w.AddStream(ctx, "system", "system/system.dump", KindPGDump, io.MultiReader(strings.NewReader(strings.Repeat("x", 25)), iotest.ErrReader(boom)))
	if !errors.Is(err, boom) {
		t.Fatalf("AddStream with failing reader = %v", err)
	}
	if _, err := w.Close(testManifest()); !errors.Is(err, boom) {
		t.Fatalf("Close after a failed AddStream = %v, want the reader's error", err)
	}
	w.Abort()
	// Cancelled context.
	w, _ = NewWriter(io.Discard, Gzip)
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := w.AddStream(cctx, "system", "system/system.dump", KindPGDump, strings.NewReader("x")); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled AddStream = %v", err)
	}
	// Close validates.
	w, _ = NewWriter(io.Discard, Gzip)
	if _, err := w.Close(Manifest{JobID: testJobID}); err == nil || !strings.Contains(err.Error(), "created_at missing") {
		t.Errorf("Close without created_at: %v", err)
	}
	w, _ = NewWriter(io.Discard, Gzip)
	m := testManifest()
	m.Components[ComponentSystem] = Component{Status: StatusIncluded}
	if _, err := w.Close(m); err == nil || !strings.Contains(err.Error(), "included but lists no files") {
		t.Errorf("Close with an included component without files: %v", err)
	}
	w, _ = NewWriter(io.Discard, Gzip)
	m = testManifest()
	m.Components = map[string]Component{ComponentTarget: {Source: "postgres://app:s3cret@db:5432/target"}}
	w.AddStream(ctx, "target", "target/t.db", KindSQLite, strings.NewReader("x"))
	if _, err := w.Close(m); err == nil || !strings.Contains(err.Error(), "password") {
		t.Errorf("Close with credentials in source = %v", err)
	}
	if _, err := NewWriter(io.Discard, "xz"); err == nil || !strings.Contains(err.Error(), `compression "xz": accepted values: gzip, zstd`) {
		t.Errorf("unknown compression: %v", err)
	}
	if _, err := NewWriter(io.Discard, Zstd, WithLevel(30)); err == nil || !strings.Contains(err.Error(), "zstd level 30: accepted values: 1 to 22") {
		t.Errorf("zstd level 30: %v", err)
	}
}

func TestNoGoroutineLeak(t *testing.T) {
	inputs := roundTripCases()["multi-part stream"]
	settle := func() int {
		time.Sleep(10 * time.Millisecond)
		return runtime.NumGoroutine()
	}
	before := settle()
	for _, c := range []Compression{Gzip, Zstd} {
		archive, _ := build(t, c, testChunk, inputs)
		Verify(context.Background(), bytes.NewReader(archive), VerifyOptions{})
		Verify(context.Background(), bytes.NewReader(archive[:len(archive)/2]), VerifyOptions{})
		Walk(context.Background(), bytes.NewReader(archive), ReadOptions{}, func(context.Context, File, io.Reader) error { return errors.New("stop") })
		w, _ := NewWriter(io.Discard, c)
		w.AddStream(context.Background(), ComponentSystem, "system/system.dump", KindPGDump, bytes.NewReader(compressible(1, 100_000)))
		w.Abort()
	}
	deadline := time.Now().Add(2 * time.Second)
	for settle() > before {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<16)
			t.Fatalf("%d goroutines before, %d after:\n%s", before, runtime.NumGoroutine(), buf[:runtime.Stack(buf, true)])
		}
	}
}

// Without WithLevel a writer uses the compression's default level
// (complevel.Of), on one goroutine and on several; another level changes
// the archive, which still verifies.
func TestDefaultLevelIsTheCompressionsDefault(t *testing.T) {
	inputs := []input{{path: "target/vanna_db.db", data: compressible(3, 3*testChunk+11), stream: true, count: -1}}
	for _, c := range []Compression{Gzip, Zstd} {
		levels, err := complevel.Of(string(c))
		if err != nil {
			t.Fatal(err)
		}
		for _, workers := range []int{1, 2} {
			t.Run(fmt.Sprintf("%s/%d workers", c, workers), func(t *testing.T) {
				def, _ := build(t, c, testChunk, inputs, WithConcurrency(workers))
				explicit, _ := build(t, c, testChunk, inputs, WithConcurrency(workers), WithLevel(levels.Default))
				best, _ := build(t, c, testChunk, inputs, WithConcurrency(workers), WithLevel(levels.Max))
				if !bytes.Equal(def, explicit) {
					t.Errorf("the default archive differs from one written with WithLevel(%d)", levels.Default)
				}
				if bytes.Equal(def, best) {
					t.Errorf("WithLevel(%d) wrote the same archive as the default", levels.Max)
				}
				for _, a := range [][]byte{def, best} {
					if _, err := Verify(context.Background(), bytes.NewReader(a), VerifyOptions{}); err != nil {
						t.Fatal(err)
					}
				}
			})
		}
	}
}
