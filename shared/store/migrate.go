package store

import (
	"context"
	"database/sql"
	"embed"
	"fmt"
	"io/fs"
	"sync"

	"github.com/pressly/goose/v3"
	"github.com/pressly/goose/v3/lock"
)

//go:embed migrations/postgres/*.sql migrations/sqlite/*.sql
var migrationsFS embed.FS

// MigrateResult reports what [DB.Migrate] did.
type MigrateResult struct {
	// Applied lists the versions applied by this call, in order; empty when
	// the schema was already current.
	Applied []int64
	// Version is the schema version after the call.
	Version int64
}

// systemTables lists the tables the migrations create, in the order
// [DB.Stats] reports them.
var systemTables = []string{
	"users",
	"queries",
	"feedback",
	"audit_logs",
	"configurations",
	"business_ontologies",
	"accounting_transactions",
	"service_tokens",
	"revoked_tokens",
}

// sqliteMigrateLocks maps a SQLite file's absolute path to the mutex that
// serialises its migrations within this process.
var sqliteMigrateLocks sync.Map

// TableNames returns the names of the System DB tables, in the order
// [DB.Stats] reports them.
func TableNames() []string { return append([]string(nil), systemTables...) }

// Migrate brings the schema up to the newest embedded migration. It is
// idempotent: a second call applies nothing. On PostgreSQL an advisory
// session lock serialises concurrent callers (several pods starting at once);
// on SQLite, callers in the same process are serialised per database file
// (several handles on one file included); SQLite files are not meant to be
// migrated by two processes at once.
func (db *DB) Migrate(ctx context.Context) (MigrateResult, error) { return db.migrateTo(ctx, 0) }

// migrateTo applies the pending migrations up to version to, every one
// when to is 0 (tests stop at an older version to check a migration on
// existing rows).
func (db *DB) migrateTo(ctx context.Context, to int64) (MigrateResult, error) {
	mu := &db.migrateMu
	if db.dialect == SQLite {
		m, _ := sqliteMigrateLocks.LoadOrStore(db.path, &sync.Mutex{})
		mu = m.(*sync.Mutex)
	}
	mu.Lock()
	defer mu.Unlock()

	conns := db.SQL
	if db.dialect == SQLite {
		// A pool of its own, closed after: a migration that runs outside
		// goose's transaction (00003 turns foreign keys off and opens its
		// own) and fails half-way leaves its connection in a transaction
		// with foreign keys off; closing the pool rolls it back instead of
		// handing that connection to the service.
		own, err := sql.Open("sqlite", sqliteDSN(db.path))
		if err != nil {
			return MigrateResult{}, fmt.Errorf("store: open %s for migrating: %w", db.describe, err)
		}
		defer func() { _ = own.Close() }()
		conns = own
	}
	p, err := db.migrationProvider(conns)
	if err != nil {
		return MigrateResult{}, err
	}
	var results []*goose.MigrationResult
	if to > 0 {
		results, err = p.UpTo(ctx, to)
	} else {
		results, err = p.Up(ctx)
	}
	res := MigrateResult{Applied: []int64{}}
	for _, r := range results {
		if r != nil && r.Error == nil && r.Source != nil {
			res.Applied = append(res.Applied, r.Source.Version)
		}
	}
	if err != nil {
		return res, fmt.Errorf("store: migrate %s: %w", db.describe, err)
	}
	if res.Version, err = p.GetDBVersion(ctx); err != nil {
		return res, fmt.Errorf("store: read schema version of %s: %w", db.describe, err)
	}
	return res, nil
}

// SchemaVersion returns the applied schema version (0 before any
// migration) and whether migrations are pending.
func (db *DB) SchemaVersion(ctx context.Context) (version int64, pending bool, err error) {
	p, err := db.migrationProvider(db.SQL)
	if err != nil {
		return 0, false, err
	}
	if version, err = p.GetDBVersion(ctx); err != nil {
		return 0, false, fmt.Errorf("store: read schema version of %s: %w", db.describe, err)
	}
	if pending, err = p.HasPending(ctx); err != nil {
		return version, false, fmt.Errorf("store: check pending migrations of %s: %w", db.describe, err)
	}
	return version, pending, nil
}

// migrationProvider runs the dialect's embedded migrations over conns (the
// service's pool, or one opened for migrating).
func (db *DB) migrationProvider(conns *sql.DB) (*goose.Provider, error) {
	dir, dialect := "migrations/sqlite", goose.DialectSQLite3
	opts := []goose.ProviderOption{goose.WithDisableGlobalRegistry(true)}
	if db.dialect == Postgres {
		dir, dialect = "migrations/postgres", goose.DialectPostgres
		locker, err := lock.NewPostgresSessionLocker()
		if err != nil {
			return nil, fmt.Errorf("store: migration lock: %w", err)
		}
		opts = append(opts, goose.WithSessionLocker(locker))
	}
	sub, err := fs.Sub(migrationsFS, dir)
	if err != nil {
		return nil, fmt.Errorf("store: migrations: %w", err)
	}
	p, err := goose.NewProvider(dialect, conns, sub, opts...)
	if err != nil {
		return nil, fmt.Errorf("store: migrations: %w", err)
	}
	return p, nil
}
