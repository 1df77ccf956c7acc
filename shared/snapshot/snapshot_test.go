package snapshot_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/insightops/insightops/shared/golden"
	"github.com/insightops/insightops/shared/golden/demodb"
	"github.com/jackc/pgx/v5"

	"github.com/insightops/insightops/shared/snapshot"
	"github.com/insightops/insightops/shared/store"
	"github.com/insightops/insightops/shared/testkit"
)

func ctxT(t testing.TB) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

func openSQLite(t *testing.T) *store.DB {
	t.Helper()
	return testkit.SQLite.SystemDB(t)
}

func openPostgres(t *testing.T) *store.DB {
	t.Helper()
	return testkit.PostgreSQL.SystemDB(t)
}

func openMigrated(t *testing.T, databaseURL, path string) *store.DB {
	t.Helper()
	ctx := ctxT(t)
	db, err := store.Open(ctx, databaseURL, path)
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	t.Cleanup(func() { _ = db.Close() })
	if _, err := db.Migrate(ctx); err != nil {
		t.Fatalf("migrate: %v", err)
	}
	return db
}

func exec1(t *testing.T, db *store.DB, q string, args ...any) {
	t.Helper()
	if _, err := db.SQL.ExecContext(ctxT(t), db.Rebind(q), args...); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
}

func audit(id string, at time.Time) store.AuditLog {
	return store.AuditLog{
		EventID: id, StreamSeq: uint64(at.UnixNano() % 100000), At: at, Actor: "admin@example.com", Role: "admin",
		Action: "backup.requested", Resource: "backup", JobID: "job-" + id, Outcome: "success",
		Detail: []byte(`{"components": ["system"], "n": 1}`), SourceIP: "10.0.0.1", RequestID: "req-" + id,
		PrevHash: "prev-" + id, Hash: "hash-" + id,
	}
}

// seed fills every System DB table through the store package (raw SQL for
// queries and feedback, which it has no writer for).
func seed(t *testing.T, db *store.DB, demoRows int) {
	t.Helper()
	ctx := ctxT(t)
	for i, role := range []string{store.RoleAdmin, store.RoleOperator, store.RoleViewer} {
		if _, err := db.CreateUserIfAbsent(ctx, fmt.Sprintf("user%d@example.com", i), "hash-"+role, role); err != nil {
			t.Fatal(err)
		}
	}
	for i := 1; i <= 20; i++ {
		exec1(t, db, `INSERT INTO queries (user_id, question, sql, status) VALUES (?, ?, ?, ?)`,
			1+i%3, fmt.Sprintf("question %d?", i), fmt.Sprintf("SELECT %d", i), "answered")
	}
	for i := 1; i <= 10; i++ {
		rating := 1
		if i%2 == 0 {
			rating = -1
		}
		exec1(t, db, `INSERT INTO feedback (query_id, user_id, rating, comment) VALUES (?, ?, ?, ?)`, i, 1, rating, fmt.Sprintf("comment %d", i))
	}
	for i := 1; i <= 3; i++ {
		if err := db.SetConfig(ctx, fmt.Sprintf("key%d", i), fmt.Sprintf("value %d", i)); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := db.UpsertOntology(ctx, []store.OntologyTerm{
		{Term: "revenue", Definition: "money in", Synonyms: []string{"income", "sales"}, Tables: []string{"invoices"}},
		{Term: "expense", Definition: "money out", Tables: []string{"bills"}, SQLHint: "amount < 0"},
		{Term: "AR", Definition: "accounts receivable"},
	}); err != nil {
		t.Fatal(err)
	}
	if _, err := db.SeedDemoTransactions(ctx, store.DemoTransactions(demoRows, 7)); err != nil {
		t.Fatal(err)
	}
	base := time.Date(2026, 1, 2, 3, 4, 5, 123456000, time.UTC)
	for i := 1; i <= 5; i++ {
		if _, err := db.InsertAuditLog(ctx, audit(fmt.Sprintf("evt-%d", i), base.Add(time.Duration(i)*time.Minute))); err != nil {
			t.Fatal(err)
		}
	}
}

// allRows returns every row of every System DB table, rendered as text, in
// primary key order.
func allRows(t *testing.T, db *store.DB) map[string][]string {
	t.Helper()
	out := map[string][]string{}
	for _, table := range store.TableNames() {
		out[table] = tableRows(t, db.SQL, table)
	}
	return out
}

func tableRows(t testing.TB, db *sql.DB, table string) []string {
	t.Helper()
	return testkit.TableRows(ctxT(t), t, db, table)
}

func counts(t *testing.T, db *store.DB) snapshot.Counts {
	t.Helper()
	c := snapshot.Counts{}
	for table, rows := range allRows(t, db) {
		c[table] = int64(len(rows))
	}
	return c
}

// mutate changes and deletes data in every table but audit_logs.
func mutate(t *testing.T, db *store.DB) {
	t.Helper()
	ctx := ctxT(t)
	exec1(t, db, `UPDATE users SET role = 'viewer' WHERE role = 'admin'`)
	if _, err := db.CreateUserIfAbsent(ctx, "intruder@example.com", "x", store.RoleAdmin); err != nil {
		t.Fatal(err)
	}
	exec1(t, db, `DELETE FROM feedback WHERE rating = 1`)
	exec1(t, db, `DELETE FROM queries WHERE id > 15`)
	exec1(t, db, `UPDATE queries SET sql = 'DROP TABLE x' WHERE id = 1`)
	exec1(t, db, `DELETE FROM accounting_transactions WHERE id > 50`)
	exec1(t, db, `DELETE FROM configurations WHERE key = 'key2'`)
	if err := db.SetConfig(ctx, "key1", "changed"); err != nil {
		t.Fatal(err)
	}
	if _, err := db.UpsertOntology(ctx, []store.OntologyTerm{{Term: "revenue", Definition: "changed"}, {Term: "new term"}}); err != nil {
		t.Fatal(err)
	}
}

func sha(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

func TestSystemRoundTrip(t *testing.T) {
	t.Parallel()
	for _, b := range testkit.Dialects {
		t.Run(b.Name, func(t *testing.T) {
			t.Parallel()
			ctx := ctxT(t)
			db := b.SystemDB(t)
			seed(t, db, 300)

			var dump bytes.Buffer
			var progressed int64
			d, err := snapshot.DumpSystem(ctx, db, &dump, func(n int64) { progressed = n })
			if err != nil {
				t.Fatalf("dump: %v", err)
			}
			wantKind := map[string]string{"sqlite": snapshot.KindSQLite, "postgres": snapshot.KindPgDump}[b.Name]
			if d.Kind != wantKind || d.Bytes != int64(dump.Len()) || d.SHA256 != sha(dump.Bytes()) || progressed != d.Bytes {
				t.Fatalf("dump = %+v (progress %d, %d bytes written, sha %s)", d, progressed, dump.Len(), sha(dump.Bytes()))
			}
			if d.Source != db.Describe() || d.ServerVersion == "" || d.ToolVersion == "" {
				t.Fatalf("dump description = %+v", d)
			}
			if got := counts(t, db); !reflect.DeepEqual(d.Rows, got) {
				t.Fatalf("dump rows = %v, want %v", d.Rows, got)
			}
			t.Logf("%s dump: %d bytes, rows %v, tool %q, server %q", b.Name, d.Bytes, d.Rows, d.ToolVersion, d.ServerVersion)
			if d.Kind == snapshot.KindSQLite {
				// A self-contained file: rollback-journal mode, not WAL.
				if h := dump.Bytes(); h[18] != 1 || h[19] != 1 {
					t.Fatalf("dump header read/write versions = %d/%d, want 1/1 (not WAL)", h[18], h[19])
				}
			}

			check, err := snapshot.CheckSystem(ctx, d.Kind, bytes.NewReader(dump.Bytes()))
			if err != nil {
				t.Fatalf("check: %v", err)
			}
			for _, table := range store.TableNames() {
				if !slices.Contains(check.Tables, table) {
					t.Fatalf("check tables %v lack %s", check.Tables, table)
				}
			}
			if d.Kind == snapshot.KindSQLite && (!reflect.DeepEqual(check.Rows, d.Rows) || check.Total() != d.Rows.Total()) {
				t.Fatalf("check rows = %v (total %d), want %v", check.Rows, check.Total(), d.Rows)
			}
			if d.Kind == snapshot.KindPgDump && check.Total() != snapshot.CountUnknown {
				t.Fatalf("pg_dump check total = %d, want CountUnknown", check.Total())
			}
			if d.Kind == snapshot.KindPgDump {
				rows, err := snapshot.TestRestorePostgres(ctx, testkit.PostgresCreateDBRole(t), bytes.NewReader(dump.Bytes()))
				if err != nil {
					t.Fatalf("test restore: %v", err)
				}
				if !reflect.DeepEqual(rows, d.Rows) {
					t.Fatalf("test restore rows = %v, want %v", rows, d.Rows)
				}
			}

			want := allRows(t, db)
			mutate(t, db)
			// Audit events recorded after the backup: they must survive.
			later := time.Date(2026, 2, 1, 0, 0, 0, 0, time.UTC)
			for i := 1; i <= 3; i++ {
				if _, err := db.InsertAuditLog(ctx, audit(fmt.Sprintf("after-%d", i), later.Add(time.Duration(i)*time.Second))); err != nil {
					t.Fatal(err)
				}
			}
			auditBefore := allRows(t, db)["audit_logs"]
			if reflect.DeepEqual(allRows(t, db), want) {
				t.Fatal("mutate changed nothing")
			}
			// A second handle on the same database, open across the restore.
			var other *store.DB
			if b.Name == "sqlite" {
				other = openMigrated(t, "", db.SQLitePath())
				if _, err := other.UserByEmail(ctx, "intruder@example.com"); err != nil {
					t.Fatal(err)
				}
			}

			var readBytes int64
			res, err := snapshot.RestoreSystem(ctx, db, bytes.NewReader(dump.Bytes()), snapshot.WithProgress(func(n int64) { readBytes = n }))
			if err != nil {
				t.Fatalf("restore: %v", err)
			}
			got := allRows(t, db)
			for _, table := range store.TableNames() {
				if table == "audit_logs" {
					continue
				}
				if !reflect.DeepEqual(got[table], want[table]) {
					t.Errorf("%s after restore:\n got %q\nwant %q", table, got[table], want[table])
				}
			}
			// Every audit row present before the restore, same id and hash,
			// and every row of the dump.
			if !reflect.DeepEqual(got["audit_logs"], auditBefore) {
				t.Errorf("audit_logs after restore:\n got %q\nwant %q", got["audit_logs"], auditBefore)
			}
			for _, r := range want["audit_logs"] {
				if !slices.Contains(got["audit_logs"], r) {
					t.Errorf("audit row of the dump missing after restore: %s", r)
				}
			}
			if res.AuditReinserted != 3 || res.Kind != d.Kind || res.Bytes != d.Bytes || readBytes != d.Bytes {
				t.Errorf("restore result = %+v (progress %d), want 3 audit rows re-inserted, %d bytes", res, readBytes, d.Bytes)
			}
			if !reflect.DeepEqual(res.Rows, counts(t, db)) {
				t.Errorf("restore rows = %v, want %v", res.Rows, counts(t, db))
			}
			if err := res.CheckCounts(d.Rows); err != nil {
				t.Errorf("check counts: %v", err)
			}
			// The pool keeps working, and new audit rows get fresh ids (the
			// PostgreSQL identity sequence was moved past the re-inserted ids).
			if ins, err := db.InsertAuditLog(ctx, audit("after-restore", time.Now())); err != nil || !ins {
				t.Fatalf("insert audit after restore: %v %v", ins, err)
			}
			if _, err := db.CreateUserIfAbsent(ctx, "new@example.com", "h", store.RoleViewer); err != nil {
				t.Fatalf("insert user after restore: %v", err)
			}
			if other != nil {
				if _, err := other.UserByEmail(ctx, "intruder@example.com"); !errors.Is(err, store.ErrNotFound) {
					t.Fatalf("other handle still sees the pre-restore data: %v", err)
				}
				if !reflect.DeepEqual(tableRows(t, other.SQL, "users"), tableRows(t, db.SQL, "users")) {
					t.Fatal("other handle sees different users")
				}
				var mode, ok string
				if err := db.SQL.QueryRowContext(ctx, "PRAGMA journal_mode").Scan(&mode); err != nil || mode != "wal" {
					t.Fatalf("journal mode after restore = %q, %v; want wal", mode, err)
				}
				if err := db.SQL.QueryRowContext(ctx, "PRAGMA integrity_check").Scan(&ok); err != nil || ok != "ok" {
					t.Fatalf("integrity after restore = %q, %v", ok, err)
				}
			}
			if _, pending, err := db.SchemaVersion(ctx); err != nil || pending {
				t.Fatalf("schema after restore: pending %v, %v", pending, err)
			}
		})
	}
}

// An audit event whose id the dump gives to another event is kept under a
// new id.
func TestRestoreKeepsAuditEventWhoseIDIsTaken(t *testing.T) {
	t.Parallel()
	for _, b := range testkit.Dialects {
		t.Run(b.Name, func(t *testing.T) {
			t.Parallel()
			ctx := ctxT(t)
			db := b.SystemDB(t)
			seed(t, db, 10)
			var dump bytes.Buffer
			if _, err := snapshot.DumpSystem(ctx, db, &dump, nil); err != nil {
				t.Fatal(err)
			}
			// Rewrite history so that id 5 now holds another event.
			exec1(t, db, `DELETE FROM audit_logs WHERE id = 5`)
			exec1(t, db, `INSERT INTO audit_logs (id, event_id, at, action, hash) VALUES (5, 'usurper', '2026-03-01T00:00:00.000000Z', 'x.y', 'h-usurper')`)
			res, err := snapshot.RestoreSystem(ctx, db, bytes.NewReader(dump.Bytes()))
			if err != nil {
				t.Fatal(err)
			}
			logs, err := db.AuditLogs(ctx, store.AuditFilter{Limit: 100})
			if err != nil {
				t.Fatal(err)
			}
			byEvent := map[string]store.AuditLog{}
			for _, l := range logs {
				byEvent[l.EventID] = l
			}
			if len(logs) != 6 || byEvent["evt-5"].ID != 5 || byEvent["usurper"].ID <= 5 || byEvent["usurper"].Hash != "h-usurper" {
				t.Fatalf("audit after restore = %+v", logs)
			}
			if res.AuditReinserted != 1 {
				t.Fatalf("re-inserted %d, want 1", res.AuditReinserted)
			}
		})
	}
}

func TestRestoreTruncatedOrForeignDumpChangesNothing(t *testing.T) {
	t.Parallel()
	for _, b := range testkit.Dialects {
		t.Run(b.Name, func(t *testing.T) {
			t.Parallel()
			ctx := ctxT(t)
			db := b.SystemDB(t)
			seed(t, db, 2000)
			var dump bytes.Buffer
			if _, err := snapshot.DumpSystem(ctx, db, &dump, nil); err != nil {
				t.Fatal(err)
			}
			mutate(t, db)
			before := allRows(t, db)
			full := dump.Bytes()
			inputs := map[string][]byte{
				"half":         full[:len(full)/2],
				"last byte":    full[:len(full)-1],
				"header only":  full[:16],
				"empty":        nil,
				"garbage":      []byte("this is not a database dump at all"),
				"other format": otherDialectDump(t, b.Name),
			}
			if b.Name == "sqlite" {
				// A SQLite file whose pages are fine but that is not a System DB.
				inputs["not a system db"] = targetDump(t)
			}
			// What each refusal says: a foreign or unreadable input is
			// refused before anything is touched; a damaged SQLite dump
			// fails the check of the copy (nothing changed); a damaged
			// pg_dump fails pg_restore's single transaction.
			wantErr := map[string]string{
				"half": "verify the dump before restoring (nothing was changed)", "last byte": "verify the dump before restoring (nothing was changed)",
				"header only": "verify the dump before restoring (nothing was changed)", "empty": "input is not a SQLite database",
				"garbage": "input is not a SQLite database", "other format": "input is not a SQLite database", "not a system db": "missing tables",
			}
			if b.Name != "sqlite" {
				wantErr = map[string]string{
					"half": "pg_restore: error", "last byte": "pg_restore: error", "header only": "pg_restore: error",
					"empty": "input is not a pg_dump custom-format archive", "garbage": "input is not a pg_dump custom-format archive",
					"other format": "input is not a pg_dump custom-format archive",
				}
			}
			for name, in := range inputs {
				_, err := snapshot.RestoreSystem(ctx, db, bytes.NewReader(in))
				if err == nil {
					t.Errorf("%s: restore succeeded", name)
					continue
				}
				if w := wantErr[name]; w == "" || !strings.Contains(err.Error(), w) {
					t.Errorf("%s: restore refused with %v, want it to say %q", name, err, w)
				}
				t.Logf("%s: %v", name, err)
				if after := allRows(t, db); !reflect.DeepEqual(after, before) {
					t.Fatalf("%s: data changed by a failed restore", name)
				}
			}
			// The live database is still fine and restorable.
			if _, err := snapshot.RestoreSystem(ctx, db, bytes.NewReader(full)); err != nil {
				t.Fatalf("restore after failures: %v", err)
			}
		})
	}
}

// otherDialectDump returns the first bytes of a dump of the other dialect.
func otherDialectDump(t *testing.T, name string) []byte {
	if name == "sqlite" {
		return []byte("PGDMP\x01\x0f\x00\x04\x08\x01\x01\x01\x00\x00\x00\x00")
	}
	return append([]byte("SQLite format 3\x00"), make([]byte, 4096)...)
}

func targetDump(t *testing.T) []byte {
	t.Helper()
	ctx := ctxT(t)
	src := filepath.Join(t.TempDir(), "golden.db")
	if _, err := demodb.Generate(ctx, src, 1); err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if _, err := snapshot.DumpTarget(ctx, src, &buf, nil); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func writeScript(t *testing.T, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "pg_dump")
	if err := os.WriteFile(p, []byte("#!/bin/sh\n"+body+"\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestPgDumpOlderThanServerIsAClearError(t *testing.T) {
	t.Parallel()
	ctx := ctxT(t)
	db := openPostgres(t)
	var major int
	if err := db.SQL.QueryRowContext(ctx, "SELECT current_setting('server_version_num')::int / 10000").Scan(&major); err != nil {
		t.Fatal(err)
	}
	// A fixture for the version check only: it prints an old version.
	fake := writeScript(t, fmt.Sprintf(`echo "pg_dump (PostgreSQL) %d.0"`, major-1))
	var out bytes.Buffer
	_, err := snapshot.DumpSystem(ctx, db, &out, nil, snapshot.WithPgDump(fake))
	want := fmt.Sprintf("pg_dump %d is older than server %d: install postgresql-client-%d", major-1, major, major)
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Fatalf("err = %v, want it to say %q", err, want)
	}
	var ve *snapshot.VersionError
	if !errors.As(err, &ve) || ve.ToolMajor != major-1 || ve.ServerMajor != major {
		t.Fatalf("err = %#v, want a *VersionError", err)
	}
	if out.Len() != 0 {
		t.Fatalf("%d bytes written despite the version error", out.Len())
	}
	if _, _, err := snapshot.CheckPgDumpVersion(ctx, db); err != nil {
		t.Fatalf("the installed pg_dump: %v", err)
	}
}

// The password reaches pg_dump through PGPASSWORD only, never its command
// line, and never appears in an error.
func TestPgDumpPasswordStaysOffTheCommandLine(t *testing.T) {
	t.Parallel()
	ctx := ctxT(t)
	base := testkit.Postgres(t)
	u, err := url.Parse(base)
	if err != nil {
		t.Fatal(err)
	}
	const secret = "s3cret-Pw_42"
	u.User = url.UserPassword(u.User.Username(), secret) // trust auth: accepted and ignored
	db := openMigrated(t, u.String(), "")
	seed(t, db, 10)
	pgDump, err := exec.LookPath("pg_dump")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	wrapper := writeScript(t, fmt.Sprintf(`printf '%%s\n' "$@" >> %s/args
printf '%%s' "$PGPASSWORD" > %s/pw
exec %s "$@"`, dir, dir, pgDump))
	var out bytes.Buffer
	if _, err := snapshot.DumpSystem(ctx, db, &out, nil, snapshot.WithPgDump(wrapper)); err != nil {
		t.Fatalf("dump: %v", err)
	}
	args, _ := os.ReadFile(filepath.Join(dir, "args"))
	pw, _ := os.ReadFile(filepath.Join(dir, "pw"))
	if strings.Contains(string(args), secret) || string(pw) != secret || !strings.Contains(string(args), "--dbname=postgresql://") {
		t.Fatalf("args %q, PGPASSWORD %q", args, pw)
	}

	failing := writeScript(t, fmt.Sprintf(`case "$1" in --version) exec %s --version;; esac
echo "pg_dump: error: connection to postgresql://u:%s@h/db failed: boom" >&2
exit 1`, pgDump, secret))
	_, err = snapshot.DumpSystem(ctx, db, &out, nil, snapshot.WithPgDump(failing))
	if err == nil || !strings.Contains(err.Error(), "boom") || strings.Contains(err.Error(), secret) {
		t.Fatalf("err = %v; want pg_dump's stderr without the password", err)
	}
}

// An uncompressed custom-format dump (for archives compressed anyway)
// checks and restores like the default one.
func TestPgDumpWithoutCompression(t *testing.T) {
	t.Parallel()
	ctx := ctxT(t)
	db := openPostgres(t)
	seed(t, db, 500)
	var plain, def bytes.Buffer
	d, err := snapshot.DumpSystem(ctx, db, &plain, nil, snapshot.WithPgDumpCompression("0"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := snapshot.DumpSystem(ctx, db, &def, nil); err != nil {
		t.Fatal(err)
	}
	if plain.Len() <= def.Len() {
		t.Fatalf("uncompressed dump %d bytes, default %d", plain.Len(), def.Len())
	}
	if _, err := snapshot.CheckSystem(ctx, d.Kind, bytes.NewReader(plain.Bytes())); err != nil {
		t.Fatal(err)
	}
	rows, err := snapshot.TestRestorePostgres(ctx, testkit.PostgresCreateDBRole(t), bytes.NewReader(plain.Bytes()))
	if err != nil || !reflect.DeepEqual(rows, d.Rows) {
		t.Fatalf("test restore = %v, %v; want %v", rows, err, d.Rows)
	}
}

// Cancelling the context kills pg_dump (a fixture that hangs stands in for a
// very long dump) and ends the snapshot transaction.
func TestDumpSystemKillsPgDumpOnCancel(t *testing.T) {
	t.Parallel()
	db := openPostgres(t)
	hang := writeScript(t, `case "$1" in --version) echo "pg_dump (PostgreSQL) 99.0"; exit 0;; esac
exec sleep 60`)
	ctx, cancel := context.WithTimeout(ctxT(t), 700*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := snapshot.DumpSystem(ctx, db, &bytes.Buffer{}, nil, snapshot.WithPgDump(hang))
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v, want context.DeadlineExceeded", err)
	}
	if time.Since(start) > 10*time.Second {
		t.Fatalf("took %v", time.Since(start))
	}
	var n int
	if err := db.SQL.QueryRowContext(ctxT(t), `SELECT count(*) FROM pg_stat_activity
		WHERE datname = current_database() AND state LIKE 'idle in transaction%'`).Scan(&n); err != nil || n != 0 {
		t.Fatalf("%d transactions left open (%v)", n, err)
	}
}

func TestCheckSystemRejectsBrokenDumps(t *testing.T) {
	t.Parallel()
	ctx := ctxT(t)
	for _, kind := range []string{snapshot.KindPgDump, snapshot.KindSQLite} {
		want := map[string]string{snapshot.KindPgDump: "pg_restore: error", snapshot.KindSQLite: "not a SQLite 3 database"}[kind]
		for name, in := range map[string][]byte{"empty": nil, "garbage": []byte("garbage garbage garbage garbage")} {
			if _, err := snapshot.CheckSystem(ctx, kind, bytes.NewReader(in)); err == nil || !strings.Contains(err.Error(), want) {
				t.Errorf("%s %s: check = %v, want it to say %q", kind, name, err, want)
			}
		}
	}
	if _, err := snapshot.CheckSystem(ctx, "tarball", bytes.NewReader(nil)); err == nil || !strings.Contains(err.Error(), `unknown kind "tarball"`) {
		t.Errorf("unknown kind: %v", err)
	}
	// A valid SQLite file that is not a System DB.
	if _, err := snapshot.CheckSystem(ctx, snapshot.KindSQLite, bytes.NewReader(targetDump(t))); err == nil || !strings.Contains(err.Error(), "missing tables") {
		t.Errorf("target db accepted as a system dump: %v", err)
	}
}

func TestTestRestorePostgresFailsOnTruncatedDumpAndDropsScratch(t *testing.T) {
	t.Parallel()
	ctx := ctxT(t)
	db := openPostgres(t)
	seed(t, db, 2000)
	var dump bytes.Buffer
	if _, err := snapshot.DumpSystem(ctx, db, &dump, nil); err != nil {
		t.Fatal(err)
	}
	_, err := snapshot.TestRestorePostgres(ctx, testkit.PostgresCreateDBRole(t), bytes.NewReader(dump.Bytes()[:dump.Len()/2]))
	if err == nil || !strings.Contains(err.Error(), "could not read from input file") {
		t.Fatalf("truncated dump: %v, want pg_restore's read error", err)
	}
	// Other packages' tests restore into scratch databases of their own at
	// the same time: check that this one's (named in the error) is gone.
	name := regexp.MustCompile(`insightops_scratch_[0-9]+_[0-9a-f]+`).FindString(err.Error())
	if name == "" {
		t.Fatalf("error does not name the scratch database: %v", err)
	}
	var n int
	if err := db.SQL.QueryRowContext(ctx, `SELECT count(*) FROM pg_database WHERE datname = $1`, name).Scan(&n); err != nil || n != 0 {
		t.Fatalf("scratch database %s left (%d, %v)", name, n, err)
	}
}

// A scratch database left by a killed verify (its name carries a creation
// time older than ScratchMaxAge) is dropped by the next test restore; a
// recent one, possibly another replica's restore in flight, is not.
func TestTestRestorePostgresDropsScratchDatabasesLeftByKilledProcesses(t *testing.T) {
	t.Parallel()
	ctx := ctxT(t)
	db := openPostgres(t)
	seed(t, db, 10)
	var dump bytes.Buffer
	if _, err := snapshot.DumpSystem(ctx, db, &dump, nil); err != nil {
		t.Fatal(err)
	}
	suffix := testkit.RandomSuffix()
	old := fmt.Sprintf("insightops_scratch_%d_%s", time.Now().Add(-snapshot.ScratchMaxAge-time.Hour).Unix(), suffix)
	recent := fmt.Sprintf("insightops_scratch_%d_%s", time.Now().Unix(), suffix)
	// Left by the verify role's earlier restores: it owns them.
	role := testkit.PostgresCreateDBRole(t)
	rc, err := pgx.Connect(ctx, role)
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{old, recent} {
		if _, err := rc.Exec(ctx, "CREATE DATABASE "+name); err != nil {
			t.Fatal(err)
		}
	}
	rc.Close(ctx)
	t.Cleanup(func() {
		for _, name := range []string{old, recent} {
			_, _ = db.SQL.ExecContext(context.Background(), "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)")
		}
	})
	if _, err := snapshot.TestRestorePostgres(ctx, role, bytes.NewReader(dump.Bytes())); err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]int{old: 0, recent: 1} {
		var n int
		if err := db.SQL.QueryRowContext(ctx, `SELECT count(*) FROM pg_database WHERE datname = $1`, name).Scan(&n); err != nil || n != want {
			t.Errorf("database %s: count %d (%v), want %d", name, n, err, want)
		}
	}
}

// Writers keep writing while the SQLite System DB is dumped: none fails,
// and each copy is intact and holds exactly the rows it reports.
func TestDumpSQLiteUnderConcurrentWrites(t *testing.T) {
	t.Parallel()
	ctx := ctxT(t)
	db := openSQLite(t)
	seed(t, db, 20000)
	var (
		stop     = make(chan struct{})
		wg       sync.WaitGroup
		written  atomic.Int64
		errMu    sync.Mutex
		writeErr error
	)
	for w := range 4 {
		wg.Go(func() {
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				_, err := db.InsertAuditLog(ctx, audit(fmt.Sprintf("w%d-%d", w, i), time.Now()))
				if err == nil {
					_, err = db.SQL.ExecContext(ctx, `INSERT INTO queries (question) VALUES (?)`, fmt.Sprintf("w%d-%d", w, i))
				}
				if err != nil {
					errMu.Lock()
					writeErr = errors.Join(writeErr, err)
					errMu.Unlock()
					return
				}
				written.Add(1)
			}
		})
	}
	for written.Load() < 50 {
		time.Sleep(5 * time.Millisecond)
	}
	var last int64
	for i := range 3 {
		var buf bytes.Buffer
		d, err := snapshot.DumpSystem(ctx, db, &buf, nil)
		if err != nil {
			t.Fatalf("dump %d: %v", i, err)
		}
		c, err := snapshot.CheckSQLite(ctx, bytes.NewReader(buf.Bytes()), t.TempDir())
		if err != nil {
			t.Fatalf("check dump %d: %v", i, err)
		}
		for _, table := range store.TableNames() {
			if c[table] != d.Rows[table] {
				t.Fatalf("dump %d: %s has %d rows in the copy, %d reported", i, table, c[table], d.Rows[table])
			}
		}
		// Consistency across tables: every writer iteration adds one row
		// to each table, so the copy never has a half-finished one beyond 4.
		if diff := d.Rows["audit_logs"] - 5 - (d.Rows["queries"] - 20); diff < 0 || diff > 4 {
			t.Fatalf("dump %d: audit_logs %d vs queries %d", i, d.Rows["audit_logs"], d.Rows["queries"])
		}
		if d.Rows["audit_logs"] <= last {
			t.Fatalf("dump %d saw no new writes", i)
		}
		last = d.Rows["audit_logs"]
	}
	close(stop)
	wg.Wait()
	if writeErr != nil {
		t.Fatalf("writers failed during the dump: %v", writeErr)
	}
	t.Logf("%d writes during 3 dumps", written.Load())
}

// Writers and readers keep going while the SQLite System DB is restored:
// readers never fail, every audit event whose insert succeeded is in the
// restored database (none slips in between), and the result is intact.
func TestRestoreSQLiteUnderConcurrentWritesKeepsEveryAuditEvent(t *testing.T) {
	t.Parallel()
	ctx := ctxT(t)
	db := openSQLite(t)
	seed(t, db, 20000)
	var dump bytes.Buffer
	if _, err := snapshot.DumpSystem(ctx, db, &dump, nil); err != nil {
		t.Fatal(err)
	}
	mutate(t, db)
	var (
		stop    = make(chan struct{})
		wg      sync.WaitGroup
		mu      sync.Mutex
		stored  []string
		readErr error
		reads   atomic.Int64
	)
	for w := range 3 {
		wg.Add(2)
		go func() { // writer
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				id := fmt.Sprintf("live-%d-%d", w, i)
				if ok, err := db.InsertAuditLog(ctx, audit(id, time.Now())); err == nil && ok {
					mu.Lock()
					stored = append(stored, id)
					mu.Unlock()
				}
			}
		}()
		go func() { // reader
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				var n int64
				if err := db.SQL.QueryRowContext(ctx, `SELECT count(*) FROM accounting_transactions`).Scan(&n); err != nil {
					mu.Lock()
					readErr = errors.Join(readErr, err)
					mu.Unlock()
					return
				}
				reads.Add(1)
			}
		}()
	}
	for {
		mu.Lock()
		n := len(stored)
		mu.Unlock()
		if n >= 30 {
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	res, err := snapshot.RestoreSystem(ctx, db, bytes.NewReader(dump.Bytes()))
	if err != nil {
		t.Fatalf("restore: %v", err)
	}
	time.Sleep(50 * time.Millisecond) // a few writes after the restore too
	close(stop)
	wg.Wait()
	if readErr != nil {
		t.Fatalf("readers failed during the restore: %v", readErr)
	}
	if n := counts(t, db)["accounting_transactions"]; n != 20000 {
		t.Fatalf("accounting_transactions = %d after restore, want 20000", n)
	}
	events := map[string]bool{}
	for _, r := range tableRows(t, db.SQL, "audit_logs") {
		events[strings.Split(r, "|")[1]] = true
	}
	mu.Lock()
	defer mu.Unlock()
	for _, id := range stored {
		if !events[id] {
			t.Fatalf("audit event %s was stored but is gone after the restore", id)
		}
	}
	var ok string
	if err := db.SQL.QueryRowContext(ctx, "PRAGMA integrity_check").Scan(&ok); err != nil || ok != "ok" {
		t.Fatalf("integrity after restore = %q, %v", ok, err)
	}
	t.Logf("%d audit events stored by writers, %d re-inserted by the restore, %d reads", len(stored), res.AuditReinserted, reads.Load())
}

func fileSHA(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return sha(b)
}

// sqliteRows reads every row of every table of a SQLite file.
func sqliteRows(t *testing.T, path string) map[string][]string {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+path+"?mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	rows, err := db.Query(`SELECT name FROM sqlite_schema WHERE type = 'table' AND name NOT LIKE 'sqlite_%'`)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for rows.Next() {
		var n string
		_ = rows.Scan(&n)
		names = append(names, n)
	}
	rows.Close()
	out := map[string][]string{}
	for _, n := range names {
		out[n] = tableRows(t, db, n)
	}
	return out
}

func targetSetup(t *testing.T) (source, runtime string) {
	t.Helper()
	ctx := ctxT(t)
	dir := t.TempDir()
	source = filepath.Join(dir, "assets", "vanna_db.db")
	if err := os.MkdirAll(filepath.Dir(source), 0o755); err != nil {
		t.Fatal(err)
	}
	if _, err := demodb.Generate(ctx, source, demodb.DefaultSeed); err != nil {
		t.Fatal(err)
	}
	runtime = filepath.Join(dir, "data", "target", "vanna_db.db")
	if _, err := golden.Sync(ctx, source, runtime); err != nil {
		t.Fatal(err)
	}
	return source, runtime
}

// The Target DB copy (its pages read from sqlite_dbpage in one read
// transaction) is one consistent snapshot while a writer commits pairs of
// rows in WAL mode: it finishes, both tables hold the same number of rows,
// the counts reported are the copy's, and the copy stands alone.
func TestDumpTargetUnderConcurrentWrites(t *testing.T) {
	t.Parallel()
	ctx := ctxT(t)
	path := filepath.Join(t.TempDir(), "target.db")
	if _, err := snapshot.GenerateSQLite(ctx, path, 12<<20); err != nil {
		t.Fatal(err)
	}
	w, err := sql.Open("sqlite", "file:"+path+"?mode=rw&_pragma=journal_mode(WAL)&_pragma=busy_timeout(5000)")
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	w.SetMaxOpenConns(1)
	if _, err := w.ExecContext(ctx, `CREATE TABLE pair_a (n INTEGER); CREATE TABLE pair_b (n INTEGER)`); err != nil {
		t.Fatal(err)
	}
	var (
		stop    = make(chan struct{})
		done    = make(chan error, 1)
		written atomic.Int64
	)
	go func() {
		for i := 0; ; i++ {
			select {
			case <-stop:
				done <- nil
				return
			default:
			}
			_, err := w.ExecContext(ctx, `BEGIN; INSERT INTO pair_a VALUES (?); INSERT INTO pair_b VALUES (?); COMMIT`, i, i)
			if err != nil {
				done <- err
				return
			}
			written.Add(1)
		}
	}()
	for written.Load() < 20 {
		time.Sleep(5 * time.Millisecond)
	}
	var last int64 = -1
	for i := range 3 {
		var buf bytes.Buffer
		d, err := snapshot.DumpTarget(ctx, path, &buf, nil)
		if err != nil {
			t.Fatalf("dump %d: %v", i, err)
		}
		if d.Tables["pair_a"] != d.Tables["pair_b"] || d.Tables["pair_a"] <= last {
			t.Fatalf("dump %d: pair_a %d rows, pair_b %d (previous dump %d)", i, d.Tables["pair_a"], d.Tables["pair_b"], last)
		}
		last = d.Tables["pair_a"]
		c, err := snapshot.CheckSQLite(ctx, bytes.NewReader(buf.Bytes()), t.TempDir())
		if err != nil || !reflect.DeepEqual(c, d.Tables) {
			t.Fatalf("dump %d: check = %v, %v; reported %v", i, c, err, d.Tables)
		}
		for written.Load() <= last {
			time.Sleep(5 * time.Millisecond)
		}
	}
	close(stop)
	if err := <-done; err != nil {
		t.Fatalf("the writer failed during the dumps: %v", err)
	}
	t.Logf("%d pairs written during 3 dumps", written.Load())
}

func TestTargetRoundTrip(t *testing.T) {
	t.Parallel()
	ctx := ctxT(t)
	source, runtime := targetSetup(t)
	sourceSum := fileSHA(t, source)
	want := sqliteRows(t, runtime)

	var dump bytes.Buffer
	var progressed int64
	d, err := snapshot.DumpTarget(ctx, runtime, &dump, func(n int64) { progressed = n })
	if err != nil {
		t.Fatal(err)
	}
	if d.Kind != snapshot.KindSQLite || d.Bytes != int64(dump.Len()) || d.SHA256 != sha(dump.Bytes()) || progressed != d.Bytes {
		t.Fatalf("dump = %+v", d)
	}
	if len(d.Tables) != len(want) {
		t.Fatalf("dump tables = %v, want %d tables", d.Tables, len(want))
	}
	for table, rows := range want {
		if d.Tables[table] != int64(len(rows)) {
			t.Fatalf("dump rows of %s = %d, want %d", table, d.Tables[table], len(rows))
		}
	}
	if fileSHA(t, runtime) != sourceSum {
		t.Fatal("dumping changed the runtime copy")
	}
	c, err := snapshot.CheckSQLite(ctx, bytes.NewReader(dump.Bytes()), "")
	if err != nil || !reflect.DeepEqual(c, d.Tables) {
		t.Fatalf("check = %v, %v; want %v", c, err, d.Tables)
	}
	// WithoutDigest (the archive writer hashes the stream itself): the
	// same bytes and counts, no SHA-256.
	var undigested bytes.Buffer
	u, err := snapshot.DumpTarget(ctx, runtime, &undigested, nil, snapshot.WithoutDigest())
	if err != nil || u.SHA256 != "" || u.Bytes != d.Bytes || !bytes.Equal(undigested.Bytes(), dump.Bytes()) || !reflect.DeepEqual(u.Tables, d.Tables) {
		t.Fatalf("dump without digest = %+v, %v (%d bytes); want the same bytes and counts without sha256", u, err, undigested.Len())
	}

	// Damage the runtime copy and leave stale sidecars beside it.
	rw, err := sql.Open("sqlite", "file:"+runtime+"?mode=rw")
	if err != nil {
		t.Fatal(err)
	}
	for table := range want {
		if _, err := rw.Exec(`DELETE FROM "` + table + `"`); err != nil && !strings.Contains(err.Error(), "FOREIGN KEY") {
			t.Fatal(err)
		}
	}
	rw.Close()
	for _, s := range []string{"-wal", "-shm"} {
		if err := os.WriteFile(runtime+s, []byte("stale"), 0o644); err != nil {
			t.Fatal(err)
		}
	}

	res, err := snapshot.RestoreTarget(ctx, bytes.NewReader(dump.Bytes()), runtime, source)
	if err != nil {
		t.Fatal(err)
	}
	if res.SHA256 != d.SHA256 || fileSHA(t, runtime) != d.SHA256 || !reflect.DeepEqual(res.Tables, d.Tables) || res.Bytes != d.Bytes {
		t.Fatalf("restore = %+v, dump = %+v", res, d)
	}
	if got := sqliteRows(t, runtime); !reflect.DeepEqual(got, want) {
		t.Fatal("restored rows differ from the dumped ones")
	}
	for _, s := range []string{"-wal", "-shm", "-journal"} {
		if _, err := os.Stat(runtime + s); !errors.Is(err, os.ErrNotExist) {
			t.Fatalf("%s left beside the runtime copy (%v)", s, err)
		}
	}
	assertOnlyFile(t, filepath.Dir(runtime), filepath.Base(runtime))
	if fileSHA(t, source) != sourceSum {
		t.Fatal("the golden source changed")
	}
	rodb, err := golden.OpenReadOnly(ctx, runtime)
	if err != nil {
		t.Fatal(err)
	}
	rodb.Close()
}

func assertOnlyFile(t *testing.T, dir, name string) {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if e.Name() != name {
			t.Errorf("unexpected file %s in %s", e.Name(), dir)
		}
	}
}

// WithCheckedInput (the restore worker: the bytes passed integrity_check in
// its verification) restores the same file with the same counts, and still
// refuses bytes that are not a SQLite database, leaving the runtime copy.
func TestRestoreTargetWithCheckedInput(t *testing.T) {
	t.Parallel()
	ctx := ctxT(t)
	source, runtime := targetSetup(t)
	var dump bytes.Buffer
	d, err := snapshot.DumpTarget(ctx, runtime, &dump, nil)
	if err != nil {
		t.Fatal(err)
	}
	res, err := snapshot.RestoreTarget(ctx, bytes.NewReader(dump.Bytes()), runtime, source, snapshot.WithCheckedInput(d.SHA256))
	if err != nil {
		t.Fatal(err)
	}
	if res.SHA256 != d.SHA256 || fileSHA(t, runtime) != d.SHA256 || !reflect.DeepEqual(res.Tables, d.Tables) {
		t.Fatalf("restore = %+v, dump = %+v", res, d)
	}
	before := fileSHA(t, runtime)
	_, err = snapshot.RestoreTarget(ctx, strings.NewReader("not a database, not even close to one"), runtime, source, snapshot.WithCheckedInput(d.SHA256))
	if err == nil || !strings.Contains(err.Error(), "not a SQLite 3 database") {
		t.Fatalf("restore of foreign bytes: err = %v, want the missing-header error", err)
	}
	if fileSHA(t, runtime) != before {
		t.Fatal("a refused restore changed the runtime copy")
	}
	assertOnlyFile(t, filepath.Dir(runtime), filepath.Base(runtime))
}

func TestRestoreTargetRefusesTheGoldenSource(t *testing.T) {
	t.Parallel()
	ctx := ctxT(t)
	source, runtime := targetSetup(t)
	var dump bytes.Buffer
	if _, err := snapshot.DumpTarget(ctx, runtime, &dump, nil); err != nil {
		t.Fatal(err)
	}
	sum := fileSHA(t, source)
	dir := filepath.Dir(source)
	symlink := filepath.Join(t.TempDir(), "link.db")
	if err := os.Symlink(source, symlink); err != nil {
		t.Fatal(err)
	}
	hardlink := filepath.Join(dir, "hard.db")
	if err := os.Link(source, hardlink); err != nil {
		t.Fatal(err)
	}
	wd, _ := os.Getwd()
	rel, err := filepath.Rel(wd, source)
	if err != nil {
		t.Fatal(err)
	}
	for name, path := range map[string]string{
		"same path":    source,
		"dotted path":  filepath.Join(dir, "..", filepath.Base(dir), ".", filepath.Base(source)),
		"relative":     rel,
		"symlink":      symlink,
		"hard link":    hardlink,
		"symlink dir":  filepath.Join(symlinkDir(t, dir), filepath.Base(source)),
		"golden given": source,
	} {
		_, err := snapshot.RestoreTarget(ctx, bytes.NewReader(dump.Bytes()), path, source)
		if !errors.Is(err, snapshot.ErrGoldenSource) {
			t.Errorf("%s: err = %v, want ErrGoldenSource", name, err)
		}
	}
	if _, err := snapshot.RestoreTarget(ctx, bytes.NewReader(dump.Bytes()), runtime, ""); err == nil || !strings.Contains(err.Error(), "the runtime path and the golden source path are both required") {
		t.Errorf("restore without a golden source path: %v", err)
	}
	if fileSHA(t, source) != sum {
		t.Fatal("the golden source changed")
	}
	_ = os.Remove(hardlink)
	assertOnlyFile(t, dir, filepath.Base(source))
}

func symlinkDir(t *testing.T, dir string) string {
	t.Helper()
	l := filepath.Join(t.TempDir(), "dirlink")
	if err := os.Symlink(dir, l); err != nil {
		t.Fatal(err)
	}
	return l
}

func TestRestoreTargetRejectsBadInputAndKeepsTheRuntimeCopy(t *testing.T) {
	t.Parallel()
	ctx := ctxT(t)
	source, runtime := targetSetup(t)
	var dump bytes.Buffer
	if _, err := snapshot.DumpTarget(ctx, runtime, &dump, nil); err != nil {
		t.Fatal(err)
	}
	sum := fileSHA(t, runtime)
	corrupt := bytes.Clone(dump.Bytes())
	for i := 4096 + 100; i < len(corrupt); i += 4096 {
		corrupt[i] ^= 0xff // damage every page but the first
	}
	for name, tc := range map[string]struct {
		in   []byte
		want string
	}{
		"empty":     {nil, "not a SQLite 3 database"},
		"garbage":   {[]byte("not sqlite"), "not a SQLite 3 database"},
		"truncated": {dump.Bytes()[:dump.Len()/2], "verify the restored copy (runtime copy untouched)"},
		"corrupt":   {corrupt, "integrity_check failed"},
	} {
		if _, err := snapshot.RestoreTarget(ctx, bytes.NewReader(tc.in), runtime, source); err == nil {
			t.Errorf("%s: restore succeeded", name)
		} else if !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "runtime copy untouched") {
			t.Errorf("%s: restore refused with %v, want it to say %q and that the runtime copy is untouched", name, err, tc.want)
		}
		if fileSHA(t, runtime) != sum {
			t.Fatalf("%s: runtime copy changed", name)
		}
		assertOnlyFile(t, filepath.Dir(runtime), filepath.Base(runtime))
	}
}

func TestCheckCounts(t *testing.T) {
	t.Parallel()
	r := snapshot.RestoreResult{Rows: snapshot.Counts{"users": 3, "audit_logs": 10}}
	if err := r.CheckCounts(snapshot.Counts{"users": 3, "audit_logs": 8}); err != nil {
		t.Errorf("more audit rows than the manifest: %v", err)
	}
	for _, tc := range []struct {
		want snapshot.Counts
		says string
	}{
		{snapshot.Counts{"users": 4}, "users: 3 rows, want 4"},
		{snapshot.Counts{"audit_logs": 11}, "audit_logs: 10 rows, want at least 11"},
		{snapshot.Counts{"queries": 0}, "queries: missing after restore"},
	} {
		if err := r.CheckCounts(tc.want); err == nil || !strings.Contains(err.Error(), tc.says) {
			t.Errorf("CheckCounts(%v) = %v, want it to say %q", tc.want, err, tc.says)
		}
	}
}

func TestGenerateSQLite(t *testing.T) {
	t.Parallel()
	ctx := ctxT(t)
	path := filepath.Join(t.TempDir(), "big.db")
	g, err := snapshot.GenerateSQLite(ctx, path, 8<<20)
	if err != nil {
		t.Fatal(err)
	}
	if g.Bytes < 8<<20 || g.Bytes > 24<<20 {
		t.Fatalf("generated %+v", g)
	}
	var buf bytes.Buffer
	d, err := snapshot.DumpTarget(ctx, path, &buf, nil)
	if err != nil {
		t.Fatal(err)
	}
	if d.Tables["entries"]+d.Tables["accounts"] != g.Rows {
		t.Fatalf("dump %v, generated %+v", d.Tables, g)
	}
	if _, err := snapshot.GenerateSQLite(ctx, path, 1); err == nil || !strings.Contains(err.Error(), "already exists") {
		t.Fatalf("generate over an existing file: %v, want the already-exists refusal", err)
	}
}

// BenchmarkDumpSQLite dumps a generated database of SNAPSHOT_BENCH_MB
// (default 256) MiB, discarding the output.
func BenchmarkDumpSQLite(b *testing.B) {
	mb := int64(256)
	if v := os.Getenv("SNAPSHOT_BENCH_MB"); v != "" {
		fmt.Sscan(v, &mb)
	}
	ctx := context.Background()
	path := filepath.Join(b.TempDir(), "bench.db")
	g, err := snapshot.GenerateSQLite(ctx, path, mb<<20)
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(g.Bytes)
	b.ResetTimer()
	for b.Loop() {
		if _, err := snapshot.DumpTarget(ctx, path, discard{}, nil); err != nil {
			b.Fatal(err)
		}
	}
}

type discard struct{}

func (discard) Write(p []byte) (int, error) { return len(p), nil }
