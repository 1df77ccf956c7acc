// Package testkit starts the real services insightops tests run against:
// an embedded nats-server (single node or a 3-node cluster), a fresh
// PostgreSQL database per test, a Chroma server — and builds a test's
// whole environment over them as a service gets it from app.Open (NewEnv:
// configuration, System DB in either dialect, bus, audit publisher). An
// unreachable service is a skip outside CI and a failure when CI is set.
package testkit

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"

	"github.com/insightops/insightops/shared/bus"
)

// Unavailable stops the test because a service it needs cannot be reached:
// a skip with the reason outside CI, a failure when the CI variable is set,
// so a green CI always means every test ran.
func Unavailable(t testing.TB, service string, err error) {
	t.Helper()
	msg := fmt.Sprintf("%s unavailable: %v", service, err)
	if os.Getenv("CI") != "" {
		t.Fatalf("%s (CI is set, so this is a failure, not a skip)", msg)
	}
	t.Skip(msg)
}

// Logger returns a JSON slog logger writing to the test log when -v, or
// discarding otherwise.
func Logger(t testing.TB) *slog.Logger {
	if testing.Verbose() {
		return slog.New(slog.NewJSONHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.DiscardHandler)
}

// NATS starts an embedded JetStream server on a free loopback port with its
// store in a temp dir, stopped when the test ends.
func NATS(t testing.TB) *server.Server {
	t.Helper()
	ns, err := bus.StartEmbedded(bus.EmbeddedOptions{Listen: "127.0.0.1:0", StoreDir: t.TempDir(), ServerName: "test-" + RandomSuffix()})
	if err != nil {
		t.Fatalf("embedded nats: %v", err)
	}
	t.Cleanup(func() { ns.Shutdown(); ns.WaitForShutdown() })
	return ns
}

// Connect opens a client connection to ns, closed when the test ends.
func Connect(t testing.TB, ns *server.Server) *nats.Conn {
	t.Helper()
	nc, err := nats.Connect(ns.ClientURL(), nats.MaxReconnects(-1), nats.ReconnectWait(100*time.Millisecond))
	if err != nil {
		t.Fatalf("connect nats: %v", err)
	}
	t.Cleanup(nc.Close)
	return nc
}

// Bus starts an embedded server and returns a provisioned Bus on it.
func Bus(t testing.TB) (*bus.Bus, *server.Server) {
	t.Helper()
	ns := NATS(t)
	nc := Connect(t, ns)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	b, err := bus.Attach(ctx, nc, bus.Settings{Replicas: 1}, true, Logger(t))
	if err != nil {
		t.Fatalf("provision: %v", err)
	}
	return b, ns
}

// PostgresBaseURL is the maintenance database tests connect to in order to
// create their own; TEST_DATABASE_URL overrides it.
func PostgresBaseURL() string {
	if u := os.Getenv("TEST_DATABASE_URL"); u != "" {
		return u
	}
	return "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"
}

// connectPostgres connects to the maintenance database base. A server that
// cannot be reached makes the test Unavailable (nil is returned); one that
// answers and refuses (a wrong password, a missing role or database) fails
// it: that is a setup to fix, not a service to skip.
func connectPostgres(ctx context.Context, t testing.TB, base string) *pgx.Conn {
	t.Helper()
	conn, err := pgx.Connect(ctx, base)
	switch {
	case err == nil:
		return conn
	case serverRefused(err):
		t.Fatalf("PostgreSQL at %s answered and refused the connection (check TEST_DATABASE_URL's user, password and database): %v", redact(base), err)
	default:
		Unavailable(t, "PostgreSQL at "+redact(base), err)
	}
	return nil
}

// serverRefused reports whether a connection error is the server's own
// answer (a PostgreSQL error: authentication, a missing role or database)
// rather than the server not being reachable.
func serverRefused(err error) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr)
}

// Postgres creates a fresh database for this test and returns its URL; the
// database is dropped when the test ends.
func Postgres(t testing.TB) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	base := PostgresBaseURL()
	conn := connectPostgres(ctx, t, base)
	if conn == nil {
		return ""
	}
	name := "insightops_test_" + RandomSuffix()
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+name); err != nil {
		conn.Close(ctx)
		t.Fatalf("create database %s: %v", name, err)
	}
	conn.Close(ctx)
	u, err := url.Parse(base)
	if err != nil {
		t.Fatalf("parse %s: %v", redact(base), err)
	}
	u.Path = "/" + name
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		defer cancel()
		c, err := pgx.Connect(ctx, base)
		if err != nil {
			t.Logf("drop database %s: %v", name, err)
			return
		}
		defer c.Close(ctx)
		if _, err := c.Exec(ctx, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)"); err != nil {
			t.Logf("drop database %s: %v", name, err)
		}
	})
	return u.String()
}

// PostgresCreateDBRole creates a login role that may create databases
// and nothing more (NOSUPERUSER NOCREATEROLE, the role a scratch test
// restore runs as: VERIFY_DATABASE_URL) and returns the URL of the
// maintenance database as that role. When the test ends, the databases it
// still owns and the role are dropped.
func PostgresCreateDBRole(t testing.TB) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	base := PostgresBaseURL()
	conn := connectPostgres(ctx, t, base)
	if conn == nil {
		return ""
	}
	defer conn.Close(ctx)
	role := "insightops_verify_" + RandomSuffix()
	if _, err := conn.Exec(ctx, "CREATE ROLE "+role+" LOGIN CREATEDB NOSUPERUSER NOCREATEROLE NOREPLICATION NOBYPASSRLS"); err != nil {
		t.Fatalf("create role %s: %v", role, err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		c, err := pgx.Connect(ctx, base)
		if err != nil {
			t.Logf("drop role %s: %v", role, err)
			return
		}
		defer c.Close(ctx)
		rows, err := c.Query(ctx, "SELECT datname FROM pg_database d JOIN pg_roles r ON r.oid = d.datdba WHERE r.rolname = $1", role)
		if err == nil {
			dbs, _ := pgx.CollectRows(rows, pgx.RowTo[string])
			for _, db := range dbs {
				_, _ = c.Exec(ctx, "DROP DATABASE IF EXISTS "+pgx.Identifier{db}.Sanitize()+" WITH (FORCE)")
			}
		}
		if _, err := c.Exec(ctx, "DROP ROLE IF EXISTS "+role); err != nil {
			t.Logf("drop role %s: %v", role, err)
		}
	})
	u, err := url.Parse(base)
	if err != nil {
		t.Fatalf("parse %s: %v", redact(base), err)
	}
	u.User = url.User(role)
	return u.String()
}

// RandomSuffix returns 8 random hex characters.
func RandomSuffix() string {
	var b [4]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

func redact(u string) string {
	cfg, err := pgx.ParseConfig(u)
	if err != nil {
		return "(unparseable URL)"
	}
	return fmt.Sprintf("%s:%d/%s", cfg.Host, cfg.Port, cfg.Database)
}

// HTTP is the client tests send requests with. Never http.DefaultClient:
// chroma-go v0.3.5 writes its Transport while building a client, which
// vectors.New undoes at once, but a test reading it at that moment races.
var HTTP = &http.Client{Timeout: 2 * time.Minute}
