package archiver

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"

	"github.com/insightops/insightops/shared/app"
	"github.com/insightops/insightops/shared/archiver/archivertest"
	"github.com/insightops/insightops/shared/backupfmt"
	"github.com/insightops/insightops/shared/backupstore"
	"github.com/insightops/insightops/shared/bus"
	"github.com/insightops/insightops/shared/config"
	"github.com/insightops/insightops/shared/jobs"
	"github.com/insightops/insightops/shared/jobspec"
	"github.com/insightops/insightops/shared/store"
	"github.com/insightops/insightops/shared/vectors"
)

// env is an archiver over real parts: an embedded NATS server, a
// System DB (SQLite in a temp dir, or a fresh PostgreSQL database), a
// generated target copy and, when asked, a Chroma server.
type env struct {
	t    *testing.T
	cfg  config.Config
	bus  *bus.Bus
	ns   *server.Server
	db   *store.DB
	deps app.Deps
	a    *Archiver
	st   backupstore.Store
}

// envOpts choose the environment (archivertest.Options).
type envOpts = archivertest.Options

func newEnv(t *testing.T, o envOpts) *env {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	ae := archivertest.New(t, o)
	deps := ae.Deps
	e := &env{t: t, cfg: ae.Config, bus: ae.Bus, ns: ae.Server, db: ae.DB, deps: deps}
	e.a = New(deps, Options{ChunkSize: 64 << 10, LockWait: -1})
	st, err := e.a.Store(ctx)
	if err != nil {
		t.Fatal(err)
	}
	e.st = st
	return e
}

// systemRows counts the rows of every System DB table.
func systemRows(t *testing.T, db *store.DB) int64 {
	t.Helper()
	var total int64
	for _, tbl := range store.TableNames() {
		var n int64
		if err := db.SQL.QueryRowContext(context.Background(), `SELECT count(*) FROM "`+tbl+`"`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		total += n
	}
	return total
}

// sqliteRows counts the rows of every table of a SQLite file.
func sqliteRows(t *testing.T, path string) int64 {
	t.Helper()
	out := run(t, "", "sqlite3", path, "SELECT name FROM sqlite_master WHERE type='table' AND name NOT LIKE 'sqlite_%'")
	var total int64
	for name := range strings.FieldsSeq(out) {
		var n int64
		if _, err := fmt.Sscan(run(t, "", "sqlite3", path, `SELECT count(*) FROM "`+name+`"`), &n); err != nil {
			t.Fatal(err)
		}
		total += n
	}
	return total
}

// seedChroma writes n documents into each collection.
func seedChroma(t *testing.T, url string, n map[string]int) *vectors.Client {
	t.Helper()
	c, err := vectors.New(url, vectors.NewLocal(0), vectors.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	for col, count := range n {
		docs := make([]vectors.Doc, count)
		for i := range docs {
			docs[i] = vectors.Doc{Content: fmt.Sprintf("%s document %d about ledger accounts", col, i), Metadata: map[string]any{"n": i, "source": "test"}}
		}
		if err := c.Upsert(ctx, col, docs, 50, nil); err != nil {
			t.Fatal(err)
		}
	}
	return c
}

// run runs a command and returns its stdout, failing the test on error.
func run(t *testing.T, dir, name string, args ...string) string {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Dir = dir
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		t.Fatalf("%s %s: %v: %s", name, strings.Join(args, " "), err, errb.String())
	}
	return out.String()
}

// listed returns the names of the listed archives.
func (e *env) listed() []backupstore.Info {
	e.t.Helper()
	infos, err := e.st.List(context.Background())
	if err != nil {
		e.t.Fatal(err)
	}
	return infos
}

// create runs Create for a new job id.
func (e *env) create(p jobspec.BackupCreateArgs) jobspec.ArchiveSummary {
	e.t.Helper()
	res, err := e.createID(jobs.NewID(), p)
	if err != nil {
		e.t.Fatal(err)
	}
	return res
}

func (e *env) createID(id string, p jobspec.BackupCreateArgs) (jobspec.ArchiveSummary, error) {
	return e.createRun(p, Run{JobID: id, Log: e.deps.Log})
}

// createRun runs Create with r.
func (e *env) createRun(p jobspec.BackupCreateArgs, r Run) (jobspec.ArchiveSummary, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	return e.a.Create(ctx, p, r)
}

// archivePath is the local store's file of an archive.
func (e *env) archivePath(name string) string {
	return filepath.Join(e.cfg.BackupDir, name)
}

// extract unpacks an archive with the system tar into a new directory and
// joins split files (cat <path>.part-*), as the format documents.
func extract(t *testing.T, archive string, zstd bool) string {
	t.Helper()
	dir := t.TempDir()
	flag := "-xzf"
	if zstd {
		run(t, "", "tar", "--zstd", "-xf", archive, "-C", dir)
	} else {
		run(t, "", "tar", flag, archive, "-C", dir)
	}
	parts, _ := filepath.Glob(filepath.Join(dir, "*", "*.part-*"))
	joined := map[string][]string{}
	for _, p := range parts {
		base := p[:strings.LastIndex(p, ".part-")]
		joined[base] = append(joined[base], p)
	}
	for base, ps := range joined {
		out, err := os.Create(base)
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range ps { // Glob sorts: part-000001, part-000002, …
			in, err := os.Open(p)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := io.Copy(out, in); err != nil {
				t.Fatal(err)
			}
			in.Close()
			os.Remove(p)
		}
		out.Close()
	}
	return dir
}

// readManifestFile parses manifest.json of an extracted archive.
func readManifestFile(t *testing.T, dir string) backupfmt.Manifest {
	t.Helper()
	f, err := os.Open(filepath.Join(dir, backupfmt.ManifestName))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	m, err := backupfmt.ParseManifest(f)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// jsonlRecords parses a JSONL file with encoding/json and returns its records.
func jsonlRecords(t *testing.T, path string) []map[string]any {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []map[string]any
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 64<<20)
	for sc.Scan() {
		var rec map[string]any
		if err := json.Unmarshal(sc.Bytes(), &rec); err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		out = append(out, rec)
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// fileOf returns the manifest file at p.
func fileOf(t *testing.T, m backupfmt.Manifest, p string) backupfmt.File {
	t.Helper()
	for _, f := range m.Files() {
		if f.Path == p {
			return f
		}
	}
	t.Fatalf("manifest has no %s: %+v", p, m.Files())
	return backupfmt.File{}
}
