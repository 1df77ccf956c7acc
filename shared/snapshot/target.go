package snapshot

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"github.com/insightops/insightops/shared/durable"
	"io"
	"io/fs"
	"os"
	"path/filepath"
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
	// SHA256 is the hex SHA-256 of the bytes written to the writer.
	SHA256 string `json:"sha256"`
}

// DumpTarget writes a consistent online copy of the Target DB's runtime copy
// at path to w: the online backup API copies its pages, in one read
// transaction, into a private directory under the scratch directory (see
// [WithScratchDir]) through a read-only connection, row counts taken
// from the copy, the copy streamed into w and deleted. progress, if not nil,
// is called with the cumulative number of bytes written. The file at path is
// only read.
func DumpTarget(ctx context.Context, path string, w io.Writer, progress func(bytes int64), opts ...Option) (TargetDump, error) {
	o := buildOptions(opts)
	d, err := dumpTarget(ctx, path, w, progress, o)
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
	dir, err := scratch(o.scratchDir)
	if err != nil {
		return TargetDump{}, err
	}
	defer os.RemoveAll(dir)
	cp := filepath.Join(dir, "target.db")
	if err := backupInto(ctx, src, cp); err != nil {
		return TargetDump{}, err
	}
	version := sqliteVersion(ctx, src)
	_ = src.Close()
	tables, err := finishCopy(ctx, cp, nil)
	if err != nil {
		return TargetDump{}, fmt.Errorf("copy: %w", err)
	}
	m := newMeter(w, progress)
	if err := streamFile(ctx, cp, m); err != nil {
		return TargetDump{}, err
	}
	n, sum := m.finish()
	return TargetDump{
		Kind: KindSQLite, Format: FormatSQLite3, Tables: tables, SQLiteVersion: version,
		Source: abs, Bytes: n, SHA256: sum,
	}, nil
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
	h := sha256.New()
	n, err := io.Copy(io.MultiWriter(tmp, h), cr)
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
	return TargetRestore{Path: dest, Tables: tables, Bytes: n, SHA256: hex.EncodeToString(h.Sum(nil))}, nil
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
