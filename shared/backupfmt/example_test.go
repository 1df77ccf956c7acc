package backupfmt_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/insightops/insightops/shared/backupfmt"
)

// exampleJobID is the job id the example archives carry (a canonical ULID).
const exampleJobID = "01JD5W2Q8X7V3M4N6P9R0S1T2V"

// exampleCreated is when the example archives were made.
var exampleCreated = time.Date(2026, 12, 4, 10, 15, 0, 0, time.UTC)

// Example writes a small archive — a System DB copy of known size and a
// Chroma collection streamed without one — then verifies it and streams
// its files back, checked against the verified manifest.
func Example() {
	ctx := context.Background()
	var archive bytes.Buffer
	w, err := backupfmt.NewWriter(&archive, backupfmt.Gzip, backupfmt.WithModTime(exampleCreated))
	if err != nil {
		log.Fatal(err)
	}
	db := []byte("SQLite format 3\x00 (a consistent copy of the System DB)")
	if _, err := w.AddFile(ctx, backupfmt.ComponentSystem, "system/system.db", backupfmt.KindSQLite, bytes.NewReader(db), int64(len(db))); err != nil {
		log.Fatal(err)
	}
	if err := w.SetCount("system/system.db", 3); err != nil { // rows, counted by the caller
		log.Fatal(err)
	}
	records := `{"id":"a-sql","document":"{\"question\":\"How many customers?\",\"sql\":\"SELECT count(*) FROM customers\"}","metadata":{},"embedding":[0.1,0.2]}` + "\n" +
		`{"id":"b-sql","document":"{\"question\":\"Total paid?\",\"sql\":\"SELECT sum(amount) FROM payments\"}","metadata":{},"embedding":[0.3,0.4]}` + "\n"
	if _, err := w.AddStream(ctx, backupfmt.ComponentChroma, "chroma/sql.jsonl", backupfmt.KindJSONL, strings.NewReader(records)); err != nil {
		log.Fatal(err)
	}
	// Close writes manifest.json last: components with files are included,
	// the target is skipped with its reason.
	res, err := w.Close(backupfmt.Manifest{
		CreatedAt: exampleCreated, JobID: exampleJobID, AppVersion: "example",
		Components: map[string]backupfmt.Component{
			backupfmt.ComponentSystem: {Source: "sqlite data/system.db"},
			backupfmt.ComponentTarget: {Status: backupfmt.StatusSkipped, Reason: "TARGET_DATABASE_URL is set"},
		},
	})
	if err != nil {
		log.Fatal(err)
	}
	name := backupfmt.ArchiveName(exampleCreated, exampleJobID, w.Compression())
	fmt.Println(name)
	for _, c := range backupfmt.Components {
		comp := res.Manifest.Components[c]
		line := c + ": " + comp.Status
		if comp.Reason != "" {
			line += " (" + comp.Reason + ")"
		}
		fmt.Println(line)
		for _, f := range comp.Files {
			fmt.Printf("  %s (%s): %d bytes, count %d\n", f.Path, f.Kind, f.Size, f.Count)
		}
	}

	// Verify reads the archive once: sizes, SHA-256s, the name, and the
	// JSONL records counted against the manifest.
	rep, err := backupfmt.Verify(ctx, bytes.NewReader(archive.Bytes()), backupfmt.VerifyOptions{
		ReadOptions: backupfmt.ReadOptions{Name: name},
	})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("verified:", rep.OK(), "- archive SHA-256 as written:", rep.ArchiveSHA256 == res.SHA256)

	// Walk streams the files; with the verified manifest as Expect, content
	// changed since the verification fails before the reader sees its end.
	_, err = backupfmt.Walk(ctx, bytes.NewReader(archive.Bytes()), backupfmt.ReadOptions{Name: name, Expect: &rep.Manifest},
		func(ctx context.Context, f backupfmt.File, content io.Reader) error {
			b, err := io.ReadAll(content)
			fmt.Printf("read %s: %d bytes\n", f.Path, len(b))
			return err
		})
	if err != nil {
		log.Fatal(err)
	}
	// Output:
	// backup-20261204T101500Z-01JD5W2Q8X7V3M4N6P9R0S1T2V.tar.gz
	// system: included
	//   system/system.db (sqlite): 53 bytes, count 3
	// target: skipped (TARGET_DATABASE_URL is set)
	// chroma: included
	//   chroma/sql.jsonl (jsonl): 286 bytes, count 2
	// verified: true - archive SHA-256 as written: true
	// read system/system.db: 53 bytes
	// read chroma/sql.jsonl: 286 bytes
}

// tinyArchive returns a zstd archive holding one Chroma collection, and
// its name.
func tinyArchive() ([]byte, string) {
	var archive bytes.Buffer
	w, err := backupfmt.NewWriter(&archive, backupfmt.Zstd, backupfmt.WithModTime(exampleCreated))
	if err != nil {
		log.Fatal(err)
	}
	records := `{"id":"c-ddl","document":"CREATE TABLE customers (id INTEGER PRIMARY KEY)","metadata":{},"embedding":[0.5]}` + "\n"
	if _, err := w.AddStream(context.Background(), backupfmt.ComponentChroma, "chroma/ddl.jsonl", backupfmt.KindJSONL, strings.NewReader(records)); err != nil {
		log.Fatal(err)
	}
	if _, err := w.Close(backupfmt.Manifest{CreatedAt: exampleCreated, JobID: exampleJobID}); err != nil {
		log.Fatal(err)
	}
	return archive.Bytes(), backupfmt.ArchiveName(exampleCreated, exampleJobID, backupfmt.Zstd)
}

// ExampleVerify shows a renamed archive refused: the name must agree with
// the manifest's creation time, job id and compression.
func ExampleVerify() {
	archive, name := tinyArchive()
	renamed := strings.Replace(name, "T101500Z", "T111500Z", 1)
	for _, n := range []string{name, renamed} {
		rep, err := backupfmt.Verify(context.Background(), bytes.NewReader(archive), backupfmt.VerifyOptions{
			ReadOptions: backupfmt.ReadOptions{Name: n},
		})
		fmt.Println(rep.OK(), errors.Is(err, backupfmt.ErrInvalidArchive), err)
	}
	// Output:
	// true false <nil>
	// false true manifest.json: archive name has creation time 20261204T111500Z, manifest 20261204T101500Z
}

// ExampleExtract writes an archive's files into a directory, never outside it.
func ExampleExtract() {
	archive, name := tinyArchive()
	dir, err := os.MkdirTemp("", "backupfmt-example-")
	if err != nil {
		log.Fatal(err)
	}
	defer func() { _ = os.RemoveAll(dir) }()
	m, err := backupfmt.Extract(context.Background(), bytes.NewReader(archive), dir, backupfmt.ExtractOptions{
		ReadOptions: backupfmt.ReadOptions{Name: name},
	})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("included:", m.Included())
	err = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			rel, _ := filepath.Rel(dir, p)
			fmt.Println(filepath.ToSlash(rel))
		}
		return err
	})
	if err != nil {
		log.Fatal(err)
	}
	// Output:
	// included: [chroma]
	// chroma/ddl.jsonl
}

// ExampleParseArchiveName accepts exactly the names ArchiveName makes.
func ExampleParseArchiveName() {
	n, err := backupfmt.ParseArchiveName("backup-20261204T101500Z-01JD5W2Q8X7V3M4N6P9R0S1T2V.tar.zst")
	fmt.Println(n.Created.Format(time.RFC3339), n.JobID, n.Compression, err)
	for _, bad := range []string{
		"../backup-20261204T101500Z-01JD5W2Q8X7V3M4N6P9R0S1T2V.tar.gz",
		"backup-20261204T101500Z-01jd5w2q8x7v3m4n6p9r0s1t2v.tar.gz",
		"backup-20261204T101500Z-01JD5W2Q8X7V3M4N6P9R0S1T2V.zip",
	} {
		_, err := backupfmt.ParseArchiveName(bad)
		fmt.Println(errors.Is(err, backupfmt.ErrBadName))
	}
	// Output:
	// 2026-12-04T10:15:00Z 01JD5W2Q8X7V3M4N6P9R0S1T2V zstd <nil>
	// true
	// true
	// true
}
