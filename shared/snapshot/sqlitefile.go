package snapshot

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"

	_ "modernc.org/sqlite" // registers the "sqlite" database/sql driver (sqlite_dbpage included)

	"github.com/insightops/insightops/shared/ctxio"
)

// sqliteMagic is the 16-byte header of every SQLite 3 database file.
var sqliteMagic = []byte("SQLite format 3\x00")

// pgdumpMagic starts every pg_dump custom-format archive.
var pgdumpMagic = []byte("PGDMP")

// fileURI builds a SQLite URI filename for path with the given query
// parameters, escaping the characters that are special in a URI so any
// path is opened verbatim.
func fileURI(path string, params ...string) string {
	r := strings.NewReplacer("%", "%25", "?", "%3f", "#", "%23")
	p := filepath.ToSlash(path)
	if strings.HasPrefix(p, "//") {
		p = "/" + strings.TrimLeft(p, "/")
	}
	u := "file:" + r.Replace(p)
	if len(params) > 0 {
		u += "?" + strings.Join(params, "&")
	}
	return u
}

// openFile opens the SQLite file at path on a single connection, read-only
// unless rw.
func openFile(ctx context.Context, path string, rw bool) (*sql.DB, error) {
	mode := "mode=ro"
	if rw {
		mode = "mode=rw"
	}
	db, err := sql.Open("sqlite", fileURI(path, mode, "_pragma=busy_timeout(5000)"))
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	db.SetMaxOpenConns(1)
	if err := db.PingContext(ctx); err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	return db, nil
}

// vacuumInto writes a consistent copy of the database behind db to dst
// (which must not exist), in one read transaction.
func vacuumInto(ctx context.Context, db *sql.DB, dst string) error {
	if _, err := db.ExecContext(ctx, "VACUUM INTO ?", dst); err != nil {
		if ctx.Err() != nil {
			return fmt.Errorf("VACUUM INTO: %w", ctx.Err())
		}
		return fmt.Errorf("VACUUM INTO: %w", err)
	}
	return nil
}

// finishCopy makes the copy at path self-contained (rollback-journal mode,
// no -wal) and returns the row count of each of its user tables (only of
// want when want is not empty, each of which must exist).
func finishCopy(ctx context.Context, path string, want []string) (Counts, error) {
	db, err := openFile(ctx, path, true)
	if err != nil {
		return nil, err
	}
	defer db.Close()
	var mode string
	if err := db.QueryRowContext(ctx, "PRAGMA journal_mode").Scan(&mode); err != nil {
		return nil, fmt.Errorf("read journal mode of the copy: %w", err)
	}
	if !strings.EqualFold(mode, "delete") {
		if err := db.QueryRowContext(ctx, "PRAGMA journal_mode=DELETE").Scan(&mode); err != nil {
			return nil, fmt.Errorf("set journal mode of the copy: %w", err)
		}
	}
	counts, err := countTables(ctx, db, want)
	if err != nil {
		return nil, err
	}
	if err := db.Close(); err != nil {
		return nil, fmt.Errorf("close the copy: %w", err)
	}
	removeSidecars(path)
	return counts, nil
}

// queryer is a database or one of its connections (a transaction's).
type queryer interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// userTables lists the tables of a SQLite database, internal ones excluded,
// sorted by name.
func userTables(ctx context.Context, db queryer) ([]string, error) {
	rows, err := db.QueryContext(ctx,
		`SELECT name FROM sqlite_schema WHERE type = 'table' AND name NOT LIKE 'sqlite\_%' ESCAPE '\' ORDER BY name`)
	if err != nil {
		return nil, fmt.Errorf("list tables: %w", err)
	}
	defer rows.Close()
	var names []string
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err != nil {
			return nil, fmt.Errorf("list tables: %w", err)
		}
		names = append(names, n)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list tables: %w", err)
	}
	return names, nil
}

// countTables counts the rows of the named tables of a SQLite database
// (every user table when names is empty). A missing table is an error.
func countTables(ctx context.Context, db queryer, names []string) (Counts, error) {
	if len(names) == 0 {
		var err error
		if names, err = userTables(ctx, db); err != nil {
			return nil, err
		}
	} else {
		have, err := userTables(ctx, db)
		if err != nil {
			return nil, err
		}
		var missing []string
		for _, n := range names {
			if !contains(have, n) {
				missing = append(missing, n)
			}
		}
		if len(missing) > 0 {
			return nil, fmt.Errorf("missing tables: %s", strings.Join(missing, ", "))
		}
	}
	counts := make(Counts, len(names))
	for _, n := range names {
		var c int64
		if err := db.QueryRowContext(ctx, "SELECT count(*) FROM "+quoteIdent(n)).Scan(&c); err != nil {
			return nil, fmt.Errorf("count rows of %s: %w", n, err)
		}
		counts[n] = c
	}
	return counts, nil
}

func contains(list []string, s string) bool {
	return slices.Contains(list, s)
}

// quoteIdent quotes an SQL identifier (the same on SQLite and PostgreSQL).
func quoteIdent(name string) string {
	return `"` + strings.ReplaceAll(name, `"`, `""`) + `"`
}

// integrityCheck runs PRAGMA integrity_check and requires "ok".
func integrityCheck(ctx context.Context, db *sql.DB) error {
	rows, err := db.QueryContext(ctx, "PRAGMA integrity_check")
	if err != nil {
		return fmt.Errorf("integrity_check: %w", err)
	}
	defer rows.Close()
	var problems []string
	for rows.Next() {
		var line string
		if err := rows.Scan(&line); err != nil {
			return fmt.Errorf("integrity_check: %w", err)
		}
		for l := range strings.SplitSeq(line, "\n") {
			if l = strings.TrimSpace(l); l != "ok" && l != "" && len(problems) < 5 {
				problems = append(problems, l)
			}
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("integrity_check: %w", err)
	}
	if len(problems) > 0 {
		return fmt.Errorf("integrity_check failed: %s", strings.Join(problems, "; "))
	}
	return nil
}

// checkMagic requires the file at path to start with the SQLite 3 header (an
// empty file would open as an empty database).
func checkMagic(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	hdr := make([]byte, len(sqliteMagic))
	if _, err := io.ReadFull(f, hdr); err != nil || !bytes.Equal(hdr, sqliteMagic) {
		return errors.New("not a SQLite 3 database (missing header)")
	}
	return nil
}

// verifyFile checks the SQLite file at path (header, full integrity_check)
// and counts the rows of its tables (see countTables).
func verifyFile(ctx context.Context, path string, want []string) (Counts, error) {
	return readFile(ctx, path, want, true)
}

// readFile checks the SQLite header of the file at path, runs PRAGMA
// integrity_check when integrity is set, and counts the rows of its tables
// (see countTables).
func readFile(ctx context.Context, path string, want []string, integrity bool) (Counts, error) {
	if err := checkMagic(path); err != nil {
		return nil, err
	}
	db, err := openFile(ctx, path, false)
	if err != nil {
		return nil, err
	}
	defer func() {
		_ = db.Close()
		removeSidecars(path)
	}()
	if integrity {
		if err := integrityCheck(ctx, db); err != nil {
			return nil, err
		}
	}
	return countTables(ctx, db, want)
}

// stage copies r into a new file named name in dir and returns its path; the file is fsynced when sync is set.
func stage(ctx context.Context, r io.Reader, dir, name string, sync bool) (string, error) {
	path := filepath.Join(dir, name)
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return "", fmt.Errorf("create scratch copy: %w", err)
	}
	if _, err := io.Copy(f, ctxio.Reader(ctx, r)); err != nil {
		_ = f.Close()
		return "", fmt.Errorf("copy input to %s: %w", path, err)
	}
	if sync {
		if err := f.Sync(); err != nil {
			_ = f.Close()
			return "", fmt.Errorf("fsync %s: %w", path, err)
		}
	}
	if err := f.Close(); err != nil {
		return "", fmt.Errorf("close %s: %w", path, err)
	}
	return path, nil
}

// streamFile copies the file at path into w.
func streamFile(ctx context.Context, path string, w io.Writer) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	if _, err := io.Copy(w, ctxio.Reader(ctx, f)); err != nil {
		return fmt.Errorf("stream copy: %w", err)
	}
	return nil
}

// scratch creates a private directory for temporary copies under dir.
func scratch(dir string) (string, error) {
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return "", fmt.Errorf("create scratch directory %s: %w", dir, err)
	}
	d, err := os.MkdirTemp(dir, "insightops-snapshot-*")
	if err != nil {
		return "", fmt.Errorf("create scratch directory in %s: %w", dir, err)
	}
	return d, nil
}

// removeSidecars deletes the -wal, -shm and -journal files beside path.
func removeSidecars(path string) {
	for _, s := range []string{"-wal", "-shm", "-journal"} {
		_ = os.Remove(path + s)
	}
}

// sqliteVersion returns the SQLite library version.
func sqliteVersion(ctx context.Context, db queryer) string {
	var v string
	if err := db.QueryRowContext(ctx, "SELECT sqlite_version()").Scan(&v); err != nil {
		return ""
	}
	return "SQLite " + v + " (modernc.org/sqlite)"
}

// CheckSQLite copies the SQLite database read from r into a private
// directory under scratchDir (os.TempDir() when empty), requires the SQLite
// header and PRAGMA integrity_check = ok, and returns the row count of every
// table. The copy is deleted before returning.
func CheckSQLite(ctx context.Context, r io.Reader, scratchDir string) (Counts, error) {
	o := buildOptions([]Option{WithScratchDir(scratchDir)})
	c, err := checkSQLite(ctx, r, o, nil)
	if err != nil {
		return nil, fmt.Errorf("snapshot: check sqlite: %w", err)
	}
	return c, nil
}

func checkSQLite(ctx context.Context, r io.Reader, o options, want []string) (Counts, error) {
	dir, err := scratch(o.scratchDir)
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	cr := newCountingReader(ctx, r, o.progress)
	path, err := stage(ctx, cr, dir, "check.db", false)
	cr.finish()
	if err != nil {
		return nil, err
	}
	return verifyFile(ctx, path, want)
}
