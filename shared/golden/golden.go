// Package golden keeps the Target DB's runtime copy in step with its golden
// source: a checkpointed SQLite file shipped with the application (by default
// assets/databases/vanna_db.db) that insightops never modifies.
//
// Sync copies the golden source to the runtime path when the runtime copy is
// missing or its SHA-256 differs from the source's. The copy is written to a
// temporary file beside the destination, fsynced, validated as SQLite
// (PRAGMA quick_check), atomically renamed into place, and the directory is
// fsynced, so a crash leaves either the old copy or the new one, never a torn
// file. OpenReadOnly opens the runtime copy so that no statement can write to
// it, and Inspect summarises its schema for health reports.
//
// The source is only ever opened with os.Open (O_RDONLY) and streamed; it is
// never opened with SQLite, so not even a lock, a -journal or a -shm file is
// created beside it.
//
// # Sidecar files (-wal, -journal)
//
// Sync copies the main database file only. A golden source is expected to be
// checkpointed and closed: journal_mode DELETE (as the generated demo DB is)
// or a WAL database whose last connection closed cleanly. If a non-empty
// "<source>-wal" or "<source>-journal" file exists, the main file alone may be
// missing committed pages (WAL) or hold a half-written transaction (hot
// rollback journal), so Sync refuses with ErrSourceNotCheckpointed instead of
// copying a database that differs from what SQLite would read. Checkpoint the
// source (PRAGMA wal_checkpoint(TRUNCATE), or open and close it once with
// sqlite3) and retry. Empty sidecar files carry no data and are ignored.
//
// When Sync replaces the runtime copy it first removes stale "-wal", "-shm"
// and "-journal" files beside the destination: they belong to the old file
// and SQLite would otherwise replay them into the new one. Connections that
// already had the old copy open keep reading the old inode until reopened.
package golden

import (
	"bytes"
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"github.com/insightops/insightops/shared/ctxio"
	"github.com/insightops/insightops/shared/durable"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"

	_ "modernc.org/sqlite" // registers the "sqlite" database/sql driver
)

// Actions reported in Result.Action.
const (
	// ActionCopied means the destination did not exist and was created.
	ActionCopied = "copied"
	// ActionUnchanged means the destination already had the source's SHA-256.
	ActionUnchanged = "unchanged"
	// ActionReplaced means the destination existed with different content and
	// was atomically replaced.
	ActionReplaced = "replaced"
)

// Sentinel errors; test for them with errors.Is.
var (
	// ErrSourceMissing is returned by Sync when the golden source file does not
	// exist, so the caller can decide whether that is a warning (target DB
	// disabled, development) or a failure (production).
	ErrSourceMissing = errors.New("golden source missing")

	// ErrSourceInvalid is returned by Sync when the source is not a healthy
	// SQLite database (bad header, fails PRAGMA quick_check). The destination
	// is left untouched. Retrying will not help.
	ErrSourceInvalid = errors.New("golden source is not a valid SQLite database")

	// ErrSourceNotCheckpointed is returned by Sync when a non-empty -wal or
	// -journal file sits beside the source (see the package documentation).
	ErrSourceNotCheckpointed = errors.New("golden source has a non-empty -wal or -journal file (not checkpointed)")

	// ErrSourceChanged is returned by Sync when the source's bytes changed
	// between hashing and copying; the destination is left untouched and a
	// retry is expected to succeed once the source is stable.
	ErrSourceChanged = errors.New("golden source changed while being copied")

	// ErrSameFile means source and dest name the same file (the same path,
	// or a hard or symbolic link to it): Sync would copy a file onto itself.
	ErrSameFile = errors.New("golden source and dest are the same file")
)

// sqliteMagic is the 16-byte header every SQLite 3 database file starts with.
var sqliteMagic = []byte("SQLite format 3\x00")

// Result describes what Sync did.
type Result struct {
	// Action is one of ActionCopied, ActionUnchanged or ActionReplaced.
	Action string `json:"action"`
	// SourceSHA256 is the hex SHA-256 of the golden source.
	SourceSHA256 string `json:"source_sha256"`
	// DestSHA256 is the hex SHA-256 of the file at dest once Sync returns
	// (computed from the bytes actually written); on success it always equals
	// SourceSHA256.
	DestSHA256 string `json:"dest_sha256"`
	// PreviousSHA256 is the hex SHA-256 the destination had before Sync: empty
	// for ActionCopied, the replaced file's hash for ActionReplaced, and equal to
	// DestSHA256 for ActionUnchanged.
	PreviousSHA256 string `json:"previous_sha256,omitempty"`
	// Bytes is the size of the database file now at dest.
	Bytes int64 `json:"bytes"`
}

// Sync makes dest a byte-identical copy of the SQLite file source, copying only
// when dest is missing or its SHA-256 differs from the source's (never judged
// by size or modification time). The source is opened read-only and never
// modified. The new copy is written to a temporary file in dest's directory
// (created if needed), fsynced, checked to open as SQLite and pass
// PRAGMA quick_check, renamed over dest, and the directory is fsynced.
//
// A missing source yields an error matching ErrSourceMissing; a corrupt or
// non-SQLite source ErrSourceInvalid; a source with a pending -wal or hot
// -journal ErrSourceNotCheckpointed. In every error case dest is left as it was.
func Sync(ctx context.Context, source, dest string) (Result, error) {
	var res Result
	if source == "" || dest == "" {
		return res, errors.New("golden sync: source and dest paths are required")
	}
	srcAbs, err := filepath.Abs(source)
	if err != nil {
		return res, fmt.Errorf("golden sync: resolve source %q: %w", source, err)
	}
	dstAbs, err := filepath.Abs(dest)
	if err != nil {
		return res, fmt.Errorf("golden sync: resolve dest %q: %w", dest, err)
	}
	if srcAbs == dstAbs {
		return res, fmt.Errorf("golden sync: %w: %q", ErrSameFile, srcAbs)
	}

	st, err := os.Stat(source)
	if errors.Is(err, fs.ErrNotExist) {
		return res, fmt.Errorf("golden sync: %w: %s", ErrSourceMissing, source)
	}
	if err != nil {
		return res, fmt.Errorf("golden sync: stat source: %w", err)
	}
	if !st.Mode().IsRegular() {
		return res, fmt.Errorf("golden sync: source %s is not a regular file: %w", source, ErrSourceInvalid)
	}
	if same, err := sameFile(st, dest); err != nil {
		return res, err
	} else if same {
		return res, fmt.Errorf("golden sync: %w: %q", ErrSameFile, dest)
	}
	if err := checkSidecars(source); err != nil {
		return res, err
	}
	if err := checkMagic(source); err != nil {
		return res, err
	}

	srcSum, _, err := hashFile(ctx, source)
	if err != nil {
		return res, fmt.Errorf("golden sync: hash source: %w", err)
	}
	res.SourceSHA256 = srcSum

	action := ActionReplaced
	dstSum, dstSize, err := hashFile(ctx, dest)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		action = ActionCopied
	case err != nil:
		return res, fmt.Errorf("golden sync: hash dest: %w", err)
	case dstSum == srcSum:
		res.Action = ActionUnchanged
		res.DestSHA256 = dstSum
		res.PreviousSHA256 = dstSum
		res.Bytes = dstSize
		return res, nil
	default:
		res.PreviousSHA256 = dstSum
	}

	written, n, err := install(ctx, source, dest, srcSum)
	if err != nil {
		return res, err
	}
	res.Action = action
	res.DestSHA256 = written
	res.Bytes = n
	return res, nil
}

// install copies source to a temp file beside dest, verifies it and renames it
// over dest. It returns the SHA-256 and size of the bytes written.
func install(ctx context.Context, source, dest, wantSum string) (sum string, n int64, err error) {
	dir := filepath.Dir(dest)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", 0, fmt.Errorf("golden sync: create dest directory: %w", err)
	}

	src, err := os.Open(source) // O_RDONLY: the source is never written
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return "", 0, fmt.Errorf("golden sync: %w: %s", ErrSourceMissing, source)
		}
		return "", 0, fmt.Errorf("golden sync: open source: %w", err)
	}
	defer src.Close()

	tmp, err := os.CreateTemp(dir, "."+filepath.Base(dest)+".tmp-*")
	if err != nil {
		return "", 0, fmt.Errorf("golden sync: create temp file: %w", err)
	}
	tmpName := tmp.Name()
	committed := false
	defer func() {
		if !committed {
			_ = tmp.Close()
			removeWithSidecars(tmpName)
		}
	}()

	h := sha256.New()
	n, err = io.Copy(io.MultiWriter(tmp, h), ctxio.Reader(ctx, src))
	if err != nil {
		return "", 0, fmt.Errorf("golden sync: copy golden source: %w", err)
	}
	sum = hex.EncodeToString(h.Sum(nil))
	if sum != wantSum {
		return "", 0, fmt.Errorf("golden sync: %w: hashed %s, copied %s", ErrSourceChanged, wantSum, sum)
	}
	if err := tmp.Chmod(0o644); err != nil {
		return "", 0, fmt.Errorf("golden sync: chmod temp file: %w", err)
	}
	if err := tmp.Sync(); err != nil {
		return "", 0, fmt.Errorf("golden sync: fsync temp file: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return "", 0, fmt.Errorf("golden sync: close temp file: %w", err)
	}

	if err := validate(ctx, tmpName); err != nil {
		return "", 0, fmt.Errorf("golden sync: validate copy of %s: %w", source, err)
	}
	if err := ctx.Err(); err != nil {
		return "", 0, fmt.Errorf("golden sync: %w", err)
	}

	// Stale sidecars belong to the file being replaced; SQLite would replay
	// them into the new one.
	for _, suffix := range []string{"-wal", "-shm", "-journal"} {
		if err := os.Remove(dest + suffix); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return "", 0, fmt.Errorf("golden sync: remove stale %s%s: %w", dest, suffix, err)
		}
	}
	if err := os.Rename(tmpName, dest); err != nil {
		return "", 0, fmt.Errorf("golden sync: rename into place: %w", err)
	}
	committed = true
	if err := durable.SyncDir(dir); err != nil {
		return "", 0, fmt.Errorf("golden sync: fsync directory %s: %w", dir, err)
	}
	return sum, n, nil
}

// validate opens path read-only and immutable (no locks, no sidecar files)
// and requires PRAGMA quick_check to answer "ok".
func validate(ctx context.Context, path string) error {
	db, err := sql.Open("sqlite", fileURI(path, "mode=ro", "immutable=1"))
	if err != nil {
		return fmt.Errorf("%w: open: %w", ErrSourceInvalid, err)
	}
	defer db.Close()
	rows, err := db.QueryContext(ctx, "PRAGMA quick_check")
	if err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return fmt.Errorf("%w: quick_check: %w", ErrSourceInvalid, err)
	}
	defer rows.Close()
	var problems []string
	for rows.Next() {
		var line string
		if err := rows.Scan(&line); err != nil {
			return fmt.Errorf("%w: quick_check: %w", ErrSourceInvalid, err)
		}
		if line != "ok" && len(problems) < 5 {
			problems = append(problems, line)
		}
	}
	if err := rows.Err(); err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return fmt.Errorf("%w: quick_check: %w", ErrSourceInvalid, err)
	}
	if len(problems) > 0 {
		return fmt.Errorf("%w: quick_check: %s", ErrSourceInvalid, strings.Join(problems, "; "))
	}
	return nil
}

// checkMagic rejects files that do not start with the SQLite 3 header,
// including empty files (which SQLite would happily treat as an empty DB).
func checkMagic(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("golden sync: open source: %w", err)
	}
	defer f.Close()
	hdr := make([]byte, len(sqliteMagic))
	if _, err := io.ReadFull(f, hdr); err != nil || !bytes.Equal(hdr, sqliteMagic) {
		return fmt.Errorf("golden sync: %s: %w: missing SQLite header", path, ErrSourceInvalid)
	}
	return nil
}

// checkSidecars refuses a source with a non-empty -wal or -journal file.
func checkSidecars(source string) error {
	for _, suffix := range []string{"-wal", "-journal"} {
		st, err := os.Stat(source + suffix)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return fmt.Errorf("golden sync: stat %s%s: %w", source, suffix, err)
		}
		if st.Size() > 0 {
			return fmt.Errorf("golden sync: %w: %s%s is %d bytes; checkpoint the source first",
				ErrSourceNotCheckpointed, source, suffix, st.Size())
		}
	}
	return nil
}

// sameFile reports whether dest exists and is the very file described by src
// (a hard link or a path alias), which Sync must refuse.
func sameFile(src os.FileInfo, dest string) (bool, error) {
	st, err := os.Stat(dest)
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("golden sync: stat dest: %w", err)
	}
	if st.IsDir() {
		return false, fmt.Errorf("golden sync: dest %s is a directory", dest)
	}
	return os.SameFile(src, st), nil
}

// HashFile returns the hex SHA-256 and the size of the file at path,
// streaming it so memory stays flat whatever the file's size.
func HashFile(ctx context.Context, path string) (sum string, size int64, err error) {
	sum, size, err = hashFile(ctx, path)
	if err != nil {
		return "", 0, fmt.Errorf("hash %s: %w", path, err)
	}
	return sum, size, nil
}

func hashFile(ctx context.Context, path string) (string, int64, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", 0, err
	}
	defer f.Close()
	h := sha256.New()
	n, err := io.Copy(h, ctxio.Reader(ctx, f))
	if err != nil {
		return "", 0, err
	}
	return hex.EncodeToString(h.Sum(nil)), n, nil
}

func removeWithSidecars(path string) {
	for _, suffix := range []string{"", "-wal", "-shm", "-journal"} {
		_ = os.Remove(path + suffix)
	}
}

// fileURI builds a SQLite URI filename for path with the given raw query
// parameters, percent-encoding the characters that are special in a URI
// ('%', '?', '#') so any path is opened verbatim.
func fileURI(path string, params ...string) string {
	r := strings.NewReplacer("%", "%25", "?", "%3f", "#", "%23")
	p := filepath.ToSlash(path)
	if strings.HasPrefix(p, "//") { // would be parsed as an authority
		p = "/" + strings.TrimLeft(p, "/")
	}
	u := "file:" + r.Replace(p)
	if len(params) > 0 {
		u += "?" + strings.Join(params, "&")
	}
	return u
}

// OpenReadOnly opens the SQLite file at path (normally the runtime copy of
// the golden source) so that nothing can write to it: the file is opened with
// mode=ro and every connection runs with PRAGMA query_only(1). It pings the
// database and reads its schema before returning, so a missing or non-SQLite
// file is reported here rather than at the first query. The caller closes the
// returned *sql.DB.
//
// The main file is never written. If the file is in WAL mode (header says
// so), SQLite still creates "-wal" and "-shm" files beside it while it is
// open; a golden source in journal_mode DELETE (as the demo DB is) avoids that.
func OpenReadOnly(ctx context.Context, path string) (*sql.DB, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("open target db read-only: %w", err)
	}
	if !st.Mode().IsRegular() {
		return nil, fmt.Errorf("open target db read-only: %s is not a regular file", path)
	}
	db, err := sql.Open("sqlite", fileURI(path, "mode=ro", "_pragma=query_only(1)"))
	if err != nil {
		return nil, fmt.Errorf("open target db read-only %s: %w", path, err)
	}
	if err := db.PingContext(ctx); err != nil {
		_ = db.Close() // the ping's error is the one to report
		return nil, fmt.Errorf("open target db read-only %s: ping: %w", path, err)
	}
	var n int
	if err := db.QueryRowContext(ctx, "SELECT count(*) FROM sqlite_schema").Scan(&n); err != nil {
		_ = db.Close() // the read's error is the one to report
		return nil, fmt.Errorf("open target db read-only %s: read schema: %w", path, err)
	}
	return db, nil
}

// Info summarises a database's schema.
type Info struct {
	// Tables is the number of user tables (sqlite_* internal tables excluded).
	Tables int `json:"tables"`
	// TableNames holds the first sample table names in sorted order; never nil.
	TableNames []string `json:"table_names"`
	// Views is the number of views.
	Views int `json:"views"`
}

// Inspect counts the user tables and views of the SQLite database db and
// returns up to sample table names, sorted. A sample of zero or less returns
// no names.
func Inspect(ctx context.Context, db *sql.DB, sample int) (Info, error) {
	info := Info{TableNames: []string{}}
	rows, err := db.QueryContext(ctx,
		`SELECT type, name FROM sqlite_schema
		 WHERE type IN ('table', 'view') AND name NOT LIKE 'sqlite\_%' ESCAPE '\'`)
	if err != nil {
		return info, fmt.Errorf("inspect target db: %w", err)
	}
	defer rows.Close()
	var names []string
	for rows.Next() {
		var typ, name string
		if err := rows.Scan(&typ, &name); err != nil {
			return info, fmt.Errorf("inspect target db: scan: %w", err)
		}
		if typ == "view" {
			info.Views++
			continue
		}
		info.Tables++
		names = append(names, name)
	}
	if err := rows.Err(); err != nil {
		return info, fmt.Errorf("inspect target db: %w", err)
	}
	sort.Strings(names)
	if sample > len(names) {
		sample = len(names)
	}
	if sample > 0 {
		info.TableNames = append(info.TableNames, names[:sample]...)
	}
	return info, nil
}
