package testkit

import (
	"context"
	"log/slog"
	"maps"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"

	"github.com/insightops/insightops/shared/app"
	"github.com/insightops/insightops/shared/audit"
	"github.com/insightops/insightops/shared/bus"
	"github.com/insightops/insightops/shared/config"
	"github.com/insightops/insightops/shared/store"
)

// envSetupTimeout bounds opening and migrating a test's System DB.
const envSetupTimeout = 60 * time.Second

// Dialect is a System DB flavour a test runs against.
type Dialect struct {
	// Name is the dialect as the store names it (store.SQLite,
	// store.Postgres).
	Name string
	// DatabaseURL returns the DATABASE_URL of a System DB of this dialect
	// for t: "" for SQLite (system.db under DATA_DIR), a fresh PostgreSQL
	// database, dropped when t ends, for PostgreSQL (Unavailable when
	// PostgreSQL cannot be reached).
	DatabaseURL func(t testing.TB) string
}

// The System DB dialects.
var (
	// SQLite keeps the System DB in system.db under DATA_DIR.
	SQLite = Dialect{Name: string(store.SQLite), DatabaseURL: func(testing.TB) string { return "" }}
	// PostgreSQL puts the System DB in a fresh database of the test
	// server (see Postgres).
	PostgreSQL = Dialect{Name: string(store.Postgres), DatabaseURL: Postgres}
)

// SystemDB is a migrated System DB of this dialect for t (SystemDB over
// Config), closed when t ends.
func (d Dialect) SystemDB(t testing.TB) *store.DB {
	t.Helper()
	return SystemDB(t, Config(t, map[string]string{"DATABASE_URL": d.DatabaseURL(t)}))
}

// Dialects are every System DB dialect, for tests that run a behaviour
// against each: for _, d := range testkit.Dialects { t.Run(d.Name, …) }.
var Dialects = []Dialect{SQLite, PostgreSQL}

// Config loads the configuration a service would read from an environment
// holding vars over DATA_DIR in a fresh temp dir (APP_ENV is development
// unless vars says otherwise); the test fails when config.Load refuses it.
func Config(t testing.TB, vars map[string]string) config.Config {
	t.Helper()
	env := map[string]string{"DATA_DIR": t.TempDir()}
	maps.Copy(env, vars)
	cfg, err := config.Load(func(k string) string { return env[k] })
	if err != nil {
		t.Fatalf("config: %v", err)
	}
	return cfg
}

// OpenSystemDB opens the System DB cfg names (DATABASE_URL, else the
// SQLite file under DATA_DIR) without migrating it, closed when the test
// ends.
func OpenSystemDB(t testing.TB, cfg config.Config) *store.DB {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), envSetupTimeout)
	defer cancel()
	db, err := store.Open(ctx, cfg.DatabaseURL, cfg.SQLitePath())
	if err != nil {
		t.Fatalf("open system db: %v", err)
	}
	t.Cleanup(func() { _ = db.Close() })
	return db
}

// SystemDB is OpenSystemDB with every migration applied, as app.Open
// leaves it for a service.
func SystemDB(t testing.TB, cfg config.Config) *store.DB {
	t.Helper()
	db := OpenSystemDB(t, cfg)
	ctx, cancel := context.WithTimeout(context.Background(), envSetupTimeout)
	defer cancel()
	if _, err := db.Migrate(ctx); err != nil {
		t.Fatalf("migrate system db: %v", err)
	}
	return db
}

// Env is what a service gets from app.Open, over real parts owned by one
// test: its configuration, a migrated System DB, a provisioned bus on its
// own embedded NATS server, an audit publisher and a logger, and a Chroma
// server when asked. Everything is released when the test ends, so tests
// built on an Env of their own may run in parallel.
type Env struct {
	Config config.Config
	DB     *store.DB
	Bus    *bus.Bus
	// NATS is the embedded server behind Bus; nil when WithBus handed in
	// a bus.
	NATS  *server.Server
	Audit *audit.Publisher
	Log   *slog.Logger
	// Chroma is the server WithChroma started (its URL is CHROMA_URL), or nil.
	Chroma *ChromaServer
}

// Deps are the Env's parts as a service's dependencies.
func (e *Env) Deps() app.Deps {
	return app.Deps{Config: e.Config, Bus: e.Bus, DB: e.DB, Audit: e.Audit, Log: e.Log}
}

// EnvOption chooses what NewEnv builds.
type EnvOption func(*envSettings)

type envSettings struct {
	dialect Dialect
	vars    map[string]string
	chroma  bool
	cfg     *config.Config
	db      *store.DB
	bus     *bus.Bus
}

// WithDialect puts the System DB in d (SQLite by default).
func WithDialect(d Dialect) EnvOption { return func(s *envSettings) { s.dialect = d } }

// WithVars sets configuration variables over the defaults (DATA_DIR in a
// temp dir, DATABASE_URL from the dialect, CHROMA_URL from WithChroma);
// several WithVars add up, later ones winning.
func WithVars(vars map[string]string) EnvOption {
	return func(s *envSettings) { maps.Copy(s.vars, vars) }
}

// WithChroma starts a Chroma server for the test (see Chroma) and points
// CHROMA_URL at it.
func WithChroma() EnvOption { return func(s *envSettings) { s.chroma = true } }

// WithConfig uses cfg as it is instead of loading one; WithDialect,
// WithVars and WithChroma's CHROMA_URL are then ignored.
func WithConfig(cfg config.Config) EnvOption { return func(s *envSettings) { s.cfg = &cfg } }

// WithDB uses db as the System DB instead of opening the one the
// configuration names.
func WithDB(db *store.DB) EnvOption { return func(s *envSettings) { s.db = db } }

// WithBus uses b instead of starting an embedded NATS server (a cluster's
// bus, say); Env.NATS is then nil.
func WithBus(b *bus.Bus) EnvOption { return func(s *envSettings) { s.bus = b } }

// NewEnv builds a test's environment as app.Open builds a service's:
// configuration, then the System DB, opened and migrated, then a bus on a
// fresh embedded NATS server, then the audit publisher. Options change
// the dialect and the configuration, add a Chroma server, or hand in parts
// the test built itself.
func NewEnv(t testing.TB, opts ...EnvOption) *Env {
	t.Helper()
	s := envSettings{dialect: SQLite, vars: map[string]string{}}
	for _, o := range opts {
		o(&s)
	}
	e := &Env{Log: Logger(t)}
	if s.chroma {
		e.Chroma = Chroma(t)
	}
	if s.cfg != nil {
		e.Config = *s.cfg
	} else {
		vars := map[string]string{"DATABASE_URL": s.dialect.DatabaseURL(t)}
		if e.Chroma != nil {
			vars["CHROMA_URL"] = e.Chroma.URL
		}
		maps.Copy(vars, s.vars)
		e.Config = Config(t, vars)
	}
	e.DB = s.db
	if e.DB == nil {
		e.DB = SystemDB(t, e.Config)
	}
	e.Bus = s.bus
	if e.Bus == nil {
		e.Bus, e.NATS = Bus(t)
	}
	e.Audit = audit.NewPublisher(e.Bus.JS, e.Log)
	return e
}
