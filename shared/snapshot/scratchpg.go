package snapshot

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/insightops/insightops/shared/store"
)

// ErrScratchUnavailable is returned (wrapped) by [TestRestorePostgres] when
// it cannot create its scratch database (no CREATEDB privilege, for
// example). It is returned before anything is read from the input, so the
// caller can fall back to [CheckSystem] (pg_restore --list) on the same
// reader.
var ErrScratchUnavailable = errors.New("cannot create a scratch database")

// ErrScratchRole is wrapped (with ErrScratchUnavailable) by
// [TestRestorePostgres] when the role of its URL may do more than create
// databases: a test restore runs a dump's SQL, so it runs as a role that
// is not a superuser, cannot create roles, replicate or bypass row
// security, and is not a member of pg_execute_server_program,
// pg_read_server_files or pg_write_server_files.
var ErrScratchRole = errors.New("the role may do more than create databases")

// checkScratchRole returns ErrScratchRole naming what the connection's
// role may do beyond CREATEDB, and an error when it may not even create
// databases.
func checkScratchRole(ctx context.Context, conn *pgx.Conn) error {
	var role string
	var super, createRole, createDB, repl, bypass, program, readFiles, writeFiles bool
	err := conn.QueryRow(ctx, `SELECT rolname, rolsuper, rolcreaterole, rolcreatedb, rolreplication, rolbypassrls,
		pg_has_role(current_user, 'pg_execute_server_program', 'MEMBER'),
		pg_has_role(current_user, 'pg_read_server_files', 'MEMBER'),
		pg_has_role(current_user, 'pg_write_server_files', 'MEMBER')
		FROM pg_roles WHERE rolname = current_user`).Scan(&role, &super, &createRole, &createDB, &repl, &bypass, &program, &readFiles, &writeFiles)
	if err != nil {
		return fmt.Errorf("read the role's privileges: %w", err)
	}
	var more []string
	for name, has := range map[string]bool{"SUPERUSER": super, "CREATEROLE": createRole, "REPLICATION": repl, "BYPASSRLS": bypass,
		"pg_execute_server_program": program, "pg_read_server_files": readFiles, "pg_write_server_files": writeFiles} {
		if has {
			more = append(more, name)
		}
	}
	if len(more) > 0 {
		sort.Strings(more)
		return fmt.Errorf("%w: role %s has %s (give VERIFY_DATABASE_URL a role with CREATEDB only)", ErrScratchRole, role, strings.Join(more, ", "))
	}
	if !createDB {
		return fmt.Errorf("role %s has no CREATEDB", role)
	}
	return nil
}

// TestRestorePostgres restores the pg_dump archive read from r into a new
// scratch database (insightops_scratch_<unix time>_<random>) on the server behind
// adminURL, whose role must have CREATEDB and nothing more (see
// ErrScratchRole), and returns the row count of
// every System DB table found there. The scratch database is dropped before
// returning, whatever happens (with a fresh context if ctx is done); one
// left by a process that was killed is dropped by a later call once it is
// older than ScratchMaxAge (see reapScratch). Errors never contain the
// URL's password.
func TestRestorePostgres(ctx context.Context, adminURL string, r io.Reader, opts ...Option) (Counts, error) {
	o := buildOptions(opts)
	rows, err := testRestorePostgres(ctx, adminURL, r, o)
	if err != nil {
		return nil, fmt.Errorf("snapshot: test restore: %w", err)
	}
	return rows, nil
}

func testRestorePostgres(ctx context.Context, adminURL string, r io.Reader, o options) (Counts, error) {
	cfg, err := pgx.ParseConfig(adminURL)
	if err != nil {
		// pgx's message may quote the URL; never wrap the raw error.
		return nil, fmt.Errorf("parse admin URL: %s", store.RedactPassword(err.Error(), adminURL))
	}
	tool, err := findTool(ctx, "pg_restore", o.pgRestore)
	if err != nil {
		return nil, err
	}
	admin, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("%w: connect to %s:%d/%s: %s", ErrScratchUnavailable, cfg.Host, cfg.Port, cfg.Database,
			redactSecret(err.Error(), cfg.Password))
	}
	defer admin.Close(context.WithoutCancel(ctx))
	if err := checkScratchRole(ctx, admin); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrScratchUnavailable, err)
	}
	reapScratch(ctx, admin, time.Now())
	name := scratchName(time.Now())
	if _, err := admin.Exec(ctx, "CREATE DATABASE "+name); err != nil {
		return nil, fmt.Errorf("%w: create database %s: %s", ErrScratchUnavailable, name, redactSecret(err.Error(), cfg.Password))
	}
	defer func() {
		dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
		defer cancel()
		_, _ = admin.Exec(dctx, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)")
	}()

	scfg := cfg.Copy()
	scfg.Database = name
	pc := pgConnFromConfig(scfg)
	cr := newCountingReader(ctx, r, o.progress)
	err = proc{
		tool: tool,
		args: []string{"--single-transaction", "--no-owner", "--no-privileges", "--exit-on-error", "--dbname=" + pc.url},
		env:  pc.env(), stdin: cr, redact: pc.redact,
	}.run(ctx)
	cr.finish()
	if err != nil {
		return nil, fmt.Errorf("restore into scratch database %s: %w", name, err)
	}
	sc, err := pgx.ConnectConfig(ctx, scfg)
	if err != nil {
		return nil, fmt.Errorf("connect to scratch database %s: %s", name, redactSecret(err.Error(), cfg.Password))
	}
	defer sc.Close(context.WithoutCancel(ctx))
	rows := make(Counts)
	for _, t := range store.TableNames() {
		var n int64
		if err := sc.QueryRow(ctx, "SELECT count(*) FROM "+quoteIdent(t)).Scan(&n); err != nil {
			return nil, fmt.Errorf("count rows of %s in scratch database: %w", t, err)
		}
		rows[t] = n
	}
	return rows, nil
}

// scratchPrefix starts the name of every scratch database.
const scratchPrefix = "insightops_scratch_"

// ScratchMaxAge is the age after which a scratch database is taken to be
// left over by a killed process and dropped: far longer than any test
// restore runs.
const ScratchMaxAge = 6 * time.Hour

// scratchName is a new scratch database name carrying its creation time.
func scratchName(now time.Time) string {
	var b [6]byte
	_, _ = rand.Read(b[:])
	return fmt.Sprintf("%s%d_%s", scratchPrefix, now.Unix(), hex.EncodeToString(b[:]))
}

// scratchCreated is the creation time in a scratch database's name; ok is
// false for a name without one (made by an older version).
func scratchCreated(name string) (time.Time, bool) {
	rest, found := strings.CutPrefix(name, scratchPrefix)
	if !found {
		return time.Time{}, false
	}
	sec, _, found := strings.Cut(rest, "_")
	if !found {
		return time.Time{}, false
	}
	n, err := strconv.ParseInt(sec, 10, 64)
	if err != nil {
		return time.Time{}, false
	}
	return time.Unix(n, 0), true
}

// reapScratch drops scratch databases left by killed processes: those
// whose name says they are older than ScratchMaxAge, and those named by an
// older version (no time in the name) that nobody is connected to. A
// failure only means they stay for the next call.
func reapScratch(ctx context.Context, admin *pgx.Conn, now time.Time) {
	rows, err := admin.Query(ctx, `SELECT d.datname, count(a.pid)
		FROM pg_database d LEFT JOIN pg_stat_activity a ON a.datname = d.datname
		WHERE d.datname LIKE 'insightops\_scratch\_%' GROUP BY d.datname`)
	if err != nil {
		return
	}
	var stale []string
	for rows.Next() {
		var (
			name  string
			conns int
		)
		if rows.Scan(&name, &conns) != nil {
			continue
		}
		created, ok := scratchCreated(name)
		if ok && now.Sub(created) > ScratchMaxAge || !ok && conns == 0 {
			stale = append(stale, name)
		}
	}
	rows.Close()
	for _, name := range stale {
		_, _ = admin.Exec(ctx, "DROP DATABASE IF EXISTS "+pgx.Identifier{name}.Sanitize()+" WITH (FORCE)")
	}
}
