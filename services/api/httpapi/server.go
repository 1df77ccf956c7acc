// Package httpapi is the insightops HTTP API: a thin echo server that
// authenticates callers, validates their input, turns operations into jobs
// on the bus (answering 202 with the job id) and reads job records back.
// It never does the work itself.
//
// Every route is declared once, in the route table of routes.go, with the
// minimum role it needs; New registers them and refuses a table in which an
// /admin route has no role. Errors are always JSON
// {"error": {"code": …, "message": …}} (see errors.go), never a stack trace.
package httpapi

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/insightops/insightops/shared/archivesig"
	"github.com/insightops/insightops/shared/audit"
	"github.com/insightops/insightops/shared/auth"
	"github.com/insightops/insightops/shared/bus"
	"github.com/insightops/insightops/shared/config"
	"github.com/insightops/insightops/shared/jobs"
	"github.com/insightops/insightops/shared/store"
)

// Defaults of the server's bounds.
const (
	// MaxBodyBytes is the largest request body accepted (413 beyond).
	MaxBodyBytes = 1 << 20
	// SubmitTimeout bounds a job submission (record write + publish): when
	// the bus does not answer within it, the request fails with 503
	// instead of hanging.
	SubmitTimeout = 5 * time.Second
	// ReadTimeout bounds reads of job records and bus health checks.
	ReadTimeout = 5 * time.Second
	// AuditTimeout bounds one audit publish; a lost event is logged.
	AuditTimeout = 2 * time.Second
	// SSEKeepAlive is the interval of comment lines on an idle event stream.
	SSEKeepAlive = 15 * time.Second
	// DefaultAuditVerifyTimeout bounds GET /admin/db/audit/verify when the
	// configuration gives no AUDIT_VERIFY_TIMEOUT.
	DefaultAuditVerifyTimeout = 60 * time.Second
	// DefaultShutdownTimeout bounds the graceful stop when the
	// configuration gives none.
	DefaultShutdownTimeout = 10 * time.Second
)

// Deps are what the API needs from its process.
type Deps struct {
	Config config.Config
	Bus    *bus.Bus
	DB     *store.DB
	Log    *slog.Logger
	// Listening, when set, is called once Run listens on the API address
	// (the all-in-one prints its banner then, not before the API is up).
	Listening func(addr net.Addr)
}

// Server is the API: an echo instance with its routes and the handles the
// handlers share. Build it with New.
type Server struct {
	cfg    config.Config
	bus    *bus.Bus
	db     *store.DB
	log    *slog.Logger
	e      *echo.Echo
	tokens auth.Issuer
	jobs   *jobs.Store
	pub    *jobs.Publisher
	audit  *audit.Publisher
	// accounts rechecks a token's user against the System DB.
	accounts *accounts
	// serviceTokens checks service tokens against the System DB.
	serviceTokens *serviceTokens

	// dummyHash is compared against when a login names no known user, so
	// that answer takes as long as a wrong password.
	dummyHash string
	// bcryptSlots bounds concurrent password checks (bcrypt is CPU-bound).
	bcryptSlots chan struct{}

	loginByIP    *keyedLimiter
	loginByEmail *keyedLimiter
	// noisyAudit bounds audit events unauthenticated callers can cause per
	// source IP (401s, rate-limited logins): the AUDIT stream is
	// append-only, so it must not be fillable by anonymous traffic.
	noisyAudit *keyedLimiter
	// targetTests bounds POST /admin/db/target/test per user.
	targetTests *keyedLimiter
	// targetPolicy is what that route may reach.
	targetPolicy targetPolicy

	submitTimeout time.Duration
	readTimeout   time.Duration
	keepAlive     time.Duration

	closing     chan struct{} // closed on shutdown: event streams end
	closeOnce   sync.Once
	liveStreams atomic.Int64
	// streamsByUser bounds the event streams each user holds open.
	streamsByUser *userSlots
	// readiness caches GET /ready's check.
	readiness *readyCache
	// auditVerifySlot lets one audit chain verification run at a time.
	auditVerifySlot chan struct{}
	// auditVerifyTimeout bounds one (AUDIT_VERIFY_TIMEOUT).
	auditVerifyTimeout time.Duration

	// backups is the backup store, opened on first use (backup_routes.go).
	backups backupStoreCache
	// keys check listed archives' signatures and sign imports; nil when
	// the API has no key (archive_routes.go, apiKeys).
	keys *archivesig.Keyring
}

// New builds the server and its echo instance. Deps.Bus and Deps.DB are
// required. With APP_ENV=production it refuses to start while an active
// admin's password is a known default (ErrDefaultAdminPassword). The JWT secret is Config.JWTSecret or, in development only, a
// random one kept in DATA_DIR/jwt.secret.
func New(deps Deps) (*Server, error) {
	if deps.Bus == nil || deps.Bus.JS == nil || deps.Bus.Jobs == nil || deps.Bus.Workers == nil {
		return nil, errors.New("httpapi: Deps.Bus must be an opened bus")
	}
	if deps.DB == nil {
		return nil, errors.New("httpapi: Deps.DB is required")
	}
	log := deps.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if err := refuseDefaultPasswords(deps.Config, deps.DB); err != nil {
		return nil, err
	}
	secret, err := jwtSecret(deps.Config, log)
	if err != nil {
		return nil, err
	}
	keys, err := apiKeys(deps.Config, log)
	if err != nil {
		return nil, err
	}
	ttl := deps.Config.JWTTTL
	if ttl <= 0 {
		ttl = auth.DefaultTTL
	}
	dummy, err := auth.HashPassword("insightops-dummy-password-for-timing")
	if err != nil {
		return nil, fmt.Errorf("httpapi: dummy password hash: %w", err)
	}
	jobStore := jobs.NewStore(deps.Bus.Jobs)
	s := &Server{
		cfg:                deps.Config,
		bus:                deps.Bus,
		db:                 deps.DB,
		log:                log,
		tokens:             auth.Issuer{Secret: secret, TTL: ttl},
		jobs:               jobStore,
		pub:                jobs.NewPublisher(deps.Bus.JS, jobStore, deps.Config.JobMaxAttempts),
		audit:              audit.NewPublisher(deps.Bus.JS, log),
		accounts:           newAccounts(deps.DB, AccountRecheck),
		serviceTokens:      newServiceTokens(deps.DB, AccountRecheck),
		dummyHash:          dummy,
		bcryptSlots:        make(chan struct{}, bcryptConcurrency()),
		loginByIP:          newKeyedLimiter(LoginLimitPerIP),
		loginByEmail:       newKeyedLimiter(LoginLimitPerEmail),
		noisyAudit:         newKeyedLimiter(AnonymousAuditLimit),
		targetTests:        newKeyedLimiter(TargetTestLimit),
		targetPolicy:       newTargetPolicy(deps.Config),
		submitTimeout:      SubmitTimeout,
		readTimeout:        ReadTimeout,
		keepAlive:          SSEKeepAlive,
		closing:            make(chan struct{}),
		streamsByUser:      newUserSlots(MaxStreamsPerUser),
		readiness:          &readyCache{ttl: ReadyCacheTTL},
		auditVerifySlot:    make(chan struct{}, 1),
		auditVerifyTimeout: cmp.Or(deps.Config.AuditVerifyTimeout, DefaultAuditVerifyTimeout),
		keys:               keys,
	}
	if err := s.buildEcho(); err != nil {
		return nil, err
	}
	return s, nil
}

// Handler returns the server as an http.Handler (for httptest and embedding).
func (s *Server) Handler() http.Handler { return s.e }

// Echo returns the echo instance (e.Routes() lists what is registered).
func (s *Server) Echo() *echo.Echo { return s.e }

// CloseStreams ends every open Server-Sent Events stream; Run calls it
// when shutting down, since a graceful shutdown waits for open requests.
func (s *Server) CloseStreams() { s.closeOnce.Do(func() { close(s.closing) }) }

// Run serves the API on Config.APIAddr until ctx is cancelled, then stops
// gracefully: open event streams are ended and in-flight requests get
// Config.ShutdownTimeout (default 10s) to finish.
func Run(ctx context.Context, deps Deps) error {
	s, err := New(deps)
	if err != nil {
		return err
	}
	ln, err := (&net.ListenConfig{}).Listen(ctx, "tcp", deps.Config.APIAddr)
	if err != nil {
		return fmt.Errorf("httpapi: listen on %s: %w", deps.Config.APIAddr, err)
	}
	if deps.Listening != nil {
		deps.Listening(ln.Addr())
	}
	return s.Serve(ctx, ln)
}

// Serve serves on ln until ctx is cancelled, then shuts down gracefully
// (see Run). It closes ln.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	e := s.e
	e.Listener = ln
	e.Server.ReadHeaderTimeout = 10 * time.Second
	e.Server.ReadTimeout = 30 * time.Second
	e.Server.IdleTimeout = 120 * time.Second
	// No WriteTimeout: event streams stay open for as long as a job runs.
	e.Server.RegisterOnShutdown(s.CloseStreams)

	registerBusMetrics(s.bus, s.log)
	errc := make(chan error, 1)
	go func() { errc <- e.Start(ln.Addr().String()) }()
	s.log.Info("api listening", "addr", ln.Addr().String())

	select {
	case err := <-errc:
		if errors.Is(err, http.ErrServerClosed) {
			return nil
		}
		return fmt.Errorf("httpapi: serve: %w", err)
	case <-ctx.Done():
	}
	timeout := s.cfg.ShutdownTimeout
	if timeout <= 0 {
		timeout = DefaultShutdownTimeout
	}
	s.log.Info("api shutting down", "timeout", timeout.String())
	s.CloseStreams()
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), timeout)
	defer cancel()
	if err := e.Shutdown(sctx); err != nil {
		_ = e.Close()
		return fmt.Errorf("httpapi: graceful shutdown: %w", err)
	}
	if err := <-errc; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("httpapi: serve: %w", err)
	}
	s.log.Info("api stopped")
	return nil
}
