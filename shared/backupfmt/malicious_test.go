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
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
)

// rawEntry is one hand-made tar entry.
type rawEntry struct {
	name     string
	typ      byte // tar.TypeReg when 0
	linkname string
	data     []byte
	pax      map[string]string
}

// manifestFor returns a valid manifest listing files (path → content).
func manifestFor(files map[string][]byte, c Compression) Manifest {
	m := testManifest()
	m.FormatVersion, m.Compression = FormatVersion, c
	for name, comp := range m.Components {
		comp.Status, comp.Reason, comp.Files = StatusSkipped, "not requested", []File{}
		m.Components[name] = comp
	}
	for _, p := range sortedKeys(files) {
		sum := sha256.Sum256(files[p])
		f := File{Path: p, Size: int64(len(files[p])), SHA256: hex.EncodeToString(sum[:]), Count: CountUnknown, Kind: KindOf(p)}
		comp := m.Components[f.Component()]
		comp.Status, comp.Reason = StatusIncluded, ""
		comp.Files = append(comp.Files, f)
		m.Components[f.Component()] = comp
	}
	return m
}

func sortedKeys(m map[string][]byte) []string {
	var keys []string
	for k := range m {
		keys = append(keys, k)
	}
	for i := range keys {
		for j := i + 1; j < len(keys); j++ {
			if keys[j] < keys[i] {
				keys[i], keys[j] = keys[j], keys[i]
			}
		}
	}
	return keys
}

// rawTar writes entries (and the manifest last, if m is not nil) as a plain tar.
func rawTar(t testing.TB, entries []rawEntry, m *Manifest) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	if m != nil {
		data, err := m.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		entries = append(entries, rawEntry{name: ManifestName, data: data})
	}
	for _, e := range entries {
		if p := e.pax["path"]; p != "" {
			// archive/tar will not write a "path" record that differs from
			// Name: write the extended header by hand.
			writePAXPath(t, &buf, tw, p)
		}
		typ := e.typ
		if typ == 0 {
			typ = tar.TypeReg
		}
		h := &tar.Header{Name: e.name, Typeflag: typ, Linkname: e.linkname, Mode: 0o644}
		if typ == tar.TypeReg {
			h.Size = int64(len(e.data))
		}
		if typ == tar.TypeChar {
			h.Devmajor, h.Devminor = 1, 3
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatalf("header %q: %v", e.name, err)
		}
		if typ == tar.TypeReg {
			if _, err := tw.Write(e.data); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func compress(t testing.TB, c Compression, raw []byte) []byte {
	t.Helper()
	var out bytes.Buffer
	switch c {
	case Gzip:
		zw := gzip.NewWriter(&out)
		zw.Write(raw)
		zw.Close()
	case Zstd:
		zw, err := zstd.NewWriter(&out)
		if err != nil {
			t.Fatal(err)
		}
		zw.Write(raw)
		zw.Close()
	}
	return out.Bytes()
}

type maliciousCase struct {
	name    string
	entries []rawEntry
	// listed are the files the manifest lists (defaults to the regular entries).
	listed map[string][]byte
	// expectOnly: the attack is only caught while streaming when Expect is given
	// (otherwise at the end, after which the extracted files are removed).
	noManifest bool
}

func maliciousCases() []maliciousCase {
	good := []byte("good content\n")
	big := bytes.Repeat([]byte("A"), 100_000)
	return []maliciousCase{
		{name: "dotdot", entries: []rawEntry{{name: "../evil", data: good}}},
		{name: "dotdot inside", entries: []rawEntry{{name: "system/../../evil", data: good}}},
		{name: "absolute", entries: []rawEntry{{name: "/etc/x", data: good}}},
		{name: "absolute under component", entries: []rawEntry{{name: "/system/x.db", data: good}}},
		{name: "backslashes", entries: []rawEntry{{name: `system\..\..\evil`, data: good}}},
		{name: "pax path override", entries: []rawEntry{{name: "system/ok.db", data: good, pax: map[string]string{"path": "../../evil"}}}, listed: map[string][]byte{"system/ok.db": good}},
		{name: "long gnu name", entries: []rawEntry{{name: "system/" + strings.Repeat("a/", 70) + "../../../../../../../../evil", data: good}}},
		{name: "not a component", entries: []rawEntry{{name: "etc/passwd", data: good}}},
		{name: "top-level file", entries: []rawEntry{{name: "evil.sh", data: good}}},
		{name: "symlink then write-through", entries: []rawEntry{
			{name: "system/link", typ: tar.TypeSymlink, linkname: "/tmp"},
			{name: "system/link/evil", data: good},
		}},
		{name: "relative symlink", entries: []rawEntry{{name: "system/link", typ: tar.TypeSymlink, linkname: "../../.."}}},
		{name: "hard link", entries: []rawEntry{{name: "system/system.db", typ: tar.TypeLink, linkname: "/etc/passwd"}}},
		{name: "char device", entries: []rawEntry{{name: "system/null", typ: tar.TypeChar}}},
		{name: "fifo", entries: []rawEntry{{name: "system/fifo", typ: tar.TypeFifo}}},
		{name: "directory", entries: []rawEntry{{name: "system/", typ: tar.TypeDir}}},
		{name: "duplicate entry", entries: []rawEntry{{name: "system/a.db", data: good}, {name: "system/a.db", data: good}}, listed: map[string][]byte{"system/a.db": good}},
		{name: "second part without first", entries: []rawEntry{{name: "system/a.dump.part-000002", data: good}}, listed: map[string][]byte{}},
		{name: "oversized entry", entries: []rawEntry{{name: "target/vanna_db.db", data: big}}, listed: map[string][]byte{"target/vanna_db.db": good}},
		{name: "name not in manifest", entries: []rawEntry{{name: "target/vanna_db.db", data: good}, {name: "target/extra.db", data: good}}, listed: map[string][]byte{"target/vanna_db.db": good}},
		{name: "entry after manifest", entries: nil},
		{name: "no manifest", entries: []rawEntry{{name: "target/vanna_db.db", data: good}}, noManifest: true},
	}
}

// build returns the archive of a malicious case.
func (mc maliciousCase) build(t testing.TB, c Compression) ([]byte, Manifest) {
	listed := mc.listed
	if listed == nil {
		listed = map[string][]byte{}
		for _, e := range mc.entries {
			if e.typ == 0 || e.typ == tar.TypeReg {
				listed[e.name] = e.data
			}
		}
	}
	// A manifest with invalid paths cannot be marshalled through Validate,
	// so malicious names get a harmless manifest: the entry itself must be refused.
	for p := range listed {
		if ValidatePath(p) != nil {
			delete(listed, p)
		}
	}
	if len(listed) == 0 {
		listed["chroma/sql.jsonl"] = []byte("{\"id\":\"x\"}\n")
	}
	m := manifestFor(listed, c)
	entries := mc.entries
	var raw []byte
	switch {
	case mc.noManifest:
		raw = rawTar(t, entries, nil)
	case mc.name == "entry after manifest":
		data, _ := m.Marshal()
		raw = rawTar(t, []rawEntry{{name: "chroma/sql.jsonl", data: listed["chroma/sql.jsonl"]}, {name: ManifestName, data: data}, {name: "system/late.db", data: []byte("late")}}, nil)
	default:
		// Listed files the case did not add itself are appended, so only
		// the attack is wrong.
		have := map[string]bool{}
		for _, e := range entries {
			have[e.name] = true
		}
		for _, p := range sortedKeys(listed) {
			if !have[p] {
				entries = append(entries, rawEntry{name: p, data: listed[p]})
			}
		}
		raw = rawTar(t, entries, &m)
	}
	return compress(t, c, raw), m
}

func TestMaliciousArchives(t *testing.T) {
	for _, mc := range maliciousCases() {
		for _, c := range []Compression{Gzip, Zstd} {
			t.Run(mc.name+"/"+string(c), func(t *testing.T) {
				archive, m := mc.build(t, c)
				if _, err := Verify(context.Background(), bytes.NewReader(archive), VerifyOptions{}); !errors.Is(err, ErrInvalidArchive) {
					t.Fatalf("verify = %v, want ErrInvalidArchive", err)
				}
				for _, expect := range []*Manifest{nil, &m} {
					parent := t.TempDir()
					dir := filepath.Join(parent, "scratch")
					if err := os.Mkdir(dir, 0o700); err != nil {
						t.Fatal(err)
					}
					_, err := Extract(context.Background(), bytes.NewReader(archive), dir, ExtractOptions{ReadOptions: ReadOptions{Expect: expect}})
					if !errors.Is(err, ErrInvalidArchive) {
						t.Fatalf("extract (expect=%v) = %v, want ErrInvalidArchive", expect != nil, err)
					}
					assertOnly(t, parent, "scratch")
					assertEmpty(t, dir)
				}
			})
		}
	}
}

// assertOnly fails unless dir holds exactly the named entries.
func assertOnly(t testing.TB, dir string, names ...string) {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range entries {
		got = append(got, e.Name())
	}
	if strings.Join(got, ",") != strings.Join(names, ",") {
		t.Fatalf("%s holds %v, want %v", dir, got, names)
	}
}

func TestExtractOversizedStopsEarlyWithExpect(t *testing.T) {
	good := []byte("good content\n")
	m := manifestFor(map[string][]byte{"target/vanna_db.db": good}, Gzip)
	// 64 MiB of zeros compress to almost nothing: a zip bomb for a naive extractor.
	bomb := make([]byte, 64<<20)
	raw := rawTar(t, []rawEntry{{name: "target/vanna_db.db", data: bomb}}, &m)
	archive := compress(t, Gzip, raw)
	dir := t.TempDir()
	var written int64
	_, err := Walk(context.Background(), bytes.NewReader(archive), ReadOptions{Expect: &m}, func(_ context.Context, f File, content io.Reader) error {
		n, err := io.Copy(io.Discard, content)
		written = n
		return err
	})
	if !errors.Is(err, ErrInvalidArchive) || written > int64(len(good)) {
		t.Fatalf("walk = %v after %d bytes", err, written)
	}
	if _, err := Extract(context.Background(), bytes.NewReader(archive), dir, ExtractOptions{ReadOptions: ReadOptions{Expect: &m}}); !errors.Is(err, ErrInvalidArchive) || !errors.Is(err, ErrDecompressionLimit) {
		// The entry declares more than the whole manifest allows: a bomb, refused at its header.
		t.Fatalf("extract = %v", err)
	}
	assertEmpty(t, dir)
	// Without Expect, MaxBytes caps what is written.
	if _, err := Extract(context.Background(), bytes.NewReader(archive), dir, ExtractOptions{MaxBytes: 1 << 20}); err == nil || !errors.Is(err, errExtractCap) {
		t.Fatalf("extract with MaxBytes = %v", err)
	}
	assertEmpty(t, dir)
}

func TestExtractRefusesPlantedLinks(t *testing.T) {
	inputs := []input{{path: "system/system.db", data: []byte("db")}, {path: "target/vanna_db.db", data: []byte("target")}}
	archive, _ := build(t, Gzip, testChunk, inputs)
	parent := t.TempDir()
	outside := filepath.Join(parent, "outside")
	dir := filepath.Join(parent, "scratch")
	for _, d := range []string{outside, dir, filepath.Join(dir, "target")} {
		if err := os.Mkdir(d, 0o700); err != nil {
			t.Fatal(err)
		}
	}
	// system/ is a link out of the scratch dir; target/vanna_db.db a link to a file outside.
	if err := os.Symlink(outside, filepath.Join(dir, "system")); err != nil {
		t.Fatal(err)
	}
	victim := filepath.Join(outside, "victim")
	os.WriteFile(victim, []byte("keep"), 0o600)
	if err := os.Symlink(victim, filepath.Join(dir, "target", "vanna_db.db")); err != nil {
		t.Fatal(err)
	}
	// The first entry's directory, system/, is the planted link: refused
	// as not a directory rather than followed.
	if _, err := Extract(context.Background(), bytes.NewReader(archive), dir, ExtractOptions{}); err == nil || !strings.Contains(err.Error(), "extract: system exists and is not a directory") {
		t.Fatalf("extract through a planted symlink = %v, want the not-a-directory refusal", err)
	}
	assertOnly(t, outside, "victim")
	if b, _ := os.ReadFile(victim); string(b) != "keep" {
		t.Fatalf("victim overwritten: %q", b)
	}
	// Only the planted links remain; nothing the failed Extract created.
	os.Remove(filepath.Join(dir, "system"))
	// With system/ free, the file link target/vanna_db.db is met: the
	// exclusive create refuses the existing name instead of writing
	// through the link.
	if _, err := Extract(context.Background(), bytes.NewReader(archive), dir, ExtractOptions{}); !errors.Is(err, fs.ErrExist) {
		t.Fatalf("extract onto a planted file link = %v, want fs.ErrExist", err)
	}
	if b, _ := os.ReadFile(victim); string(b) != "keep" {
		t.Fatalf("victim overwritten through a file link: %q", b)
	}
	assertOnly(t, dir, "target")
	dir2 := filepath.Join(parent, "scratch2")
	os.Mkdir(dir2, 0o700)
	if _, err := Extract(context.Background(), bytes.NewReader(archive), dir2, ExtractOptions{Filter: func(p string) bool { return p == "target/vanna_db.db" }}); err != nil {
		t.Fatal(err)
	}
	assertOnly(t, dir2, "target")
	if got := readFile(t, dir2, "target/vanna_db.db"); string(got) != "target" {
		t.Fatalf("filtered extract: %q", got)
	}
}

// Any single flipped byte either fails verification or leaves the
// content intact (gzip header fields such as MTIME are not checksummed;
// the archive's own SHA-256, kept by the store, covers those).
func TestEveryFlippedByteIsCaughtOrHarmless(t *testing.T) {
	inputs := []input{
		{path: "system/system.dump", data: compressible(9, 2500), stream: true},
		{path: "chroma/sql.jsonl", data: jsonl(4), stream: true},
	}
	for _, c := range []Compression{Gzip, Zstd} {
		archive, _ := build(t, c, testChunk, inputs)
		for i := range archive {
			bad := bytes.Clone(archive)
			bad[i] ^= 0x10
			got := map[string][]byte{}
			_, err := Walk(context.Background(), bytes.NewReader(bad), ReadOptions{}, func(_ context.Context, f File, content io.Reader) error {
				b, err := io.ReadAll(content)
				got[f.Path] = b
				return err
			})
			if err != nil {
				if !errors.Is(err, ErrInvalidArchive) {
					t.Fatalf("%s byte %d: %v is not ErrInvalidArchive", c, i, err)
				}
				continue
			}
			for _, in := range inputs {
				if !bytes.Equal(got[in.path], in.data) {
					t.Fatalf("%s byte %d: walk succeeded with different content of %s", c, i, in.path)
				}
			}
		}
	}
}

// writePAXPath writes a PAX extended header whose "path" record renames the
// next entry: a regular entry holding the record, its type patched to 'x'.
func writePAXPath(t testing.TB, buf *bytes.Buffer, tw *tar.Writer, p string) {
	t.Helper()
	rec := " path=" + p + "\n"
	for n := len(rec); ; n++ {
		if s := strconv.Itoa(n) + rec; len(s) == n {
			rec = s
			break
		}
	}
	start := buf.Len()
	if err := tw.WriteHeader(&tar.Header{Name: "PaxHeader", Typeflag: tar.TypeReg, Size: int64(len(rec)), Mode: 0o644}); err != nil {
		t.Fatal(err)
	}
	if _, err := tw.Write([]byte(rec)); err != nil {
		t.Fatal(err)
	}
	if err := tw.Flush(); err != nil {
		t.Fatal(err)
	}
	blk := buf.Bytes()[start : start+512]
	blk[156] = tar.TypeXHeader
	copy(blk[148:156], "        ")
	sum := 0
	for _, b := range blk {
		sum += int(b)
	}
	copy(blk[148:156], fmt.Sprintf("%06o\x00 ", sum))
}
