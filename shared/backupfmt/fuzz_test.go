package backupfmt

import (
	"bytes"
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func FuzzParseArchiveName(f *testing.F) {
	for _, s := range []string{
		ArchiveName(testCreated, testJobID, Gzip),
		ArchiveName(testCreated, testJobID, Zstd),
		"backup-20261127T101500Z-" + testJobID + ".tar.gz.sha256",
		"../../etc/passwd",
		"backup-x/../../y",
		"backup-20261127T101500Z-" + testJobID + "\x00.tar.gz",
		"backup-99991231T235959Z-7ZZZZZZZZZZZZZZZZZZZZZZZZZ.tar.zst",
		"",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		n, err := ParseArchiveName(s)
		if err != nil {
			if !errors.Is(err, ErrBadName) {
				t.Fatalf("error %v does not wrap ErrBadName", err)
			}
			return
		}
		if n.String() != s {
			t.Fatalf("accepted %q but formats as %q", s, n.String())
		}
		if strings.ContainsAny(s, "/\\\x00 ") || strings.Contains(s, "..") || !filepath.IsLocal(s) {
			t.Fatalf("accepted an unsafe name %q", s)
		}
	})
}

func FuzzParseManifest(f *testing.F) {
	f.Add(validManifestJSON(f))
	f.Add([]byte(`{"format_version":1}`))
	f.Add([]byte(`{"format_version":2,"x":1}`))
	f.Add([]byte(`{"format_version":1,"created_at":"2026-11-27T10:15:00Z","job_id":"` + testJobID + `","app_version":"","compression":"gzip","components":{"system":{"status":"included","files":[{"path":"system/../x.db","size":1,"sha256":"` + strings.Repeat("a", 64) + `","count":-1,"kind":"sqlite"}]},"target":{"status":"skipped","reason":"x","files":[]},"chroma":{"status":"skipped","reason":"x","files":[]}}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := ParseManifest(bytes.NewReader(data))
		if err != nil {
			return
		}
		for _, file := range m.Files() {
			if err := ValidatePath(file.Path); err != nil || !filepath.IsLocal(file.Path) {
				t.Fatalf("accepted path %q: %v", file.Path, err)
			}
			for _, e := range file.Entries() {
				if !filepath.IsLocal(e) || strings.Contains(e, "..") {
					t.Fatalf("accepted entry %q", e)
				}
			}
		}
		again, err := m.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		if _, err := ParseManifest(bytes.NewReader(again)); err != nil {
			t.Fatalf("a parsed manifest does not parse again: %v", err)
		}
	})
}

// FuzzExtract feeds archives to Extract: the first byte says whether the
// rest is an archive as is (0), or a tar to gzip (1) or zstd (2), so the
// fuzzer can mutate tar structure through the compression.
func FuzzExtract(f *testing.F) {
	small := []input{{path: "system/system.dump", data: compressible(1, 2500), stream: true}, {path: "chroma/sql.jsonl", data: jsonl(2), stream: true}}
	for _, c := range []Compression{Gzip, Zstd} {
		archive, _ := build(f, c, testChunk, small)
		f.Add(append([]byte{0}, archive...))
	}
	for _, mc := range maliciousCases() {
		archive, _ := mc.build(f, Gzip)
		f.Add(append([]byte{0}, archive...))
	}
	for _, mc := range maliciousCases()[:6] {
		listed := map[string][]byte{"chroma/sql.jsonl": []byte("{\"id\":\"x\"}\n")}
		m := manifestFor(listed, Gzip)
		f.Add(append([]byte{1}, rawTar(f, append(mc.entries, rawEntry{name: "chroma/sql.jsonl", data: listed["chroma/sql.jsonl"]}), &m)...))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) == 0 {
			return
		}
		archive := data[1:]
		switch data[0] % 3 {
		case 1:
			archive = compress(t, Gzip, archive)
		case 2:
			archive = compress(t, Zstd, archive)
		}
		parent := t.TempDir()
		dir := filepath.Join(parent, "scratch")
		if err := os.Mkdir(dir, 0o700); err != nil {
			t.Fatal(err)
		}
		// 1 MiB bounds the work of one input: coverage-instrumented
		// decompression of a mutated zip bomb up to 16 MiB took the
		// fuzzer to 0 execs/s; the limit is what is being tested, not
		// its size.
		m, err := Extract(context.Background(), bytes.NewReader(archive), dir, ExtractOptions{MaxBytes: 1 << 20})
		assertOnly(t, parent, "scratch")
		var files []string
		filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
			if err == nil && !d.IsDir() {
				rel, _ := filepath.Rel(dir, p)
				files = append(files, filepath.ToSlash(rel))
			}
			return nil
		})
		if err != nil {
			if len(files) > 0 {
				t.Fatalf("failed extract (%v) left %v", err, files)
			}
			return
		}
		listed := map[string]bool{}
		for _, f := range m.Files() {
			listed[f.Path] = true
		}
		for _, p := range files {
			if !listed[p] {
				t.Fatalf("extracted %s, not in the manifest", p)
			}
		}
	})
}
