// Command backupbench measures backup.create and the restore against the
// standard tools, in the same run on the same generated data:
//
//   - SQLite target copy of -size bytes (snapshot.GenerateSQLite): the
//     backup (the pages from sqlite_dbpage in one read transaction, tar,
//     gzip/zstd, -age, -store) against
//     `sqlite3 db ".backup copy"` then `gzip copy`, or `zstd -3 -T2 copy`
//     with -compression zstd (target: ratio ≤ 1, -max-sqlite-ratio), at
//     the workers' default compression level (BACKUP_COMPRESSION_LEVEL
//     unset; the variable is passed to the children) and with an archive at most 2% larger than the baseline's
//     compressed file (-max-sqlite-size-ratio);
//   - restoring that archive's Target DB (the restore worker's apply step
//     on the archive archiver.OpenAuthentic opened, as the worker does:
//     read back from the store into a private copy, signature checked,
//     decrypted under -age; that opening is timed apart, "open before
//     it"; then backupfmt.Walk with the verified manifest as Expect, then
//     snapshot.RestoreTarget, which fsyncs, counts rows and renames into
//     place; integrity_check ran in the verification, as in the worker) against `gzip -d`/`zstd -d` of the baseline's
//     file then `mv` into place (target: ratio ≤ 1.2,
//     -max-sqlite-restore-ratio);
//   - PostgreSQL System DB of -size bytes (a generated ledger table beside
//     the migrated System DB tables): the backup (pg_dump -Fc --compress=0
//     streamed into the archive) against `pg_dump -Fc -f file` (target:
//     overhead under 15%, -max-pg-overhead); and its restore (opened as
//     above, then the apply step: Walk with Expect,
//     snapshot.RestoreSystem, which pipes the dump
//     into pg_restore --single-transaction keeping audit_logs, then the
//     schema migration) against `pg_restore --clean --if-exists
//     --single-transaction` of the baseline's dump over the same database
//     (target: ratio ≤ 1.15, -max-pg-restore-ratio);
//   - the peak RSS of each backup and each restore, which run in child
//     processes doing exactly what the workers do (their rusage maxrss;
//     target: under 100 MB whatever the database size, -max-rss; pg_dump
//     and pg_restore are processes of their own).
//
// The restore worker verifies an archive before its apply step; that
// verification is run on every archive and its time printed, outside
// the ratios: opened as backup.verify opens it (archiver.OpenAuthentic:
// read back from the store, signature, decryption under -age), then
// backupfmt.Verify with the default checkers (the workers' pg_dump
// checker would refuse the generated table, see bench.verify), the
// opened copy's SHA-256 and the signed manifest.
//
// -store s3 (default local, BACKUP_DIR in the work dir) writes the
// archives to a real S3 server and reads them back from it: versitygw's
// posix gateway (testkit.StartS3; `make s3-tools` builds it, or
// $VERSITYGW) with its buckets in the work dir, and a new bucket; the
// children get BACKUP_STORE=s3 with its BACKUP_S3_* and AWS_* settings.
// -age encrypts every archive to a fresh age X25519 key: the backup
// child gets BACKUP_AGE_RECIPIENTS, the verification and the restore
// child BACKUP_AGE_IDENTITY_FILE (written mode 0600 in the work dir).
// Every child also gets a BACKUP_SIGNING_KEY made for the run. The
// targets are the same in every mode.
//
// Each measurement is the best of -rounds. -pg "" skips PostgreSQL. Every
// archive the backup wrote is verified (the component's file must be in
// it too), and the command exits 1 when an archive does not verify or a
// target is missed.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/pprof"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/insightops/insightops/shared/app"
	"github.com/insightops/insightops/shared/archiver"
	"github.com/insightops/insightops/shared/backupfmt"
	"github.com/insightops/insightops/shared/jobs"
	"github.com/insightops/insightops/shared/jobspec"
	"github.com/insightops/insightops/shared/snapshot"
	"github.com/insightops/insightops/shared/store"
	"github.com/insightops/insightops/shared/testkit"
)

func main() {
	var o runOptions
	flag.Int64Var(&o.size, "size", 1<<30, "size of each generated database, in bytes")
	dir := flag.String("dir", "", "work directory (default: a new temp dir, removed at the end); needs about 4× -size free")
	flag.StringVar(&o.pgBase, "pg", testkit.PostgresBaseURL(), "PostgreSQL maintenance URL to create the scratch database in; empty skips PostgreSQL")
	comp := flag.String("compression", "gzip", "BACKUP_COMPRESSION of the backup: gzip|zstd")
	flag.IntVar(&o.rounds, "rounds", 1, "rounds; the best time of each side is reported")
	flag.IntVar(&o.level, "level", 0, "BACKUP_COMPRESSION_LEVEL of the backups; 0 leaves it unset: the workers' default level")
	flag.StringVar(&o.storeKind, "store", "local", "backup store the archives are written to and read back from: local (BACKUP_DIR in the work dir) | s3 (BACKUP_STORE=s3 on a versitygw S3 server started in the work dir; `make s3-tools` builds it)")
	flag.BoolVar(&o.encrypt, "age", false, "encrypt every archive to a fresh age X25519 key (BACKUP_AGE_RECIPIENTS); the verification and the restores decrypt it with its identity file (BACKUP_AGE_IDENTITY_FILE)")
	var tg targets
	flag.Float64Var(&tg.sqliteRatio, "max-sqlite-ratio", 1.0, "exit 1 when backup time / (sqlite3 .backup + gzip) time is above this")
	flag.Float64Var(&tg.sqliteSizeRatio, "max-sqlite-size-ratio", 1.02, "exit 1 when the SQLite archive's size / the baseline's compressed file's size is above this (the backup's speed is not bought with a larger archive)")
	flag.Float64Var(&tg.pgOverhead, "max-pg-overhead", 0.15, "exit 1 when the backup takes this fraction longer than pg_dump -Fc or more")
	flag.Float64Var(&tg.sqliteRestoreRatio, "max-sqlite-restore-ratio", 1.2, "exit 1 when Target DB restore time / (zstd -d or gzip -d + mv) time is above this")
	flag.Float64Var(&tg.pgRestoreRatio, "max-pg-restore-ratio", 1.15, "exit 1 when System DB restore time / pg_restore time is above this")
	flag.Int64Var(&tg.rss, "max-rss", 100_000_000, "exit 1 when the backup or restore process's peak RSS reaches this many bytes")
	child := flag.String("child", "", "internal: run one backup of this component (system|target), or one restore (restore-system|restore-target), and print its result")
	target := flag.String("target", "", "internal: target DB path for -child")
	dbURL := flag.String("database-url", "", "internal: System DB URL for -child")
	archive := flag.String("archive", "", "internal: archive name (in the store the environment names) for a restore -child")
	manifest := flag.String("manifest", "", "internal: verified manifest (JSON) of -archive for a restore -child")
	flag.StringVar(&cpuProfileDir, "cpuprofile", "", "write a CPU profile of each backup and restore child into this directory (<child>-<n>.pprof), for go tool pprof")
	flag.Parse()
	err := func() error {
		if *child != "" && cpuProfileDir != "" {
			stop, err := startCPUProfile(cpuProfileDir, *child)
			if err != nil {
				return err
			}
			defer stop()
		}
		switch {
		case strings.HasPrefix(*child, "restore-"):
			return runRestoreChild(strings.TrimPrefix(*child, "restore-"), *dir, *archive, *manifest, *target, *dbURL)
		case *child != "":
			return runChild(*child, *dir, *target, *dbURL, *comp)
		default:
			o.dir, o.comp = *dir, *comp
			return run(o, tg)
		}
	}()
	if err != nil {
		fmt.Fprintln(os.Stderr, "backupbench:", err)
		os.Exit(1)
	}
}

// cpuProfileDir is -cpuprofile: where children write their CPU profiles
// ("" writes none). The parent passes it on to every child it starts.
var cpuProfileDir string

// startCPUProfile starts a CPU profile of this child in dir, named after
// the child and a sequence number, and returns the function that ends it.
func startCPUProfile(dir, child string) (func(), error) {
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, fmt.Errorf("cpu profile: %w", err)
	}
	f, err := os.CreateTemp(dir, child+"-*.pprof")
	if err != nil {
		return nil, fmt.Errorf("cpu profile: %w", err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		_ = f.Close()
		return nil, fmt.Errorf("cpu profile: %w", err)
	}
	return func() {
		pprof.StopCPUProfile()
		_ = f.Close()
	}, nil
}

// targets are the limits a run must stay within.
type targets struct {
	sqliteRatio        float64 // backup / (sqlite3 .backup + gzip|zstd), at most
	sqliteSizeRatio    float64 // archive bytes / the baseline's compressed file's, at most
	pgOverhead         float64 // backup / pg_dump - 1, below
	sqliteRestoreRatio float64 // restore / (gzip|zstd -d + mv), at most
	pgRestoreRatio     float64 // restore / pg_restore, at most
	rss                int64   // peak RSS of the backup or restore process, below
}

// childResult is what a child prints.
type childResult struct {
	Archive string  `json:"archive"`
	Bytes   int64   `json:"bytes"`
	Seconds float64 `json:"seconds"`
	// OpenSeconds is a restore's time to open the archive before its
	// apply step (archiver.OpenAuthentic: read from the store, signature,
	// decryption).
	OpenSeconds float64 `json:"open_seconds,omitempty"`
}

// measured is one timed side of a comparison.
type measured struct {
	seconds float64
	bytes   int64
	maxRSS  int64
	open    float64 // a restore's OpenSeconds
}

// runChild makes one archive of component with archiver.Create, in the
// store and with the keys the environment names (passed).
func runChild(component, dir, target, dbURL, comp string) error {
	ctx := context.Background()
	cfg, err := loadChildConfig(dir, map[string]string{"BACKUP_COMPRESSION": comp, "TARGET_DB_PATH": target, "DATABASE_URL": dbURL})
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

// archived is an archive a child wrote, kept for the restore measurement.
type archived struct {
	name     string // the archive, in the run's store
	manifest string // its verified manifest, as JSON
}

// remove deletes the archive from the store and its manifest file.
func (b *bench) remove(a archived) {
	if a.manifest != "" {
		_ = os.Remove(a.manifest)
	}
	if err := b.store.Delete(context.Background(), a.name); err != nil {
		fmt.Fprintf(os.Stderr, "backupbench: delete %s: %v\n", a.name, err)
	}
}

// backup runs one backup in a child process and returns its time, size and
// peak RSS, and the archive, verified (the verification is not timed).
func (b *bench) backup(component, target, dbURL string) (measured, archived, error) {
	cdir, err := os.MkdirTemp(b.dir, "child-*")
	if err != nil {
		return measured{}, archived{}, err
	}
	defer os.RemoveAll(cdir) // its DATA_DIR; the archive is in the store
	var res childResult
	m, err := runSelf(&res, b.env(true), "-child", component, "-dir", cdir, "-target", target, "-database-url", dbURL, "-compression", b.comp)
	if err != nil {
		return measured{}, archived{}, fmt.Errorf("backup of %s: %w", component, err)
	}
	a := archived{name: res.Archive}
	start := time.Now()
	man, err := b.verify(context.Background(), res.Archive, component)
	if err != nil {
		b.remove(a)
		return measured{}, archived{}, err
	}
	fmt.Printf("  %s archive %s verified (read back from the store and opened as backup.verify does: signature, decryption under -age; backupfmt.Verify with the default checkers; not timed) in %.2fs\n", component, res.Archive, time.Since(start).Seconds())
	a.manifest = filepath.Join(b.dir, res.Archive+".manifest.json")
	raw, err := json.Marshal(man)
	if err == nil {
		err = os.WriteFile(a.manifest, raw, 0o600)
	}
	if err != nil {
		b.remove(a)
		return measured{}, archived{}, err
	}
	return m, a, nil
}

// runSelf runs this command as a child with args and the passed settings
// of env, decodes the JSON it prints into res, and returns the time it
// reports and its peak RSS.
func runSelf(res *childResult, env map[string]string, args ...string) (measured, error) {
	self, err := os.Executable()
	if err != nil {
		return measured{}, err
	}
	if cpuProfileDir != "" {
		args = append(args, "-cpuprofile", cpuProfileDir)
	}
	cmd := exec.Command(self, args...)
	cmd.Env = childArgs(env)
	var out, errb strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		return measured{}, fmt.Errorf("%w: %s", err, errb.String())
	}
	if err := json.Unmarshal([]byte(out.String()), res); err != nil {
		return measured{}, fmt.Errorf("child printed %q: %w", out.String(), err)
	}
	var rss int64
	if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
		rss = ru.Maxrss * 1024
	}
	return measured{seconds: res.Seconds, bytes: res.Bytes, maxRSS: rss, open: res.OpenSeconds}, nil
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

// runOptions are the flags of a measuring run.
type runOptions struct {
	size      int64  // of each generated database
	dir       string // work directory; "" makes a temporary one
	pgBase    string // PostgreSQL maintenance URL; "" skips PostgreSQL
	comp      string // BACKUP_COMPRESSION
	level     int    // BACKUP_COMPRESSION_LEVEL; 0: unset
	storeKind string // local | s3
	encrypt   bool   // age-encrypt every archive
	rounds    int
}

func run(o runOptions, tg targets) error {
	var missed []string
	check := func(ok bool, format string, args ...any) {
		if !ok {
			missed = append(missed, fmt.Sprintf(format, args...))
		}
	}
	if err := measure(o, tg, check); err != nil {
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
func measure(o runOptions, tg targets, check func(ok bool, format string, args ...any)) error {
	ctx := context.Background()
	size, dir, pgBase, comp, rounds := o.size, o.dir, o.pgBase, o.comp, max(o.rounds, 1)
	if dir == "" {
		d, err := os.MkdirTemp("", "backupbench-*")
		if err != nil {
			return err
		}
		defer os.RemoveAll(d)
		dir = d
	}
	b, stop, err := newBench(ctx, dir, comp, o.storeKind, o.encrypt)
	if err != nil {
		return err
	}
	defer stop()
	if o.level != 0 {
		b.vars["BACKUP_COMPRESSION_LEVEL"] = strconv.Itoa(o.level)
	}
	// The backup children's settings (childArgs gives them b.vars), to
	// report the level they use and refuse a bad -level before anything
	// is generated.
	vars := maps.Clone(b.vars)
	vars["BACKUP_COMPRESSION"], vars["DATA_DIR"] = comp, dir
	cfg, err := loadConfig(vars)
	if err != nil {
		return err
	}
	fmt.Printf("backupbench: %s databases, compression %s level %d, %s, best of %d round(s), work dir %s\n",
		mb(size), comp, cfg.BackupCompressionLevel, b.desc, rounds, dir)

	// SQLite target copy.
	target := filepath.Join(dir, "target.db")
	start := time.Now()
	g, err := snapshot.GenerateSQLite(ctx, target, size)
	if err != nil {
		return err
	}
	fmt.Printf("sqlite: generated %s (%d rows) in %.1fs\n", mb(g.Bytes), g.Rows, time.Since(start).Seconds())
	compressCmd, decompressCmd := []string{"gzip", "-f"}, []string{"gzip", "-d", "-k", "-f"}
	baseName, ext := "sqlite3 .backup + gzip", ".gz"
	if comp == string(backupfmt.Zstd) {
		compressCmd, decompressCmd = []string{"zstd", "-3", "-T2", "-q", "-f", "--rm"}, []string{"zstd", "-d", "-q", "-f"}
		baseName, ext = "sqlite3 .backup + zstd -3 -T2", ".zst"
	}
	var base, ours, baseRestore, oursRestore measured
	for range rounds {
		copyPath := filepath.Join(dir, "baseline.db")
		secs, err := timed([]string{"sqlite3", target, ".backup '" + copyPath + "'"}, append(compressCmd, copyPath))
		if err != nil {
			return err
		}
		base = best(base, measured{seconds: secs, bytes: fileSize(copyPath + ext)})
		m, arc, err := b.backup("target", target, "")
		if err != nil {
			return err
		}
		ours = best(ours, m)

		// Restore: the baseline decompresses its file and moves it into
		// place; the restore streams the archive into the runtime copy.
		placed := filepath.Join(dir, "baseline-restored.db")
		secs, err = timed(append(decompressCmd, copyPath+ext), []string{"mv", copyPath, placed})
		if err != nil {
			b.remove(arc)
			return err
		}
		baseRestore = best(baseRestore, measured{seconds: secs, bytes: fileSize(placed)})
		_ = os.Remove(placed)
		_ = os.Remove(copyPath + ext)
		r, err := b.restore("target", arc, filepath.Join(dir, "runtime", "target.db"), "")
		b.remove(arc)
		if err != nil {
			return err
		}
		oursRestore = best(oursRestore, r)
	}
	ratio := ours.seconds / base.seconds
	sizeRatio := float64(ours.bytes) / float64(base.bytes)
	fmt.Printf("sqlite target:  %s %6.2fs %s | backup %6.2fs %s | ratio %.2f (target ≤ %.2f) | size ratio %.3f (target ≤ %.2f) | backup peak RSS %s (target < %s)\n",
		baseName, base.seconds, mb(base.bytes), ours.seconds, mb(ours.bytes), ratio, tg.sqliteRatio, sizeRatio, tg.sqliteSizeRatio, mb(ours.maxRSS), mb(tg.rss))
	check(ratio <= tg.sqliteRatio, "sqlite backup ratio %.2f above %.2f", ratio, tg.sqliteRatio)
	check(sizeRatio <= tg.sqliteSizeRatio, "sqlite archive size ratio %.3f above %.2f", sizeRatio, tg.sqliteSizeRatio)
	check(ours.maxRSS < tg.rss, "sqlite backup peak RSS %s, limit %s", mb(ours.maxRSS), mb(tg.rss))
	ratio = oursRestore.seconds / baseRestore.seconds
	fmt.Printf("sqlite restore: %s -d + mv %6.2fs | restore %6.2fs | ratio %.2f (target ≤ %.2f) | restore peak RSS %s (target < %s) | open before it %.2fs\n",
		compressCmd[0], baseRestore.seconds, oursRestore.seconds, ratio, tg.sqliteRestoreRatio, mb(oursRestore.maxRSS), mb(tg.rss), oursRestore.open)
	check(ratio <= tg.sqliteRestoreRatio, "sqlite restore ratio %.2f above %.2f", ratio, tg.sqliteRestoreRatio)
	check(oursRestore.maxRSS < tg.rss, "sqlite restore peak RSS %s, limit %s", mb(oursRestore.maxRSS), mb(tg.rss))
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
	base, ours, baseRestore, oursRestore = measured{}, measured{}, measured{}, measured{}
	for range rounds {
		dump := filepath.Join(dir, "baseline.dump")
		secs, err := timed([]string{"pg_dump", "-Fc", "-f", dump, "--dbname=" + dbURL})
		if err != nil {
			return err
		}
		base = best(base, measured{seconds: secs, bytes: fileSize(dump)})
		m, arc, err := b.backup("system", "", dbURL)
		if err != nil {
			return err
		}
		ours = best(ours, m)

		// Restore: pg_restore of the baseline dump, then the restore of
		// the archive (snapshot.RestoreSystem, which runs pg_restore on
		// the stream), each over the same database.
		secs, err = timed([]string{"pg_restore", "--clean", "--if-exists", "--single-transaction", "--no-owner", "--no-privileges",
			"--exit-on-error", "--dbname=" + dbURL, dump})
		_ = os.Remove(dump)
		if err != nil {
			b.remove(arc)
			return err
		}
		baseRestore = best(baseRestore, measured{seconds: secs})
		r, err := b.restore("system", arc, "", dbURL)
		b.remove(arc)
		if err != nil {
			return err
		}
		oursRestore = best(oursRestore, r)
	}
	overhead := ours.seconds/base.seconds - 1
	fmt.Printf("postgresql:     pg_dump -Fc to a file   %6.2fs %s | backup %6.2fs %s | overhead %+.1f%% (target < %.0f%%) | backup peak RSS %s (target < %s)\n",
		base.seconds, mb(base.bytes), ours.seconds, mb(ours.bytes), overhead*100, tg.pgOverhead*100, mb(ours.maxRSS), mb(tg.rss))
	check(overhead < tg.pgOverhead, "postgresql overhead %+.1f%%, limit %.0f%%", overhead*100, tg.pgOverhead*100)
	check(ours.maxRSS < tg.rss, "postgresql backup peak RSS %s, limit %s", mb(ours.maxRSS), mb(tg.rss))
	ratio = oursRestore.seconds / baseRestore.seconds
	fmt.Printf("postgresql restore: pg_restore of pg_dump -Fc %6.2fs | restore %6.2fs | ratio %.2f (target ≤ %.2f) | restore peak RSS %s (target < %s) | open before it %.2fs\n",
		baseRestore.seconds, oursRestore.seconds, ratio, tg.pgRestoreRatio, mb(oursRestore.maxRSS), mb(tg.rss), oursRestore.open)
	check(ratio <= tg.pgRestoreRatio, "postgresql restore ratio %.2f above %.2f", ratio, tg.pgRestoreRatio)
	check(oursRestore.maxRSS < tg.rss, "postgresql restore peak RSS %s, limit %s", mb(oursRestore.maxRSS), mb(tg.rss))
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
