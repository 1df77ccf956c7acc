// Package app wires a process together the same way in every binary: the
// configuration, a slog logger (text on a terminal, JSON otherwise),
// signal handling, the bus, (for the services that need it) the System DB
// and the worker binaries' metrics server. Each main.go is one call to Main
// with its package's Run, which the all-in-one binary and the tests call
// directly.
package app

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/nats-io/nats.go"
	"golang.org/x/term"

	"github.com/insightops/insightops/shared/audit"
	"github.com/insightops/insightops/shared/bus"
	"github.com/insightops/insightops/shared/config"
	"github.com/insightops/insightops/shared/store"
	"github.com/insightops/insightops/shared/tracing"
)

// Deps are what every service's Run receives.
type Deps struct {
	Config config.Config
	Bus    *bus.Bus
	DB     *store.DB // nil for services that do not use the System DB
	Audit  *audit.Publisher
	Log    *slog.Logger
}

// NewLogger returns a logger at the configured level: readable text lines
// when w is a terminal, JSON otherwise (LOG_FORMAT=auto).
func NewLogger(w io.Writer, level string) *slog.Logger {
	return NewLoggerFormat(w, level, "auto")
}

// NewLoggerFormat returns a logger at level writing format: "json",
// "text" (slog's key=value lines, for people), or "auto" (text on a
// terminal, JSON otherwise).
func NewLoggerFormat(w io.Writer, level, format string) *slog.Logger {
	var l slog.Level
	_ = l.UnmarshalText([]byte(level))
	opts := &slog.HandlerOptions{Level: l}
	if format == "text" || (format == "auto" && isTerminal(w)) {
		return slog.New(slog.NewTextHandler(w, opts))
	}
	return slog.New(slog.NewJSONHandler(w, opts))
}

// isTerminal reports whether w is a terminal.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

// Options choose what Open prepares.
type Options struct {
	// Name is the NATS connection name, e.g. "insightops-backup".
	Name string
	// SystemDB opens (and migrates) the System DB.
	SystemDB bool
	// FailFastWhenDisconnected turns off the NATS client's reconnect
	// buffer: while the connection is down every publish and request
	// fails at once instead of being queued and sent after the reconnect.
	// The API sets it, so a submission it answered 503 cannot reach the
	// bus later (there is no window between a connection check and the
	// publish). Workers keep the buffer.
	FailFastWhenDisconnected bool
	// Role is the kind of process (config.LoadRole): which role-scoped
	// secrets it requires and may receive. Empty: config.RoleAllInOne.
	Role config.Role
	// JobMemoryLimit is set by the workers that stream archives (backup,
	// restore): Main sets the process's soft memory limit from the jobs
	// it runs at once (memlimit.Apply), unless GOMEMLIMIT is set. Run
	// alone (tests, the all-in-one) leaves the limit as it is.
	JobMemoryLimit bool
	// MetricsOnOwnPort is set by the processes that serve /metrics on
	// their own HTTP port (the API on API_ADDR, the all-in-one): Run then
	// does not start the METRICS_ADDR server the worker binaries use.
	MetricsOnOwnPort bool
}

// OpenEnv loads the configuration through getenv and opens the bus
// (embedding a server when NATS_URL is empty) and, when asked, the System
// DB, logging (slog JSON) to logTo; closeAll releases everything. A configuration config.Load refuses is audited as
// config.invalid when NATS can be reached within ConfigAuditTimeout (see
// AuditConfigInvalid), then returned as the error.
func OpenEnv(ctx context.Context, getenv func(string) string, logTo io.Writer, opts Options) (deps Deps, closeAll func(), err error) {
	role := opts.Role
	if role == "" {
		role = config.RoleAllInOne
	}
	cfg, err := config.LoadRole(getenv, role)
	if err != nil {
		AuditConfigInvalid(ctx, opts.Name, getenv, err, NewLogger(logTo, "info"))
		return Deps{}, nil, err
	}
	return OpenWith(ctx, cfg, NewLoggerFormat(logTo, cfg.LogLevel, cfg.LogFormat), opts)
}

// OpenWith is Open with a configuration and logger already made. Once the
// bus is open it audits the configuration's warnings (config.warning, see
// ConfigWarnings).
func OpenWith(ctx context.Context, cfg config.Config, log *slog.Logger, opts Options) (deps Deps, closeAll func(), err error) {
	stopTracing, err := tracing.Setup(ctx, cfg.Tracing, opts.Name)
	if err != nil {
		return Deps{}, nil, err
	}
	defer func() {
		if err != nil {
			_ = stopTracing(context.Background())
			return
		}
		closeRest := closeAll
		closeAll = func() {
			closeRest()
			sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			if err := stopTracing(sctx); err != nil {
				log.Warn("tracing: flush at exit", "err", err)
			}
		}
	}()
	var natsOpts []nats.Option
	if opts.FailFastWhenDisconnected {
		natsOpts = append(natsOpts, nats.ReconnectBufSize(-1))
	}
	b, err := bus.Open(ctx, cfg, opts.Name, log, natsOpts...)
	if err != nil {
		return Deps{}, nil, fmt.Errorf("open bus: %w", err)
	}
	deps = Deps{Config: cfg, Bus: b, Audit: audit.NewPublisher(b.JS, log), Log: log}
	AuditConfigWarnings(ctx, deps.Audit, opts.Name, cfg)
	closeAll = b.Close
	if opts.SystemDB {
		db, err := store.Open(ctx, cfg.DatabaseURL, cfg.SQLitePath())
		if err != nil {
			b.Close()
			return Deps{}, nil, fmt.Errorf("open system db: %w", err)
		}
		if _, err := db.Migrate(ctx); err != nil {
			_ = db.Close()
			b.Close()
			return Deps{}, nil, fmt.Errorf("migrate system db: %w", err)
		}
		deps.DB = db
		closeAll = func() { _ = db.Close(); b.Close() }
	}
	return deps, closeAll, nil
}

// SignalContext is cancelled on SIGINT or SIGTERM.
func SignalContext() (context.Context, context.CancelFunc) {
	return signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
}

// Exit logs the redacted form of err (if any, see ExitMessage) as JSON
// and exits 1; nil exits 0.
func Exit(err error) {
	if err != nil {
		LogExit(os.Stderr, err, os.Getenv)
		os.Exit(1)
	}
	os.Exit(0)
}

// LogExit writes the JSON line Exit logs for err to w: its message is
// ExitMessage(err, getenv), never err.Error() itself.
func LogExit(w io.Writer, err error, getenv func(string) string) {
	slog.New(slog.NewJSONHandler(w, nil)).Error("exit", "err", ExitMessage(err, getenv))
}

// ExitMessage is err's text with every secret removed: each configuration
// problem (config.VarError) in its redacted form, then what Redact
// removes (the values of the secret variables getenv holds, the passwords
// of connection strings and of any URL in the text).
func ExitMessage(err error, getenv func(string) string) string {
	msg := err.Error()
	for _, v := range config.Problems(err) {
		msg = strings.ReplaceAll(msg, v.Error(), v.Redacted())
	}
	return Redact(msg, getenv)
}
