package snapshot

import (
	"context"
	"database/sql"
	"path/filepath"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// restoreSQLiteLive relies on a backup step of zero pages taking the
// destination's write lock (so no event can be stored between reading the
// live audit rows and the copy) while WAL readers keep reading.
func TestBackupStepZeroLocksTheDestination(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	dir := t.TempDir()
	dst, src := filepath.Join(dir, "dst.db"), filepath.Join(dir, "src.db")
	for _, p := range []string{dst, src} {
		db, err := sql.Open("sqlite", fileURI(p, "_pragma=journal_mode(WAL)"))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := db.Exec(`CREATE TABLE t (x INTEGER); INSERT INTO t VALUES (1)`); err != nil {
			t.Fatal(err)
		}
		db.Close()
	}
	live, err := sql.Open("sqlite", fileURI(dst, "_pragma=busy_timeout(0)"))
	if err != nil {
		t.Fatal(err)
	}
	defer live.Close()
	live.SetMaxOpenConns(4)
	conn, err := live.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	err = conn.Raw(func(dc any) error {
		bk, err := dc.(sqliteRestorer).NewRestore(fileURI(src, "mode=ro"))
		if err != nil {
			return err
		}
		defer bk.Finish()
		if _, err := bk.Step(0); err != nil {
			return err
		}
		if _, err := live.ExecContext(ctx, `INSERT INTO t VALUES (2)`); err == nil || !isBusy(err) {
			t.Errorf("write after a zero-page step: %v, want SQLITE_BUSY", err)
		}
		var n int
		if err := live.QueryRowContext(ctx, `SELECT count(*) FROM t`).Scan(&n); err != nil || n != 1 {
			t.Errorf("read after a zero-page step: %d, %v", n, err)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestPgConnKeepsLibpqSettingsAndDropsThePassword(t *testing.T) {
	t.Parallel()
	for _, cs := range []string{
		"postgres://app:pa%40ss@db.example.com:6432/insight?sslmode=require&connect_timeout=7&pool_max_conns=5&search_path=x&application_name=io",
		"host=db.example.com port=6432 user=app password='pa@ss' dbname=insight sslmode=require connect_timeout=7 search_path=x application_name='io'",
	} {
		cfg, err := pgxParse(cs)
		if err != nil {
			t.Fatalf("%s: %v", cs, err)
		}
		pc := pgConnFromConfig(cfg)
		want := "postgresql:///insight?application_name=io&connect_timeout=7&host=db.example.com&port=6432&sslmode=require&user=app"
		if pc.url != want || pc.password != "pa@ss" {
			t.Errorf("%s:\n got %s (password %q)\nwant %s", cs, pc.url, pc.password, want)
		}
		env := pc.env()
		if env[len(env)-1] != "PGPASSWORD=pa@ss" {
			t.Errorf("env ends with %q", env[len(env)-1])
		}
		if got := pc.redact("failed for pa@ss and pa%40ss"); got != "failed for xxxxx and xxxxx" {
			t.Errorf("redact = %q", got)
		}
	}
}

func TestParseTOC(t *testing.T) {
	t.Parallel()
	out := []byte(`;
; Archive created at 2026-01-01 00:00:00 UTC
;
215; 1259 16386 TABLE public users postgres
3350; 0 16386 TABLE DATA public users postgres
3351; 0 16390 TABLE DATA public audit_logs postgres
3200; 2606 16400 CONSTRAINT public users users_pkey postgres
`)
	n, data := parseTOC(out)
	if n != 4 || len(data) != 2 || data[0] != "audit_logs" || data[1] != "users" {
		t.Fatalf("parseTOC = %d, %v", n, data)
	}
}

func pgxParse(cs string) (*pgx.ConnConfig, error) { return pgx.ParseConfig(cs) }
