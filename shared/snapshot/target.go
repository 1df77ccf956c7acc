package snapshot

import (
	"bytes"
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/insightops/insightops/shared/durable"
)

// ErrGoldenSource is returned (wrapped) by [RestoreTarget] when the runtime
// path is the golden source itself (same path after resolving symbolic
// links, or the same file through a hard link): the golden source is never
// written.
var ErrGoldenSource = errors.New("the runtime path is the golden source, which is never written")

// TargetDump describes a Target DB dump written by [DumpTarget].
type TargetDump struct {
	// Kind is KindSQLite.
	Kind string `json:"kind"`
	// Format is FormatSQLite3.
	Format string `json:"format"`
	// Tables is the row count of every table of the copy.
	Tables Counts `json:"tables"`
	// SQLiteVersion is the library that made the copy.
	SQLiteVersion string `json:"sqlite_version"`
	// Source is the absolute path of the database that was copied.
	Source string `json:"source"`
	// Bytes is the number of bytes written to the writer.
	Bytes int64 `json:"bytes"`
	// SHA256 is the hex SHA-256 of the bytes written to the writer (empty
	// with [WithoutDigest]).
	SHA256 string `json:"sha256"`
}

// DumpTarget writes a consistent online copy of the Target DB's runtime copy
// at path to w: in one read transaction of a read-only connection, it
// counts the rows of every table and streams the database's pages, in
// order, from SQLite's sqlite_dbpage table (the pages as that transaction
// sees them, WAL included). No scratch copy is made. A database in WAL
// mode is written as a rollback-journal one (header bytes 18 and 19 set
// to 1), so the copy stands alone without its -wal file. progress, if not
// nil, is called with the cumulative number of bytes written. The file at
// path is only read. Of the options, only [WithoutDigest] applies.
func DumpTarget(ctx context.Context, path string, w io.Writer, progress func(bytes int64), opts ...Option) (TargetDump, error) {
	d, err := dumpTarget(ctx, path, w, progress, buildOptions(opts))
	if err != nil {
		return TargetDump{}, fmt.Errorf("snapshot: dump target db %s: %w", path, err)
	}
	return d, nil
}

func dumpTarget(ctx context.Context, path string, w io.Writer, progress func(int64), o options) (TargetDump, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return TargetDump{}, err
	}
	st, err := os.Stat(abs)
	if err != nil {
		return TargetDump{}, err
	}
	if !st.Mode().IsRegular() {
		return TargetDump{}, fmt.Errorf("%s is not a regular file", abs)
	}
	if err := checkMagic(abs); err != nil {
		return TargetDump{}, err
	}
	src, err := openFile(ctx, abs, false)
	if err != nil {
		return TargetDump{}, err
	}
	defer src.Close()
	conn, err := src.Conn(ctx)
	if err != nil {
		return TargetDump{}, fmt.Errorf("get connection: %w", err)
	}
	defer conn.Close()
	if _, err := conn.ExecContext(ctx, "BEGIN"); err != nil {
		return TargetDump{}, fmt.Errorf("begin the read transaction: %w", err)
	}
	defer func() { _, _ = conn.ExecContext(context.WithoutCancel(ctx), "ROLLBACK") }()
	tables, err := countTables(ctx, conn, nil) // the first read starts the transaction's snapshot
	if err != nil {
		return TargetDump{}, err
	}
	m := newMeter(w, progress, !o.noDigest)
	if err := streamPages(ctx, conn, m); err != nil {
		return TargetDump{}, err
	}
	n, sum := m.finish()
	return TargetDump{
		Kind: KindSQLite, Format: FormatSQLite3, Tables: tables, SQLiteVersion: sqliteVersion(ctx, conn),
		Source: abs, Bytes: n, SHA256: sum,
	}, nil
}

// streamPages writes every page of the database of conn's open read
// transaction to w, page 1 first, and checks that they are page_count
// pages of page_size bytes. Page 1's file format bytes (18 and 19) say
// rollback journal (1) whatever the source's mode.
func streamPages(ctx context.Context, conn *sql.Conn, w io.Writer) error {
	var pageSize, pageCount int64
	if err := conn.QueryRowContext(ctx, "PRAGMA page_size").Scan(&pageSize); err != nil {
		return fmt.Errorf("read the page size: %w", err)
	}
	if err := conn.QueryRowContext(ctx, "PRAGMA page_count").Scan(&pageCount); err != nil {
		return fmt.Errorf("read the page count: %w", err)
	}
	// sqlite_dbpage returns its rows in page order (it consumes the
	// ORDER BY), each page's bytes as the transaction sees them.
	rows, err := conn.QueryContext(ctx, "SELECT pgno, data FROM sqlite_dbpage ORDER BY pgno")
	if err != nil {
		return fmt.Errorf("read the pages: %w", err)
	}
	defer rows.Close()
	var next int64 = 1
	for rows.Next() {
		if next%1024 == 0 {
			if err := ctx.Err(); err != nil {
				return err
			}
		}
		var (
			pgno int64
			data sql.RawBytes
		)
		if err := rows.Scan(&pgno, &data); err != nil {
			return fmt.Errorf("read page %d: %w", next, err)
		}
		if pgno != next || int64(len(data)) != pageSize {
			return fmt.Errorf("page %d: got page %d of %d bytes, want %d bytes", next, pgno, len(data), pageSize)
		}
		if pgno == 1 && len(data) >= 20 && (data[18] != 1 || data[19] != 1) {
			page := bytes.Clone(data)
			page[18], page[19] = 1, 1
			data = page
		}
		if _, err := w.Write(data); err != nil {
			return fmt.Errorf("write page %d: %w", pgno, err)
		}
		next++
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("read page %d: %w", next, err)
	}
	if next-1 != pageCount {
		return fmt.Errorf("read %d pages, the database has %d", next-1, pageCount)
	}
	return nil
}

// TargetRestore describes a Target DB restore.
type TargetRestore struct {
	// Path is the runtime copy that was replaced (absolute).
	Path string `json:"path"`
	// Tables is the row count of every table of the new runtime copy.
	Tables Counts `json:"tables"`
	// Bytes is the size of the new runtime copy.
	Bytes int64 `json:"bytes"`
	// SHA256 is the hex SHA-256 of the new runtime copy.
	SHA256 string `json:"sha256"`
}

// RestoreTarget replaces the Target DB's runtime copy at runtimePath with
// the SQLite database read from r. The bytes go to a temporary file beside
// runtimePath, which is fsynced and must pass PRAGMA integrity_check (unless
// [WithCheckedInput] says the bytes already did); then
// stale -wal, -shm and -journal files of the runtime copy are removed, the
// temporary file is renamed over it (atomic: readers see the old file or
// the new one) and the directory is fsynced. On any error the runtime copy
// is left as it was.
//
// It refuses (ErrGoldenSource) when runtimePath is goldenSource, which is
// required and never opened. Connections that had the old runtime copy open
// keep reading the old file until they are reopened.
func RestoreTarget(ctx context.Context, r io.Reader, runtimePath, goldenSource string, opts ...Option) (TargetRestore, error) {
	o := buildOptions(opts)
	res, err := restoreTarget(ctx, r, runtimePath, goldenSource, o)
	if err != nil {
		return TargetRestore{}, fmt.Errorf("snapshot: restore target db %s: %w", runtimePath, err)
	}
	return res, nil
}

func restoreTarget(ctx context.Context, r io.Reader, runtimePath, goldenSource string, o options) (TargetRestore, error) {
	if runtimePath == "" || goldenSource == "" {
		return TargetRestore{}, errors.New("the runtime path and the golden source path are both required")
	}
	dest, err := filepath.Abs(runtimePath)
	if err != nil {
		return TargetRestore{}, err
	}
	same, err := samePath(dest, goldenSource)
	if err != nil {
		return TargetRestore{}, err
	}
	if same {
		return TargetRestore{}, fmt.Errorf("%w: %s", ErrGoldenSource, goldenSource)
	}
	if st, err := os.Stat(dest); err == nil && !st.Mode().IsRegular() {
		return TargetRestore{}, fmt.Errorf("%s is not a regular file", dest)
	}
	dir := filepath.Dir(dest)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return TargetRestore{}, fmt.Errorf("create %s: %w", dir, err)
	}
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(dest)+".restore-*")
	if err != nil {
		return TargetRestore{}, fmt.Errorf("create temp file: %w", err)
	}
	tmpName := tmp.Name()
	installed := false
	defer func() {
		if !installed {
			_ = tmp.Close()
			_ = os.Remove(tmpName)
			removeSidecars(tmpName)
		}
	}()
	cr := newCountingReader(ctx, r, o.progress)
	var (
		h   hash.Hash
		src io.Reader = cr
	)
	if !o.checked {
		h = sha256.New()
		src = io.TeeReader(cr, h)
	}
	// Reads (the archive's decompression) and writes overlap, and the
	// writes go to disk as they are made: the fsync below waits for little.
	n, err := durable.Copy(ctx, tmp, src)
	cr.finish()
	if err != nil {
		return TargetRestore{}, fmt.Errorf("write %s: %w", tmpName, err)
	}
	if err := tmp.Chmod(0o644); err != nil {
		return TargetRestore{}, fmt.Errorf("chmod %s: %w", tmpName, err)
	}
	if err := tmp.Sync(); err != nil {
		return TargetRestore{}, fmt.Errorf("fsync %s: %w", tmpName, err)
	}
	if err := tmp.Close(); err != nil {
		return TargetRestore{}, fmt.Errorf("close %s: %w", tmpName, err)
	}
	tables, err := readFile(ctx, tmpName, nil, !o.checked)
	if err != nil {
		return TargetRestore{}, fmt.Errorf("verify the restored copy (runtime copy untouched): %w", err)
	}
	if err := ctx.Err(); err != nil {
		return TargetRestore{}, err
	}
	// Stale sidecars belong to the file being replaced; SQLite would replay
	// them into the new one.
	for _, s := range []string{"-wal", "-shm", "-journal"} {
		if err := os.Remove(dest + s); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return TargetRestore{}, fmt.Errorf("remove stale %s%s: %w", dest, s, err)
		}
	}
	if err := os.Rename(tmpName, dest); err != nil {
		return TargetRestore{}, fmt.Errorf("rename into place: %w", err)
	}
	installed = true
	if err := durable.SyncDir(dir); err != nil {
		return TargetRestore{}, fmt.Errorf("fsync directory %s: %w", dir, err)
	}
	sum := o.checkedSHA256
	if h != nil {
		sum = hex.EncodeToString(h.Sum(nil))
	}
	return TargetRestore{Path: dest, Tables: tables, Bytes: n, SHA256: sum}, nil
}

// samePath reports whether a and b name the same file: equal after making
// them absolute and resolving symbolic links (of the file, or of its
// directory when the file does not exist yet), or the same inode.
func samePath(a, b string) (bool, error) {
	ra, err := resolve(a)
	if err != nil {
		return false, err
	}
	rb, err := resolve(b)
	if err != nil {
		return false, err
	}
	if ra == rb {
		return true, nil
	}
	sa, errA := os.Stat(a)
	sb, errB := os.Stat(b)
	if errA == nil && errB == nil && os.SameFile(sa, sb) {
		return true, nil
	}
	return false, nil
}

func resolve(p string) (string, error) {
	abs, err := filepath.Abs(p)
	if err != nil {
		return "", err
	}
	if r, err := filepath.EvalSymlinks(abs); err == nil {
		return r, nil
	}
	dir, base := filepath.Split(abs)
	if r, err := filepath.EvalSymlinks(dir); err == nil {
		return filepath.Join(r, base), nil
	}
	return filepath.Clean(abs), nil
}
