// Command backupbench measures backup.create against the standard tools, in
// the same run on the same generated data:
//
//   - SQLite target copy of -size bytes (snapshot.GenerateSQLite): the
//     backup (VACUUM INTO, tar, gzip/zstd, local store) against
//     `sqlite3 db ".backup copy"` then `gzip copy` (target: ratio ≤ 1);
//   - PostgreSQL System DB of -size bytes (a generated ledger table beside
//     the migrated System DB tables): the backup (pg_dump -Fc --compress=0
//     streamed into the archive) against `pg_dump -Fc -f file` (target:
//     overhead under 15%);
//   - the peak RSS of the backup process, which runs as a child process
//     doing exactly what the worker does (target: under 100 MB, whatever
//     the database size; pg_dump is a process of its own).
//
// Each measurement is the best of -rounds. -pg "" skips PostgreSQL. Every
// archive the backup wrote is verified (backupfmt.Verify with the default
// checkers, its stored SHA-256, the component's file in it) outside the
// timing, and the command exits 1 when an archive does not verify or a
// target is missed (-max-sqlite-ratio, -max-pg-overhead, -max-rss).
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/insightops/insightops/shared/app"
	"github.com/insightops/insightops/shared/archiver"
	"github.com/insightops/insightops/shared/backupfmt"
	"github.com/insightops/insightops/shared/backupstore"
	"github.com/insightops/insightops/shared/config"
	"github.com/insightops/insightops/shared/jobs"
	"github.com/insightops/insightops/shared/jobspec"
	"github.com/insightops/insightops/shared/snapshot"
	"github.com/insightops/insightops/shared/store"
	"github.com/insightops/insightops/shared/testkit"
)

func main() {
	size := flag.Int64("size", 1<<30, "size of each generated database, in bytes")
	dir := flag.String("dir", "", "work directory (default: a new temp dir, removed at the end); needs about 4× -size free")
	pgBase := flag.String("pg", testkit.PostgresBaseURL(), "PostgreSQL maintenance URL to create the scratch database in; empty skips PostgreSQL")
	comp := flag.String("compression", "gzip", "BACKUP_COMPRESSION of the backup: gzip|zstd")
	rounds := flag.Int("rounds", 1, "rounds; the best time of each side is reported")
	var tg targets
	flag.Float64Var(&tg.sqliteRatio, "max-sqlite-ratio", 1.0, "exit 1 when backup time / (sqlite3 .backup + gzip) time is above this")
	flag.Float64Var(&tg.pgOverhead, "max-pg-overhead", 0.15, "exit 1 when the backup takes this fraction longer than pg_dump -Fc or more")
	flag.Int64Var(&tg.rss, "max-rss", 100_000_000, "exit 1 when the backup process's peak RSS reaches this many bytes")
	child := flag.String("child", "", "internal: run one backup of this component (system|target) and print its result")
	target := flag.String("target", "", "internal: target DB path for -child")
	dbURL := flag.String("database-url", "", "internal: System DB URL for -child")
	flag.Parse()
	var err error
	if *child != "" {
		err = runChild(*child, *dir, *target, *dbURL, *comp)
	} else {
		err = run(*size, *dir, *pgBase, *comp, *rounds, tg)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "backupbench:", err)
		os.Exit(1)
	}
}

// targets are the limits a run must stay within.
type targets struct {
	sqliteRatio float64 // backup / (sqlite3 .backup + gzip), at most
	pgOverhead  float64 // backup / pg_dump - 1, below
	rss         int64   // peak RSS of the backup process, below
}

// childResult is what a child prints.
type childResult struct {
	Archive string  `json:"archive"`
	Bytes   int64   `json:"bytes"`
	Seconds float64 `json:"seconds"`
}

// measured is one timed side of a comparison.
type measured struct {
	seconds float64
	bytes   int64
	maxRSS  int64
}

func runChild(component, dir, target, dbURL, comp string) error {
	ctx := context.Background()
	vars := map[string]string{
		"DATA_DIR": dir, "BACKUP_DIR": filepath.Join(dir, "backups"), "BACKUP_COMPRESSION": comp,
		"TARGET_DB_PATH": target, "DATABASE_URL": dbURL,
	}
	cfg, err := config.Load(func(k string) string { return vars[k] })
	if err != nil {
		return err
	}
	deps := app.Deps{Config: cfg, Log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	if component == "system" {
		db, err := store.Open(ctx, dbURL, cfg.SQLitePath())
		if err != nil {
			return err
		}
		defer db.Close()
		deps.DB = db
	}
	start := time.Now()
	res, err := archiver.Create(ctx, deps, jobspec.BackupCreateArgs{Components: []string{component}}, archiver.Run{JobID: jobs.NewID(), SkipLocks: true})
	if err != nil {
		return err
	}
	return json.NewEncoder(os.Stdout).Encode(childResult{Archive: res.Archive, Bytes: res.Bytes, Seconds: time.Since(start).Seconds()})
}

// backup runs one backup in a child process and returns its time, size and peak RSS.
func backup(dir, component, target, dbURL, comp string) (measured, error) {
	self, err := os.Executable()
	if err != nil {
		return measured{}, err
	}
	cdir, err := os.MkdirTemp(dir, "child-*")
	if err != nil {
		return measured{}, err
	}
	defer os.RemoveAll(cdir)
	cmd := exec.Command(self, "-child", component, "-dir", cdir, "-target", target, "-database-url", dbURL, "-compression", comp)
	var out, errb strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		return measured{}, fmt.Errorf("backup of %s: %w: %s", component, err, errb.String())
	}
	var res childResult
	if err := json.Unmarshal([]byte(out.String()), &res); err != nil {
		return measured{}, fmt.Errorf("backup of %s printed %q: %w", component, out.String(), err)
	}
	var rss int64
	if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
		rss = ru.Maxrss * 1024
	}
	if err := verifyArchive(context.Background(), filepath.Join(cdir, "backups"), res.Archive, component); err != nil {
		return measured{}, err
	}
	return measured{seconds: res.Seconds, bytes: res.Bytes, maxRSS: rss}, nil
}

// verifyArchive reads the archive a child wrote back from its local store
// and checks it: backupfmt.Verify with the default checkers (SQLite
// integrity, pg_dump TOC) finds no problem, its SHA-256 is the one stored
// with it, and it holds a non-empty file of the component.
func verifyArchive(ctx context.Context, dir, name, component string) error {
	st, err := backupstore.NewLocal(dir)
	if err != nil {
		return fmt.Errorf("open the backup's store: %w", err)
	}
	rc, info, err := st.Open(ctx, name)
	if err != nil {
		return fmt.Errorf("open archive %s: %w", name, err)
	}
	defer rc.Close()
	rep, err := backupfmt.Verify(ctx, rc, backupfmt.VerifyOptions{ReadOptions: backupfmt.ReadOptions{Name: name}})
	switch {
	case err != nil:
		return fmt.Errorf("archive %s does not verify: %w", name, err)
	case !rep.OK():
		return fmt.Errorf("archive %s: problems %v", name, rep.Problems)
	case info.SHA256 == "" || rep.ArchiveSHA256 != info.SHA256:
		return fmt.Errorf("archive %s: content SHA-256 %s, stored %q", name, rep.ArchiveSHA256, info.SHA256)
	}
	for _, f := range rep.Files {
		if strings.HasPrefix(f.Path, component+"/") && f.Size > 0 {
			return nil
		}
	}
	return fmt.Errorf("archive %s holds no %s file: %+v", name, component, rep.Files)
}

// timed runs shell commands one after the other and returns their total time.
func timed(cmds ...[]string) (float64, error) {
	start := time.Now()
	for _, c := range cmds {
		cmd := exec.Command(c[0], c[1:]...)
		var errb strings.Builder
		cmd.Stderr = &errb
		if err := cmd.Run(); err != nil {
			return 0, fmt.Errorf("%s: %w: %s", strings.Join(c, " "), err, errb.String())
		}
	}
	return time.Since(start).Seconds(), nil
}

func fileSize(p string) int64 {
	st, err := os.Stat(p)
	if err != nil {
		return 0
	}
	return st.Size()
}

func best(a, b measured) measured {
	if a.seconds == 0 || (b.seconds > 0 && b.seconds < a.seconds) {
		b.maxRSS = max(a.maxRSS, b.maxRSS)
		return b
	}
	a.maxRSS = max(a.maxRSS, b.maxRSS)
	return a
}

func mb(n int64) string { return fmt.Sprintf("%.1f MB", float64(n)/1e6) }

func run(size int64, dir, pgBase, comp string, rounds int, tg targets) error {
	var missed []string
	check := func(ok bool, format string, args ...any) {
		if !ok {
			missed = append(missed, fmt.Sprintf(format, args...))
		}
	}
	if err := measure(size, dir, pgBase, comp, rounds, tg, check); err != nil {
		return err
	}
	if len(missed) > 0 {
		return fmt.Errorf("target missed: %s", strings.Join(missed, "; "))
	}
	fmt.Println("backupbench: every archive verified, every target met")
	return nil
}

// measure generates the databases, times both sides of each comparison,
// verifies every archive, and reports each figure against its target to
// check.
func measure(size int64, dir, pgBase, comp string, rounds int, tg targets, check func(ok bool, format string, args ...any)) error {
	ctx := context.Background()
	if dir == "" {
		d, err := os.MkdirTemp("", "backupbench-*")
		if err != nil {
			return err
		}
		defer os.RemoveAll(d)
		dir = d
	}
	rounds = max(rounds, 1)
	fmt.Printf("backupbench: %s databases, compression %s, best of %d round(s), work dir %s\n", mb(size), comp, rounds, dir)

	// SQLite target copy.
	target := filepath.Join(dir, "target.db")
	start := time.Now()
	g, err := snapshot.GenerateSQLite(ctx, target, size)
	if err != nil {
		return err
	}
	fmt.Printf("sqlite: generated %s (%d rows) in %.1fs\n", mb(g.Bytes), g.Rows, time.Since(start).Seconds())
	var base, ours measured
	for range rounds {
		copyPath := filepath.Join(dir, "baseline.db")
		secs, err := timed([]string{"sqlite3", target, ".backup '" + copyPath + "'"}, []string{"gzip", "-f", copyPath})
		if err != nil {
			return err
		}
		base = best(base, measured{seconds: secs, bytes: fileSize(copyPath + ".gz")})
		_ = os.Remove(copyPath + ".gz")
		m, err := backup(dir, "target", target, "", comp)
		if err != nil {
			return err
		}
		ours = best(ours, m)
	}
	fmt.Printf("sqlite target:  sqlite3 .backup + gzip %6.2fs %s | backup %6.2fs %s | ratio %.2f (target ≤ %.2f) | backup peak RSS %s (target < %s)\n",
		base.seconds, mb(base.bytes), ours.seconds, mb(ours.bytes), ours.seconds/base.seconds, tg.sqliteRatio, mb(ours.maxRSS), mb(tg.rss))
	check(ours.seconds/base.seconds <= tg.sqliteRatio, "sqlite ratio %.2f above %.2f", ours.seconds/base.seconds, tg.sqliteRatio)
	check(ours.maxRSS < tg.rss, "sqlite backup peak RSS %s, limit %s", mb(ours.maxRSS), mb(tg.rss))
	_ = os.Remove(target)

	if pgBase == "" {
		fmt.Println("postgresql: skipped (-pg is empty)")
		return nil
	}
	dbURL, drop, err := pgDatabase(ctx, pgBase)
	if err != nil {
		return fmt.Errorf("postgresql: %w", err)
	}
	defer drop()
	start = time.Now()
	dbBytes, err := fillPostgres(ctx, dbURL, size)
	if err != nil {
		return err
	}
	fmt.Printf("postgresql: generated %s in %.1fs\n", mb(dbBytes), time.Since(start).Seconds())
	base, ours = measured{}, measured{}
	for range rounds {
		dump := filepath.Join(dir, "baseline.dump")
		secs, err := timed([]string{"pg_dump", "-Fc", "-f", dump, "--dbname=" + dbURL})
		if err != nil {
			return err
		}
		base = best(base, measured{seconds: secs, bytes: fileSize(dump)})
		_ = os.Remove(dump)
		m, err := backup(dir, "system", "", dbURL, comp)
		if err != nil {
			return err
		}
		ours = best(ours, m)
	}
	overhead := ours.seconds/base.seconds - 1
	fmt.Printf("postgresql:     pg_dump -Fc to a file   %6.2fs %s | backup %6.2fs %s | overhead %+.1f%% (target < %.0f%%) | backup peak RSS %s (target < %s)\n",
		base.seconds, mb(base.bytes), ours.seconds, mb(ours.bytes), overhead*100, tg.pgOverhead*100, mb(ours.maxRSS), mb(tg.rss))
	check(overhead < tg.pgOverhead, "postgresql overhead %+.1f%%, limit %.0f%%", overhead*100, tg.pgOverhead*100)
	check(ours.maxRSS < tg.rss, "postgresql backup peak RSS %s, limit %s", mb(ours.maxRSS), mb(tg.rss))
	return nil
}

// pgDatabase creates a scratch database with the System DB schema.
func pgDatabase(ctx context.Context, base string) (string, func(), error) {
	conn, err := pgx.Connect(ctx, base)
	if err != nil {
		return "", nil, err
	}
	name := "insightops_backupbench_" + testkit.RandomSuffix()
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+name); err != nil {
		conn.Close(ctx)
		return "", nil, err
	}
	conn.Close(ctx)
	cfg, err := pgx.ParseConfig(base)
	if err != nil {
		return "", nil, err
	}
	u := strings.Replace(base, "/"+cfg.Database, "/"+name, 1)
	drop := func() {
		c, err := pgx.Connect(context.Background(), base)
		if err != nil {
			return
		}
		defer c.Close(context.Background())
		_, _ = c.Exec(context.Background(), "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)")
	}
	db, err := store.Open(ctx, u, "")
	if err != nil {
		drop()
		return "", nil, err
	}
	defer db.Close()
	if _, err := db.Migrate(ctx); err != nil {
		drop()
		return "", nil, err
	}
	return u, drop, nil
}

// fillPostgres adds a ledger table of about size bytes (text that
// compresses about as well as real data) and returns the database size.
func fillPostgres(ctx context.Context, dbURL string, size int64) (int64, error) {
	conn, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		return 0, err
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, `CREATE TABLE bench_ledger (
		id bigint PRIMARY KEY, at timestamptz NOT NULL, account text NOT NULL,
		amount_cents bigint NOT NULL, description text NOT NULL, reference text NOT NULL)`); err != nil {
		return 0, err
	}
	const batch = 500_000
	var next, dbSize int64 = 1, 0
	for {
		if err := conn.QueryRow(ctx, "SELECT pg_database_size(current_database())").Scan(&dbSize); err != nil {
			return 0, err
		}
		if dbSize >= size {
			return dbSize, nil
		}
		_, err := conn.Exec(ctx, `INSERT INTO bench_ledger
			SELECT g, timestamptz '2020-01-01' + g * interval '37 seconds', 'ACC-' || (1000 + (g * 7919) % 200),
			       (g * 104729) % 2000000 - 1000000,
			       'Invoice INV-' || lpad(g::text, 8, '0') || ' for customer ' || (g * 31) % 5000 ||
			         ' - monthly services, support and licences ' || substr(md5(g::text), 1, 24),
			       substr(md5((g * 7)::text), 1, 16)
			FROM generate_series($1::bigint, $2::bigint) g`, next, next+batch-1)
		if err != nil {
			return 0, errors.Join(errors.New("fill bench_ledger"), err)
		}
		next += batch
	}
}
