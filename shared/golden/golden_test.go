package golden

import (
	"bytes"
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/insightops/insightops/shared/testkit"
)

// makeDB creates a SQLite database at path (journal_mode DELETE, so nothing
// but the main file is left behind) and runs stmts in it.
func makeDB(t *testing.T, path string, stmts ...string) {
	t.Helper()
	db, err := sql.Open("sqlite", fileURI(path, "_pragma=journal_mode(DELETE)"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for _, s := range stmts {
		if _, err := db.Exec(s); err != nil {
			t.Fatalf("%s: %v", s, err)
		}
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
}

func fileSHA(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

func mustRead(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// pair builds two valid databases with the same schema and the same size
// but different bytes (one row differs by one letter).
func pair(t *testing.T, dir string) (a, b string) {
	t.Helper()
	a = filepath.Join(dir, "a.db")
	b = filepath.Join(dir, "b.db")
	makeDB(t, a, "CREATE TABLE t(x TEXT)", "INSERT INTO t VALUES ('aaaa')")
	makeDB(t, b, "CREATE TABLE t(x TEXT)", "INSERT INTO t VALUES ('bbbb')")
	sa, _ := os.Stat(a)
	sb, _ := os.Stat(b)
	if sa.Size() != sb.Size() {
		t.Fatalf("fixture sizes differ: %d vs %d", sa.Size(), sb.Size())
	}
	if bytes.Equal(mustRead(t, a), mustRead(t, b)) {
		t.Fatal("fixtures are identical")
	}
	return a, b
}

func TestSync(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	tests := []struct {
		name string
		// setup returns source and dest paths.
		setup      func(t *testing.T, dir string) (string, string)
		wantAction string
		wantPrev   bool
	}{
		{
			name: "copied when dest missing (dest dir created)",
			setup: func(t *testing.T, dir string) (string, string) {
				a, _ := pair(t, dir)
				return a, filepath.Join(dir, "runtime", "nested", "target.db")
			},
			wantAction: ActionCopied,
		},
		{
			name: "unchanged when same sha",
			setup: func(t *testing.T, dir string) (string, string) {
				a, _ := pair(t, dir)
				dest := filepath.Join(dir, "target.db")
				if err := os.WriteFile(dest, mustRead(t, a), 0o644); err != nil {
					t.Fatal(err)
				}
				// A different mtime must not matter.
				old := time.Date(2001, 1, 1, 0, 0, 0, 0, time.UTC)
				if err := os.Chtimes(dest, old, old); err != nil {
					t.Fatal(err)
				}
				return a, dest
			},
			wantAction: ActionUnchanged,
			wantPrev:   true,
		},
		{
			name: "replaced when different bytes of the same size and mtime",
			setup: func(t *testing.T, dir string) (string, string) {
				a, b := pair(t, dir)
				st, err := os.Stat(a)
				if err != nil {
					t.Fatal(err)
				}
				// Same size, same mtime: only a content hash can tell them apart.
				if err := os.Chtimes(b, st.ModTime(), st.ModTime()); err != nil {
					t.Fatal(err)
				}
				return a, b
			},
			wantAction: ActionReplaced,
			wantPrev:   true,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			src, dest := tc.setup(t, dir)
			prevSHA := ""
			if _, err := os.Stat(dest); err == nil {
				prevSHA = fileSHA(t, dest)
			}
			srcBytes := mustRead(t, src)

			res, err := Sync(ctx, src, dest)
			if err != nil {
				t.Fatalf("Sync: %v", err)
			}
			if res.Action != tc.wantAction {
				t.Fatalf("Action = %q, want %q", res.Action, tc.wantAction)
			}
			wantSHA := fileSHA(t, src)
			if res.SourceSHA256 != wantSHA || res.DestSHA256 != wantSHA {
				t.Fatalf("hashes: source %s dest %s, want %s", res.SourceSHA256, res.DestSHA256, wantSHA)
			}
			if got := fileSHA(t, dest); got != wantSHA {
				t.Fatalf("dest sha %s, want %s", got, wantSHA)
			}
			if res.Bytes != int64(len(srcBytes)) {
				t.Fatalf("Bytes = %d, want %d", res.Bytes, len(srcBytes))
			}
			if tc.wantPrev && res.PreviousSHA256 != prevSHA {
				t.Fatalf("PreviousSHA256 = %q, want %q", res.PreviousSHA256, prevSHA)
			}
			if !tc.wantPrev && res.PreviousSHA256 != "" {
				t.Fatalf("PreviousSHA256 = %q, want empty", res.PreviousSHA256)
			}
			assertNoTemp(t, filepath.Dir(dest))

			// A second run is always a no-op.
			again, err := Sync(ctx, src, dest)
			if err != nil || again.Action != ActionUnchanged {
				t.Fatalf("second Sync = %+v, %v; want unchanged", again, err)
			}
		})
	}
}

func assertNoTemp(t *testing.T, dir string) {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		if strings.Contains(e.Name(), ".tmp-") {
			t.Errorf("temp file left behind: %s", e.Name())
		}
	}
}

func TestSyncLeavesSourceUntouched(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dir := t.TempDir()
	src, other := pair(t, dir)
	old := time.Date(2020, 2, 2, 2, 2, 2, 0, time.UTC)
	if err := os.Chtimes(src, old, old); err != nil {
		t.Fatal(err)
	}
	before := mustRead(t, src)
	stBefore, _ := os.Stat(src)

	dest := filepath.Join(dir, "out", "target.db")
	for i, prepare := range []func(){
		func() {}, // copied
		func() {}, // unchanged
		func() { // replaced
			if err := os.WriteFile(dest, mustRead(t, other), 0o644); err != nil {
				t.Fatal(err)
			}
		},
	} {
		prepare()
		if _, err := Sync(ctx, src, dest); err != nil {
			t.Fatalf("Sync #%d: %v", i, err)
		}
	}
	// Reading the runtime copy must not touch the source either.
	db, err := OpenReadOnly(ctx, dest)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Inspect(ctx, db, 10); err != nil {
		t.Fatal(err)
	}
	db.Close()

	if !bytes.Equal(before, mustRead(t, src)) {
		t.Fatal("source bytes changed")
	}
	stAfter, _ := os.Stat(src)
	if !stAfter.ModTime().Equal(stBefore.ModTime()) || stAfter.Mode() != stBefore.Mode() {
		t.Fatalf("source metadata changed: %v %v -> %v %v", stBefore.ModTime(), stBefore.Mode(), stAfter.ModTime(), stAfter.Mode())
	}
	for _, suffix := range []string{"-wal", "-shm", "-journal"} {
		if _, err := os.Stat(src + suffix); err == nil {
			t.Errorf("sidecar %s created beside the source", suffix)
		}
	}
}

func TestSyncErrors(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	tests := []struct {
		name    string
		source  func(t *testing.T, dir string) string
		wantErr error
	}{
		{
			name:    "missing source",
			source:  func(t *testing.T, dir string) string { return filepath.Join(dir, "nope.db") },
			wantErr: ErrSourceMissing,
		},
		{
			name: "not sqlite",
			source: func(t *testing.T, dir string) string {
				p := filepath.Join(dir, "text.db")
				if err := os.WriteFile(p, bytes.Repeat([]byte("hello, not a database\n"), 500), 0o644); err != nil {
					t.Fatal(err)
				}
				return p
			},
			wantErr: ErrSourceInvalid,
		},
		{
			name: "empty file",
			source: func(t *testing.T, dir string) string {
				p := filepath.Join(dir, "empty.db")
				if err := os.WriteFile(p, nil, 0o644); err != nil {
					t.Fatal(err)
				}
				return p
			},
			wantErr: ErrSourceInvalid,
		},
		{
			name: "sqlite header but corrupt pages",
			source: func(t *testing.T, dir string) string {
				p := filepath.Join(dir, "corrupt.db")
				makeDB(t, p,
					"CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT)",
					"CREATE INDEX t_v ON t(v)",
					"WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i+1 FROM n WHERE i < 2000) INSERT INTO t(v) SELECT printf('row-%05d', i) FROM n")
				b := mustRead(t, p)
				// Keep the 100-byte header, scribble over the rest of page 1
				// (the schema) and the start of page 2.
				for i := 100; i < 4096+512 && i < len(b); i++ {
					b[i] = 0xA5
				}
				if err := os.WriteFile(p, b, 0o644); err != nil {
					t.Fatal(err)
				}
				return p
			},
			wantErr: ErrSourceInvalid,
		},
		{
			name: "directory as source",
			source: func(t *testing.T, dir string) string {
				p := filepath.Join(dir, "adir")
				if err := os.Mkdir(p, 0o755); err != nil {
					t.Fatal(err)
				}
				return p
			},
			wantErr: ErrSourceInvalid,
		},
		{
			name: "non-empty -wal beside source",
			source: func(t *testing.T, dir string) string {
				p := filepath.Join(dir, "walled.db")
				makeDB(t, p, "CREATE TABLE t(x)")
				if err := os.WriteFile(p+"-wal", []byte("pending frames"), 0o644); err != nil {
					t.Fatal(err)
				}
				return p
			},
			wantErr: ErrSourceNotCheckpointed,
		},
		{
			name: "non-empty hot -journal beside source",
			source: func(t *testing.T, dir string) string {
				p := filepath.Join(dir, "journaled.db")
				makeDB(t, p, "CREATE TABLE t(x)")
				if err := os.WriteFile(p+"-journal", []byte("rollback"), 0o644); err != nil {
					t.Fatal(err)
				}
				return p
			},
			wantErr: ErrSourceNotCheckpointed,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			src := tc.source(t, dir)
			// An existing, valid runtime copy must survive the failed sync.
			dest := filepath.Join(dir, "runtime", "target.db")
			if err := os.MkdirAll(filepath.Dir(dest), 0o755); err != nil {
				t.Fatal(err)
			}
			makeDB(t, dest, "CREATE TABLE keep(x)", "INSERT INTO keep VALUES (42)")
			before := mustRead(t, dest)

			res, err := Sync(ctx, src, dest)
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("Sync = %+v, %v; want %v", res, err, tc.wantErr)
			}
			t.Logf("error: %v", err)
			if !bytes.Equal(before, mustRead(t, dest)) {
				t.Fatal("dest modified by a failed sync")
			}
			assertNoTemp(t, filepath.Dir(dest))
			for _, suffix := range []string{"-wal", "-shm", "-journal"} {
				if _, err := os.Stat(dest + suffix); err == nil {
					t.Errorf("sidecar %s left beside dest", suffix)
				}
			}
		})
	}
}

func TestSyncMissingSourceNoDest(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	dest := filepath.Join(dir, "target.db")
	_, err := Sync(context.Background(), filepath.Join(dir, "missing.db"), dest)
	if !errors.Is(err, ErrSourceMissing) {
		t.Fatalf("err = %v, want ErrSourceMissing", err)
	}
	if !strings.Contains(err.Error(), "missing.db") {
		t.Errorf("error does not name the file: %v", err)
	}
	if _, err := os.Stat(dest); !os.IsNotExist(err) {
		t.Fatalf("dest created: %v", err)
	}
}

func TestSyncRefusesSameFile(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	a, _ := pair(t, dir)
	if _, err := Sync(context.Background(), a, a); !errors.Is(err, ErrSameFile) {
		t.Fatalf("Sync(a, a) = %v, want ErrSameFile", err)
	}
	link := filepath.Join(dir, "link.db")
	if err := os.Link(a, link); err != nil {
		testkit.Unavailable(t, "hard links in the temp directory", err)
	}
	if _, err := Sync(context.Background(), a, link); !errors.Is(err, ErrSameFile) {
		t.Fatalf("Sync onto a hard link of the source = %v, want ErrSameFile", err)
	}
}

func TestSyncEmptyWALIgnored(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	a, _ := pair(t, dir)
	if err := os.WriteFile(a+"-wal", nil, 0o644); err != nil {
		t.Fatal(err)
	}
	res, err := Sync(context.Background(), a, filepath.Join(dir, "target.db"))
	if err != nil || res.Action != ActionCopied {
		t.Fatalf("Sync = %+v, %v", res, err)
	}
}

// A database that was in WAL mode and closed cleanly (checkpointed, no -wal
// left) is a valid golden source: it is copied byte for byte and opens
// read-only.
func TestSyncCheckpointedWALModeSource(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dir := t.TempDir()
	src := filepath.Join(dir, "wal.db")
	db, err := sql.Open("sqlite", fileURI(src, "_pragma=journal_mode(WAL)"))
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{"CREATE TABLE t(x)", "INSERT INTO t VALUES (1),(2),(3)"} {
		if _, err := db.Exec(s); err != nil {
			t.Fatal(err)
		}
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(src + "-wal"); err == nil {
		t.Fatal("the SQLite driver left a -wal file after a clean close: the source this test needs (WAL mode, checkpointed) cannot be made")
	}
	dest := filepath.Join(dir, "rt", "target.db")
	if _, err := Sync(ctx, src, dest); err != nil {
		t.Fatal(err)
	}
	ro, err := OpenReadOnly(ctx, dest)
	if err != nil {
		t.Fatal(err)
	}
	defer ro.Close()
	var n int
	if err := ro.QueryRowContext(ctx, "SELECT count(*) FROM t").Scan(&n); err != nil || n != 3 {
		t.Fatalf("count = %d, %v", n, err)
	}
	ents, _ := os.ReadDir(filepath.Dir(dest))
	for _, e := range ents {
		t.Logf("runtime dir entry while open: %s", e.Name())
	}
}

func TestSyncRemovesStaleDestSidecars(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	a, b := pair(t, dir)
	for _, suffix := range []string{"-wal", "-shm", "-journal"} {
		if err := os.WriteFile(b+suffix, []byte("stale"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	res, err := Sync(context.Background(), a, b)
	if err != nil || res.Action != ActionReplaced {
		t.Fatalf("Sync = %+v, %v", res, err)
	}
	for _, suffix := range []string{"-wal", "-shm", "-journal"} {
		if _, err := os.Stat(b + suffix); err == nil {
			t.Errorf("stale %s kept beside the new copy", suffix)
		}
	}
}

func TestSyncCancelled(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	a, _ := pair(t, dir)
	dest := filepath.Join(dir, "target.db")
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := Sync(ctx, a, dest); !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
	if _, err := os.Stat(dest); !os.IsNotExist(err) {
		t.Fatal("dest written despite cancelled context")
	}
	assertNoTemp(t, dir)
}

func TestOpenReadOnlyRefusesWrites(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	// Special characters in the path must not be taken for URI syntax.
	dir := filepath.Join(t.TempDir(), "odd dir #1 %20 ?x")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "target.db")
	makeDB(t, path, "CREATE TABLE t(x)", "INSERT INTO t VALUES (1)")
	before := mustRead(t, path)

	db, err := OpenReadOnly(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var n int
	if err := db.QueryRowContext(ctx, "SELECT count(*) FROM t").Scan(&n); err != nil || n != 1 {
		t.Fatalf("read: %d, %v", n, err)
	}
	for _, stmt := range []string{
		"INSERT INTO t VALUES (2)",
		"UPDATE t SET x = 3",
		"DELETE FROM t",
		"CREATE TABLE u(y)",
		"DROP TABLE t",
		// Turning query_only off still leaves the file opened mode=ro.
		"PRAGMA query_only = 0; INSERT INTO t VALUES (4)",
	} {
		if _, err := db.ExecContext(ctx, stmt); !isReadOnlyError(err) {
			t.Errorf("%q on a read-only database: %v, want SQLITE_READONLY", stmt, err)
		}
	}
	// Same on a dedicated connection where query_only was switched off.
	conn, err := db.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := conn.ExecContext(ctx, "PRAGMA query_only = 0"); err != nil {
		t.Fatal(err)
	}
	if _, err := conn.ExecContext(ctx, "INSERT INTO t VALUES (5)"); !isReadOnlyError(err) {
		t.Errorf("insert after query_only=0: %v, want SQLITE_READONLY (file opened mode=ro)", err)
	}
	conn.Close()
	db.Close()
	if !bytes.Equal(before, mustRead(t, path)) {
		t.Fatal("read-only database file changed")
	}
}

func TestOpenReadOnlyErrors(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dir := t.TempDir()
	if _, err := OpenReadOnly(ctx, filepath.Join(dir, "missing.db")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing file: err = %v, want fs.ErrNotExist", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "missing.db")); err == nil {
		t.Error("OpenReadOnly created the missing file")
	}
	junk := filepath.Join(dir, "junk.db")
	if err := os.WriteFile(junk, bytes.Repeat([]byte("junk"), 1024), 0o644); err != nil {
		t.Fatal(err)
	}
	if db, err := OpenReadOnly(ctx, junk); err == nil {
		db.Close()
		t.Error("OpenReadOnly accepted a non-SQLite file")
	} else if !strings.Contains(err.Error(), "file is not a database") {
		t.Errorf("OpenReadOnly of a non-SQLite file: %v, want SQLite's not-a-database error", err)
	}
	if db, err := OpenReadOnly(ctx, dir); err == nil {
		db.Close()
		t.Error("OpenReadOnly accepted a directory")
	} else if !strings.Contains(err.Error(), "is not a regular file") {
		t.Errorf("OpenReadOnly of a directory: %v, want the not-a-regular-file refusal", err)
	}
}

func TestInspect(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "x.db")
	makeDB(t, path,
		"CREATE TABLE zeta(id INTEGER PRIMARY KEY AUTOINCREMENT)", // creates sqlite_sequence
		"CREATE TABLE alpha(id INTEGER PRIMARY KEY)",
		"CREATE TABLE mid(id INTEGER PRIMARY KEY)",
		"CREATE TABLE \"Beta\"(id INTEGER PRIMARY KEY)",
		"CREATE INDEX alpha_idx ON alpha(id)",
		"CREATE VIEW v1 AS SELECT * FROM alpha",
		"CREATE VIEW v2 AS SELECT * FROM mid",
		"CREATE TRIGGER trg AFTER INSERT ON alpha BEGIN SELECT 1; END",
	)
	db, err := OpenReadOnly(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()

	tests := []struct {
		sample int
		want   []string
	}{
		{sample: 0, want: []string{}},
		{sample: -1, want: []string{}},
		{sample: 2, want: []string{"Beta", "alpha"}},
		{sample: 4, want: []string{"Beta", "alpha", "mid", "zeta"}},
		{sample: 100, want: []string{"Beta", "alpha", "mid", "zeta"}},
	}
	for _, tc := range tests {
		info, err := Inspect(ctx, db, tc.sample)
		if err != nil {
			t.Fatal(err)
		}
		if info.Tables != 4 || info.Views != 2 {
			t.Errorf("sample %d: tables %d views %d, want 4 and 2", tc.sample, info.Tables, info.Views)
		}
		if !reflect.DeepEqual(info.TableNames, tc.want) {
			t.Errorf("sample %d: names %q, want %q", tc.sample, info.TableNames, tc.want)
		}
	}

	empty := filepath.Join(t.TempDir(), "empty.db")
	makeDB(t, empty, "CREATE TABLE t(x)", "DROP TABLE t")
	edb, err := OpenReadOnly(ctx, empty)
	if err != nil {
		t.Fatal(err)
	}
	defer edb.Close()
	info, err := Inspect(ctx, edb, 5)
	if err != nil || info.Tables != 0 || info.Views != 0 || info.TableNames == nil || len(info.TableNames) != 0 {
		t.Fatalf("empty db: %+v, %v", info, err)
	}
}

func TestHashFileStreams(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "big.bin")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	h := sha256.New()
	chunk := bytes.Repeat([]byte("0123456789abcdef"), 64*1024) // 1 MiB
	for i := range 8 {
		chunk[i] = byte(i)
		f.Write(chunk)
		h.Write(chunk)
	}
	f.Close()
	sum, n, err := HashFile(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	if n != 8<<20 || sum != hex.EncodeToString(h.Sum(nil)) {
		t.Fatalf("HashFile = %s, %d", sum, n)
	}
}

func TestFileURI(t *testing.T) {
	t.Parallel()
	tests := map[string]string{
		"/a/b.db":         "file:/a/b.db?mode=ro",
		"rel/x.db":        "file:rel/x.db?mode=ro",
		"/a b/c?d#e%f":    "file:/a b/c%3fd%23e%25f?mode=ro",
		"//host/share.db": "file:/host/share.db?mode=ro",
	}
	for in, want := range tests {
		if got := fileURI(in, "mode=ro"); got != want {
			t.Errorf("fileURI(%q) = %q, want %q", in, got, want)
		}
	}
}

// isReadOnlyError reports whether err is SQLite refusing a write with
// SQLITE_READONLY (or one of its extended codes).
func isReadOnlyError(err error) bool {
	var se *sqlite.Error
	return errors.As(err, &se) && se.Code()&0xff == sqlite3.SQLITE_READONLY
}
