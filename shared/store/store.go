// Package store is the System DB of insightops: users, the text-to-SQL query
// log and its feedback, the audit log, configuration, the business glossary
// (ontology) and demo accounting data.
//
// One code path over database/sql serves two engines:
//
//   - PostgreSQL through pgx (github.com/jackc/pgx/v5/stdlib) when a
//     DATABASE_URL is given, the clustered production setup;
//   - SQLite through modernc.org/sqlite (pure Go, no cgo) on a file
//     otherwise, the embedded single-machine default.
//
// The few differences are carried by a [Dialect]: placeholders (queries are
// written with '?' and rebound to $1, $2, … for PostgreSQL), how timestamps are
// stored (TIMESTAMPTZ versus fixed-width UTC text), and the schema, which is
// versioned with pressly/goose in one embedded migrations directory per
// dialect. Every write that must be idempotent (a redelivered init job) uses
// INSERT … ON CONFLICT, which both engines understand.
package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"
	_ "modernc.org/sqlite" // registers the "sqlite" database/sql driver

	"github.com/insightops/insightops/shared/config"
)

// Dialect names the SQL engine behind a [DB].
type Dialect string

const (
	// Postgres is PostgreSQL reached through pgx.
	Postgres Dialect = "postgres"
	// SQLite is a SQLite file opened with modernc.org/sqlite.
	SQLite Dialect = "sqlite"
)

// String returns the dialect's name, "postgres" or "sqlite".
func (d Dialect) String() string { return string(d) }

// ErrNotFound is returned (possibly wrapped) by lookups that find no row;
// test with errors.Is.
var ErrNotFound = errors.New("store: not found")

// SQLite connection settings applied to every pooled connection through the
// DSN. busy_timeout makes a writer wait for the lock instead of failing with
// "database is locked"; _txlock=immediate makes every transaction take the
// write lock when it begins, so two transactions can never deadlock trying
// to upgrade a read lock (which SQLite reports as SQLITE_BUSY at once,
// without waiting for busy_timeout).
var sqliteParams = []string{
	"_pragma=busy_timeout(5000)",
	"_pragma=journal_mode(WAL)",
	"_pragma=foreign_keys(1)",
	"_pragma=synchronous(NORMAL)",
	"_txlock=immediate",
}

// sqliteDSN is the data source name of the SQLite file at the absolute
// path abs, with sqliteParams.
func sqliteDSN(abs string) string { return abs + "?" + strings.Join(sqliteParams, "&") }

// DB is an open System DB. It is safe for concurrent use.
type DB struct {
	// SQL is the underlying connection pool, for callers that need a query
	// this package does not offer. Queries written for it must respect
	// [DB.Dialect]; [DB.Rebind] converts '?' placeholders.
	SQL *sql.DB

	dialect  Dialect
	describe string
	path     string // SQLite file, absolute; empty for PostgreSQL

	migrateMu sync.Mutex
}

// Open connects to the System DB: PostgreSQL at databaseURL when it is not
// empty, otherwise the SQLite file at sqlitePath (its parent directory is
// created with mode 0750 if missing). The connection is checked before Open
// returns. Errors never contain the URL's password.
func Open(ctx context.Context, databaseURL, sqlitePath string) (*DB, error) {
	if strings.TrimSpace(databaseURL) != "" {
		return openPostgres(ctx, databaseURL)
	}
	return openSQLite(ctx, sqlitePath)
}

func openPostgres(ctx context.Context, databaseURL string) (*DB, error) {
	cfg, err := pgx.ParseConfig(databaseURL)
	if err != nil {
		// pgx already redacts the password in its message; redact again
		// best-effort, and do not wrap (the wrapped error holds the raw URL).
		return nil, fmt.Errorf("store: parse database URL: %s", RedactPassword(err.Error(), databaseURL))
	}
	desc := fmt.Sprintf("postgres %s:%d/%s", cfg.Host, cfg.Port, cfg.Database)
	sqldb := stdlib.OpenDB(*cfg)
	sqldb.SetMaxOpenConns(20)
	sqldb.SetMaxIdleConns(5)
	sqldb.SetConnMaxIdleTime(5 * time.Minute)
	db := &DB{SQL: sqldb, dialect: Postgres, describe: desc}
	if err := sqldb.PingContext(ctx); err != nil {
		_ = sqldb.Close()
		return nil, fmt.Errorf("store: connect to %s: %s", desc, RedactPassword(err.Error(), databaseURL))
	}
	return db, nil
}

func openSQLite(ctx context.Context, path string) (*DB, error) {
	if strings.TrimSpace(path) == "" {
		return nil, errors.New("store: neither a database URL nor a SQLite path was given")
	}
	if path == ":memory:" || strings.HasPrefix(path, "file:") || strings.ContainsAny(path, "?#") {
		return nil, fmt.Errorf("store: SQLite path %q must be a plain file path (no URI, query or :memory:)", path)
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("store: SQLite path %q: %w", path, err)
	}
	if err := os.MkdirAll(filepath.Dir(abs), 0o750); err != nil {
		return nil, fmt.Errorf("store: create directory for SQLite database: %w", err)
	}
	desc := "sqlite " + abs
	sqldb, err := sql.Open("sqlite", sqliteDSN(abs))
	if err != nil {
		return nil, fmt.Errorf("store: open %s: %w", desc, err)
	}
	// WAL lets readers run beside the single writer; writers queue on
	// busy_timeout. A bounded pool keeps the number of waiting writers sane.
	sqldb.SetMaxOpenConns(16)
	sqldb.SetMaxIdleConns(4)
	sqldb.SetConnMaxIdleTime(5 * time.Minute)
	db := &DB{SQL: sqldb, dialect: SQLite, describe: desc, path: abs}
	if err := sqldb.PingContext(ctx); err != nil {
		_ = sqldb.Close()
		return nil, fmt.Errorf("store: open %s: %w", desc, err)
	}
	return db, nil
}

// Close closes the connection pool.
func (db *DB) Close() error {
	if err := db.SQL.Close(); err != nil {
		return fmt.Errorf("store: close %s: %w", db.describe, err)
	}
	return nil
}

// Ping checks that the database answers.
func (db *DB) Ping(ctx context.Context) error {
	if err := db.SQL.PingContext(ctx); err != nil {
		return fmt.Errorf("store: ping %s: %w", db.describe, err)
	}
	return nil
}

// Dialect reports which engine this DB runs on.
func (db *DB) Dialect() Dialect { return db.dialect }

// Describe returns a one-line description of the store without credentials:
// "postgres 127.0.0.1:5432/insightops" or "sqlite /data/system.db".
func (db *DB) Describe() string { return db.describe }

// SQLitePath returns the absolute path of the SQLite file, or "" on
// PostgreSQL.
func (db *DB) SQLitePath() string { return db.path }

// Rebind rewrites a query written with '?' placeholders for this DB's
// dialect: unchanged for SQLite, $1, $2, … for PostgreSQL. Question marks
// inside quoted strings, quoted identifiers and comments are left alone.
func (db *DB) Rebind(query string) string { return RebindFor(db.dialect, query) }

// RebindFor rewrites a query written with '?' placeholders for dialect d;
// see [DB.Rebind].
func RebindFor(d Dialect, query string) string {
	if d != Postgres || !strings.Contains(query, "?") {
		return query
	}
	var b strings.Builder
	b.Grow(len(query) + 8)
	n := 0
	for i := 0; i < len(query); i++ {
		c := query[i]
		switch {
		case c == '\'' || c == '"':
			j := i + 1
			for j < len(query) {
				if query[j] == c {
					if j+1 < len(query) && query[j+1] == c { // doubled quote
						j += 2
						continue
					}
					break
				}
				j++
			}
			end := min(j+1, len(query))
			b.WriteString(query[i:end])
			i = end - 1
		case c == '-' && i+1 < len(query) && query[i+1] == '-':
			j := strings.IndexByte(query[i:], '\n')
			if j < 0 {
				b.WriteString(query[i:])
				return b.String()
			}
			b.WriteString(query[i : i+j+1])
			i += j
		case c == '/' && i+1 < len(query) && query[i+1] == '*':
			j := strings.Index(query[i+2:], "*/")
			if j < 0 {
				b.WriteString(query[i:])
				return b.String()
			}
			b.WriteString(query[i : i+2+j+2])
			i += 2 + j + 1
		case c == '?':
			n++
			fmt.Fprintf(&b, "$%d", n)
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
}

// RedactPassword removes the password of a database connection string
// from msg (an error of the driver, say), best effort: the forms of
// config.Passwords (URL userinfo postgres://u:pw@h/db, ?password=pw,
// key/value password=pw; plain and escaped) become "xxxxx".
func RedactPassword(msg, connString string) string {
	for _, pw := range config.Passwords(connString) {
		msg = strings.ReplaceAll(msg, pw, "xxxxx")
	}
	return msg
}

// sqliteTimeLayout is how timestamps are stored in SQLite: UTC, fixed width,
// so that text order is time order. The schema's defaults produce the same
// shape with strftime('%Y-%m-%dT%H:%M:%f000Z').
const sqliteTimeLayout = "2006-01-02T15:04:05.000000Z"

// timeArg converts t to the argument the dialect stores in a timestamp
// column.
func (db *DB) timeArg(t time.Time) any {
	if db.dialect == SQLite {
		return t.UTC().Format(sqliteTimeLayout)
	}
	return t.UTC()
}

// scanTime is a sql.Scanner for timestamp columns of either dialect: a
// time.Time from pgx, text from SQLite.
type scanTime struct{ t *time.Time }

func (s scanTime) Scan(src any) error {
	switch v := src.(type) {
	case nil:
		*s.t = time.Time{}
		return nil
	case time.Time:
		*s.t = v.UTC()
		return nil
	case string:
		return s.parse(v)
	case []byte:
		return s.parse(string(v))
	case int64:
		*s.t = time.Unix(v, 0).UTC()
		return nil
	default:
		return fmt.Errorf("store: cannot scan %T into a time", src)
	}
}

var timeLayouts = []string{
	time.RFC3339Nano,
	"2006-01-02 15:04:05.999999999-07:00",
	"2006-01-02 15:04:05.999999999Z07:00",
	"2006-01-02 15:04:05.999999999",
	"2006-01-02T15:04:05.999999999",
	"2006-01-02",
}

func (s scanTime) parse(v string) error {
	for _, l := range timeLayouts {
		if t, err := time.Parse(l, v); err == nil {
			*s.t = t.UTC()
			return nil
		}
	}
	return fmt.Errorf("store: cannot parse time %q", v)
}

// inTx runs fn in a transaction, committing when fn returns nil.
func (db *DB) inTx(ctx context.Context, fn func(*sql.Tx) error) (err error) {
	tx, err := db.SQL.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("begin: %w", err)
	}
	defer func() {
		if err != nil {
			_ = tx.Rollback()
		}
	}()
	if err = fn(tx); err != nil { //nolint:gocritic // err is the named result the deferred rollback reads
		return err
	}
	if err = tx.Commit(); err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	return nil
}
