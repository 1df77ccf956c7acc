package snapshot

import (
	"bufio"
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/insightops/insightops/shared/store"
)

// SystemDump describes a System DB dump written by [DumpSystem]; it is
// meant for the archive manifest.
type SystemDump struct {
	// Kind is KindPgDump or KindSQLite.
	Kind string `json:"kind"`
	// Format is FormatCustom (pg_dump -Fc) or FormatSQLite3.
	Format string `json:"format"`
	// Rows is the row count of every System DB table (store.TableNames()),
	// taken in the same snapshot as the dump.
	Rows Counts `json:"rows"`
	// ServerVersion is the PostgreSQL server version, or the SQLite library
	// version.
	ServerVersion string `json:"server_version"`
	// ToolVersion is pg_dump's --version line, or the SQLite library that
	// made the copy.
	ToolVersion string `json:"tool_version"`
	// Source describes the database without credentials (store.DB.Describe).
	Source string `json:"source"`
	// Bytes is the number of bytes written to the writer.
	Bytes int64 `json:"bytes"`
	// SHA256 is the hex SHA-256 of the bytes written to the writer.
	SHA256 string `json:"sha256"`
}

// DumpSystem writes a consistent dump of the System DB to w and describes
// it. progress, if not nil, is called with the cumulative number of bytes
// written (at most about once per MiB, and once at the end).
//
// On PostgreSQL the dump is pg_dump's custom format, streamed from pg_dump's
// stdout into w without a temporary file; pg_dump must not be older than
// the server (the error is a *[VersionError] otherwise). On SQLite it is a
// VACUUM INTO copy taken while writers keep writing, made in a private
// directory under the scratch directory (see [WithScratchDir]), streamed,
// then deleted. See the package documentation for the details.
//
// If DumpSystem fails, part of a dump may already have been written to w;
// the caller discards it.
func DumpSystem(ctx context.Context, db *store.DB, w io.Writer, progress func(bytes int64), opts ...Option) (SystemDump, error) {
	o := buildOptions(opts)
	var (
		d   SystemDump
		err error
	)
	switch db.Dialect() {
	case store.Postgres:
		d, err = dumpPostgres(ctx, db, w, progress, o)
	case store.SQLite:
		d, err = dumpSQLiteSystem(ctx, db, w, progress, o)
	default:
		err = fmt.Errorf("unsupported dialect %q", db.Dialect())
	}
	if err != nil {
		return SystemDump{}, fmt.Errorf("snapshot: dump system db %s: %w", db.Describe(), err)
	}
	return d, nil
}

func dumpPostgres(ctx context.Context, db *store.DB, w io.Writer, progress func(int64), o options) (SystemDump, error) {
	tool, sv, err := checkPgDump(ctx, db, o)
	if err != nil {
		return SystemDump{}, err
	}
	pc, err := pgConnOf(ctx, db)
	if err != nil {
		return SystemDump{}, err
	}
	tx, err := db.SQL.BeginTx(ctx, &sql.TxOptions{Isolation: sql.LevelRepeatableRead, ReadOnly: true})
	if err != nil {
		return SystemDump{}, fmt.Errorf("begin snapshot transaction: %w", err)
	}
	committed := false
	defer func() {
		if !committed {
			_ = tx.Rollback()
		}
	}()
	var snap string
	if err := tx.QueryRowContext(ctx, "SELECT pg_export_snapshot()").Scan(&snap); err != nil {
		return SystemDump{}, fmt.Errorf("export snapshot: %w", err)
	}
	rows := make(Counts)
	for _, t := range store.TableNames() {
		var n int64
		if err := tx.QueryRowContext(ctx, "SELECT count(*) FROM "+quoteIdent(t)).Scan(&n); err != nil {
			return SystemDump{}, fmt.Errorf("count rows of %s: %w", t, err)
		}
		rows[t] = n
	}
	args := []string{"--format=custom", "--no-owner", "--no-privileges", "--snapshot=" + snap}
	if o.pgDumpCompress != "" {
		args = append(args, "--compress="+o.pgDumpCompress)
	}
	args = append(args, "--dbname="+pc.url)
	m := newMeter(w, progress, true)
	if err := (proc{tool: tool, args: args, env: pc.env(), stdout: m, redact: pc.redact}).run(ctx); err != nil {
		return SystemDump{}, err
	}
	if err := tx.Commit(); err != nil {
		return SystemDump{}, fmt.Errorf("end snapshot transaction: %w", err)
	}
	committed = true
	n, sum := m.finish()
	return SystemDump{
		Kind: KindPgDump, Format: FormatCustom, Rows: rows,
		ServerVersion: sv, ToolVersion: tool.version, Source: db.Describe(),
		Bytes: n, SHA256: sum,
	}, nil
}

func dumpSQLiteSystem(ctx context.Context, db *store.DB, w io.Writer, progress func(int64), o options) (SystemDump, error) {
	dir, err := scratch(o.scratchDir)
	if err != nil {
		return SystemDump{}, err
	}
	defer os.RemoveAll(dir)
	cp := filepath.Join(dir, "system.db")
	if err := vacuumInto(ctx, db.SQL, cp); err != nil {
		return SystemDump{}, err
	}
	rows, err := finishCopy(ctx, cp, store.TableNames())
	if err != nil {
		return SystemDump{}, fmt.Errorf("copy: %w", err)
	}
	m := newMeter(w, progress, true)
	if err := streamFile(ctx, cp, m); err != nil {
		return SystemDump{}, err
	}
	n, sum := m.finish()
	v := sqliteVersion(ctx, db.SQL)
	return SystemDump{
		Kind: KindSQLite, Format: FormatSQLite3, Rows: rows,
		ServerVersion: v, ToolVersion: v, Source: db.Describe(),
		Bytes: n, SHA256: sum,
	}, nil
}

// SystemCheck is what [CheckSystem] found in a System DB dump.
type SystemCheck struct {
	// Kind is the kind that was checked.
	Kind string `json:"kind"`
	// Entries is the number of archive entries pg_restore --list listed
	// (pg_dump), or the number of tables (SQLite).
	Entries int `json:"entries"`
	// Tables lists the tables that have data in the dump, sorted: the
	// TABLE DATA entries of a pg_dump archive, the tables of a SQLite file.
	// Every System DB table is among them, or CheckSystem fails.
	Tables []string `json:"tables"`
	// Rows is the row count of every table of a SQLite dump; nil for
	// pg_dump, whose --list does not count rows: use [TestRestorePostgres]
	// for that.
	Rows Counts `json:"rows,omitempty"`
}

// Total returns the number of rows counted, or CountUnknown when the check
// did not count them (pg_dump): the value a backupfmt.Checker returns.
func (c SystemCheck) Total() int64 {
	if c.Rows == nil {
		return CountUnknown
	}
	return c.Rows.Total()
}

// CheckSystem checks that a System DB dump of the given kind can be
// restored, reading it from r. For KindPgDump it pipes r into
// pg_restore --list, which must succeed and list a TABLE DATA entry for
// every System DB table (it reads the archive's table of contents, so it
// does not notice a truncated end: the archive's SHA-256 does, and
// [TestRestorePostgres] restores the data for real). For KindSQLite it
// copies r to the scratch directory, requires PRAGMA integrity_check = ok
// and every System DB table, and counts the rows.
func CheckSystem(ctx context.Context, kind string, r io.Reader, opts ...Option) (SystemCheck, error) {
	o := buildOptions(opts)
	c, err := checkSystem(ctx, kind, r, o)
	if err != nil {
		return SystemCheck{}, fmt.Errorf("snapshot: check %s system dump: %w", kind, err)
	}
	return c, nil
}

func checkSystem(ctx context.Context, kind string, r io.Reader, o options) (SystemCheck, error) {
	switch kind {
	case KindSQLite:
		rows, err := checkSQLite(ctx, r, o, store.TableNames())
		if err != nil {
			return SystemCheck{}, err
		}
		// countTables restricted the counts to the system tables; list them.
		tables := make([]string, 0, len(rows))
		for t := range rows {
			tables = append(tables, t)
		}
		sort.Strings(tables)
		return SystemCheck{Kind: kind, Entries: len(tables), Tables: tables, Rows: rows}, nil
	case KindPgDump:
	default:
		return SystemCheck{}, fmt.Errorf("unknown kind %q (want %q or %q)", kind, KindPgDump, KindSQLite)
	}
	tool, err := findTool(ctx, "pg_restore", o.pgRestore)
	if err != nil {
		return SystemCheck{}, err
	}
	var out limitedBuffer
	out.max = 64 << 20
	cr := newCountingReader(ctx, r, o.progress)
	err = proc{tool: tool, args: []string{"--list"}, env: os.Environ(), stdin: cr, stdout: &out}.run(ctx)
	cr.finish()
	if err != nil {
		return SystemCheck{}, err
	}
	if err := checkTOC(out.Bytes()); err != nil {
		return SystemCheck{}, err
	}
	entries, data := parseTOC(out.Bytes())
	var missing []string
	for _, t := range store.TableNames() {
		if !contains(data, t) {
			missing = append(missing, t)
		}
	}
	if len(missing) > 0 {
		return SystemCheck{}, fmt.Errorf("pg_restore --list shows no TABLE DATA for %s", strings.Join(missing, ", "))
	}
	return SystemCheck{Kind: kind, Entries: entries, Tables: data}, nil
}

// ErrUnexpectedObjects is wrapped by CheckSystem's error when a pg_dump
// archive's table of contents holds objects the System DB schema does not
// have: another object type (a function, trigger, extension, view, rule,
// policy, …), another schema, or a table that is not a System DB table.
// Restoring it would run more than the schema's own DDL.
var ErrUnexpectedObjects = errors.New("the dump holds objects the System DB schema does not have")

// allowedTOC are the object types a dump of the System DB schema holds
// (tables with their data, sequences, column defaults, constraints,
// indexes), longest first so "TABLE DATA" is matched before "TABLE".
var allowedTOC = []string{"SEQUENCE OWNED BY", "SEQUENCE SET", "FK CONSTRAINT", "TABLE DATA", "CONSTRAINT", "SEQUENCE", "DEFAULT", "INDEX", "TABLE"}

// migrationsTable is the schema version table the migrations keep.
const migrationsTable = "goose_db_version"

// checkTOC checks every entry of pg_restore --list output against what
// the System DB schema has (allowedTOC, in schema public, tables among
// store.TableNames and the migrations table): anything else is
// ErrUnexpectedObjects, naming up to five entries. It reads the entries'
// declared types: the signature, not this, vouches for what their
// definitions say.
func checkTOC(out []byte) error {
	tables := map[string]bool{migrationsTable: true}
	for _, t := range store.TableNames() {
		tables[t] = true
	}
	var bad []string
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(make([]byte, 64<<10), 16<<20)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, ";") {
			continue
		}
		// "3375; 0 16390 TABLE DATA public users postgres"
		id, rest, ok := strings.Cut(line, "; ")
		if !ok || strings.Trim(id, "0123456789") != "" {
			bad = append(bad, line)
			continue
		}
		f := strings.SplitN(rest, " ", 3)
		if len(f) < 3 || !entryAllowed(f[2], tables) {
			bad = append(bad, rest)
		}
	}
	if len(bad) == 0 {
		return nil
	}
	shown := bad[:min(len(bad), 5)]
	return fmt.Errorf("%w: %d entries such as %s", ErrUnexpectedObjects, len(bad), strings.Join(shown, "; "))
}

// entryAllowed reports whether a TOC entry's "<type> <schema> <tag…>
// <owner>" is one the System DB schema has.
func entryAllowed(entry string, tables map[string]bool) bool {
	for _, typ := range allowedTOC {
		rest, ok := strings.CutPrefix(entry, typ+" ")
		if !ok {
			continue
		}
		f := strings.Fields(rest)
		if len(f) < 2 || f[0] != "public" {
			return false
		}
		if typ == "TABLE" || typ == "TABLE DATA" {
			return tables[f[1]]
		}
		return true
	}
	return false
}

// parseTOC reads pg_restore --list output: the number of entries and the
// names of the tables with a TABLE DATA entry, sorted.
func parseTOC(out []byte) (entries int, data []string) {
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(make([]byte, 64<<10), 16<<20)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, ";") {
			continue
		}
		// "3375; 0 16390 TABLE DATA public users postgres"
		id, rest, ok := strings.Cut(line, "; ")
		if !ok || strings.Trim(id, "0123456789") != "" {
			continue
		}
		entries++
		f := strings.Fields(rest)
		if len(f) >= 6 && f[2] == "TABLE" && f[3] == "DATA" {
			data = append(data, f[5])
		}
	}
	sort.Strings(data)
	return entries, data
}

// limitedBuffer collects output up to max bytes, then fails.
type limitedBuffer struct {
	bytes.Buffer
	max int
}

func (b *limitedBuffer) Write(p []byte) (int, error) {
	if b.Len()+len(p) > b.max {
		return 0, fmt.Errorf("output larger than %d bytes", b.max)
	}
	return b.Buffer.Write(p)
}

// RestoreResult describes a System DB restore.
type RestoreResult struct {
	// Kind is the kind of dump that was restored.
	Kind string `json:"kind"`
	// Rows is the row count of every System DB table after the restore,
	// audit rows re-inserted included.
	Rows Counts `json:"rows"`
	// AuditReinserted is the number of audit_logs rows that existed before
	// the restore, were missing from the dump and were inserted back.
	AuditReinserted int64 `json:"audit_reinserted"`
	// Bytes is the number of bytes read from the input.
	Bytes int64 `json:"bytes"`
}

// CheckCounts compares the restored row counts with the ones recorded at
// dump time (the manifest's): every table must match exactly, except
// audit_logs, which may hold more (events recorded after the backup).
func (r RestoreResult) CheckCounts(want Counts) error {
	var bad []string
	names := make([]string, 0, len(want))
	for t := range want {
		names = append(names, t)
	}
	sort.Strings(names)
	for _, t := range names {
		got, ok := r.Rows[t]
		switch {
		case !ok:
			bad = append(bad, fmt.Sprintf("%s: missing after restore", t))
		case t == "audit_logs" && got < want[t]:
			bad = append(bad, fmt.Sprintf("%s: %d rows, want at least %d", t, got, want[t]))
		case t != "audit_logs" && got != want[t]:
			bad = append(bad, fmt.Sprintf("%s: %d rows, want %d", t, got, want[t]))
		}
	}
	if len(bad) > 0 {
		return fmt.Errorf("snapshot: restored row counts differ from the manifest: %s", strings.Join(bad, "; "))
	}
	return nil
}

// RestoreSystem replaces the content of the System DB with the dump read
// from r (as written by [DumpSystem] for the same dialect) and returns the
// row counts afterwards. The input's first bytes must match the dialect
// (pg_dump archive for PostgreSQL, SQLite file for SQLite); otherwise
// nothing is touched.
//
// On PostgreSQL r is streamed into pg_restore --clean --if-exists
// --single-transaction --no-owner --no-privileges --exit-on-error: if
// anything fails, nothing changed. On SQLite r is first copied to the
// scratch directory and verified (integrity_check, every System DB table
// present) before the live database is touched through the online backup
// API; see the package documentation.
//
// Audit history is never rolled back: the audit_logs rows present before the
// restore are saved to a JSONL file in the scratch directory and those the
// dump lacks are inserted back (on SQLite in the restore's own transaction,
// on PostgreSQL right after pg_restore); see the package documentation. If
// inserting back fails on PostgreSQL, the error names the file, which is
// kept so the rows can be recovered.
//
// The schema is the dump's afterwards: run store.DB.Migrate to bring an
// older dump's schema up to date.
func RestoreSystem(ctx context.Context, db *store.DB, r io.Reader, opts ...Option) (RestoreResult, error) {
	o := buildOptions(opts)
	res, err := restoreSystem(ctx, db, r, o)
	if err != nil {
		return res, fmt.Errorf("snapshot: restore system db %s: %w", db.Describe(), err)
	}
	return res, nil
}

func restoreSystem(ctx context.Context, db *store.DB, r io.Reader, o options) (RestoreResult, error) {
	cr := newCountingReader(ctx, r, o.progress)
	br := bufio.NewReaderSize(cr, 64<<10)
	head, err := br.Peek(len(sqliteMagic))
	if err != nil && !errors.Is(err, io.EOF) {
		return RestoreResult{}, fmt.Errorf("read input: %w", err)
	}
	var res RestoreResult
	switch db.Dialect() {
	case store.Postgres:
		if !bytes.HasPrefix(head, pgdumpMagic) {
			return res, fmt.Errorf("input is not a pg_dump custom-format archive (starts with %q); the System DB is PostgreSQL", head)
		}
		res.Kind = KindPgDump
	case store.SQLite:
		if !bytes.Equal(head, sqliteMagic) {
			return res, fmt.Errorf("input is not a SQLite database (starts with %q); the System DB is SQLite", head)
		}
		res.Kind = KindSQLite
	default:
		return res, fmt.Errorf("unsupported dialect %q", db.Dialect())
	}

	if res.Kind == KindPgDump {
		if err := restorePostgres(ctx, db, br, o, &res); err != nil {
			res.Bytes = cr.finish()
			return res, err
		}
	} else {
		dir, err := scratch(o.scratchDir)
		if err != nil {
			return res, err
		}
		defer os.RemoveAll(dir)
		path, err := stage(ctx, br, dir, "restore.db", false)
		if err != nil {
			return res, err
		}
		if _, err := verifyFile(ctx, path, store.TableNames()); err != nil {
			return res, fmt.Errorf("verify the dump before restoring (nothing was changed): %w", err)
		}
		if err := restoreSQLiteLive(ctx, db, path, o, &res); err != nil {
			res.Bytes = cr.finish()
			return res, err
		}
	}
	res.Bytes = cr.finish()
	var err2 error
	res.Rows, err2 = countSystem(ctx, db)
	if err2 != nil {
		return res, fmt.Errorf("count rows after restore: %w", err2)
	}
	return res, nil
}

// restorePostgres saves audit_logs, streams r into pg_restore and inserts
// the saved audit rows back.
func restorePostgres(ctx context.Context, db *store.DB, r io.Reader, o options, res *RestoreResult) error {
	tool, err := findTool(ctx, "pg_restore", o.pgRestore)
	if err != nil {
		return err
	}
	pc, err := pgConnOf(ctx, db)
	if err != nil {
		return err
	}
	auditPath, saved, err := saveAudit(ctx, db.SQL, db.Dialect(), o.scratchDir)
	if err != nil {
		return fmt.Errorf("save audit_logs before restoring (nothing was changed): %w", err)
	}
	restoreErr := proc{
		tool: tool,
		args: []string{"--clean", "--if-exists", "--single-transaction", "--no-owner", "--no-privileges",
			"--exit-on-error", "--dbname=" + pc.url},
		env: pc.env(), stdin: r, redact: pc.redact,
	}.run(ctx)
	// Re-insert even after a failed restore: it is a no-op when nothing
	// changed, and it repairs the table if the failure came after a commit.
	var reErr error
	if saved > 0 {
		res.AuditReinserted, reErr = reinsertAudit(context.WithoutCancel(ctx), db.SQL, db.Dialect(), auditPath)
	}
	if reErr != nil {
		reErr = fmt.Errorf("re-insert the %d audit_logs rows saved before the restore (kept in %s): %w", saved, auditPath, reErr)
	} else {
		_ = os.Remove(auditPath)
	}
	return errors.Join(restoreErr, reErr)
}

// countSystem counts the rows of every System DB table.
func countSystem(ctx context.Context, db *store.DB) (Counts, error) {
	out := make(Counts)
	for _, t := range store.TableNames() {
		var n int64
		if err := db.SQL.QueryRowContext(ctx, "SELECT count(*) FROM "+quoteIdent(t)).Scan(&n); err != nil {
			return nil, fmt.Errorf("count rows of %s: %w", t, err)
		}
		out[t] = n
	}
	return out, nil
}

// restoreStepPages is how many pages one backup step copies; between steps
// the context is checked.
const restoreStepPages = 4096

// restoreSQLiteLive copies the verified SQLite file at src into the live
// database with the online backup API (sqlite3_backup_* in the restore
// direction), on one connection of the pool. The destination is written as
// one transaction: a failure or a cancelled context rolls it back.
//
// A first step of zero pages takes the live database's write lock without
// copying anything. With writers held off, the live audit_logs rows are read
// (a WAL reader is not blocked by the lock) into a JSONL file and the ones
// missing from src are inserted into src itself; only then are the pages
// copied. So the audit rows and the restored data are committed together,
// and no event can be stored in between and lost.
func restoreSQLiteLive(ctx context.Context, db *store.DB, src string, o options, res *RestoreResult) error {
	live, err := openFile(ctx, db.SQLitePath(), false)
	if err != nil {
		return fmt.Errorf("open a reader on the live database: %w", err)
	}
	defer live.Close()
	staged, err := openFile(ctx, src, true)
	if err != nil {
		return fmt.Errorf("open the verified copy: %w", err)
	}
	defer staged.Close()

	conn, err := db.SQL.Conn(ctx)
	if err != nil {
		return fmt.Errorf("get connection: %w", err)
	}
	defer conn.Close()
	committed := false
	err = conn.Raw(func(dc any) error {
		rc, ok := dc.(sqliteRestorer)
		if !ok {
			return fmt.Errorf("driver connection %T has no backup API", dc)
		}
		bk, err := rc.NewRestore(fileURI(src, "mode=ro"))
		if err != nil {
			return fmt.Errorf("start backup API restore: %w", err)
		}
		finished := false
		defer func() {
			if !finished {
				_ = bk.Finish() // rolls the destination back
			}
		}()
		step := func(pages int32) (bool, error) {
			for busy := 0; ; busy++ {
				if err := ctx.Err(); err != nil {
					return false, err
				}
				more, err := bk.Step(pages)
				if err == nil {
					return more, nil
				}
				if !isBusy(err) || busy >= 40 {
					return false, fmt.Errorf("backup API step: %w", err)
				}
				time.Sleep(250 * time.Millisecond)
			}
		}
		// Take the write lock of the live database.
		if _, err := step(0); err != nil {
			return fmt.Errorf("lock the live database: %w", err)
		}
		auditPath, saved, err := saveAudit(ctx, live, store.SQLite, o.scratchDir)
		if err != nil {
			return fmt.Errorf("save audit_logs: %w", err)
		}
		defer os.Remove(auditPath)
		if saved > 0 {
			if res.AuditReinserted, err = reinsertAudit(ctx, staged, store.SQLite, auditPath); err != nil {
				return fmt.Errorf("merge live audit_logs into the restored copy: %w", err)
			}
		}
		if err := staged.Close(); err != nil {
			return fmt.Errorf("close the restored copy: %w", err)
		}
		for {
			more, err := step(restoreStepPages)
			if err != nil {
				return err
			}
			if !more {
				break // SQLITE_DONE: the destination transaction is committed
			}
		}
		committed = true
		finished = true
		if err := bk.Finish(); err != nil {
			return fmt.Errorf("finish backup API restore: %w", err)
		}
		return nil
	})
	switch {
	case err != nil && !committed:
		return fmt.Errorf("restore into the live database (rolled back, nothing was changed): %w", err)
	case err != nil:
		return fmt.Errorf("restore into the live database: %w", err)
	}
	return nil
}
