package httpapi

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/dustin/go-humanize"
	"github.com/labstack/echo/v4"
	"github.com/nats-io/nats.go"

	"github.com/insightops/insightops/shared/bus"
	"github.com/insightops/insightops/shared/jobs"
	"github.com/insightops/insightops/shared/metrics"
	"github.com/insightops/insightops/shared/presence"
	"github.com/insightops/insightops/shared/store"
)

// Health statuses.
const (
	StatusOK       = "ok"
	StatusDegraded = "degraded"
	StatusDown     = "down"
)

// health answers GET /health: the process is alive.
func (s *Server) health(c echo.Context) error {
	return c.JSON(http.StatusOK, map[string]string{"status": StatusOK})
}

type readyBody struct {
	Status string            `json:"status"`
	Checks map[string]string `json:"checks"`
	Error  *errorDetail      `json:"error,omitempty"`
}

// ReadyCacheTTL is how long GET /ready answers from its last check: the
// route is anonymous, so a flood of it costs one check of the bus per TTL,
// not one per request.
const ReadyCacheTTL = 2 * time.Second

// readyCache holds the last readiness check. Requests during a check wait
// for it instead of starting their own.
type readyCache struct {
	mu     sync.Mutex
	ttl    time.Duration
	at     time.Time // of the last check; zero: none yet
	ok     bool
	checks map[string]string
	// runs counts the checks made (tests and the metric read it).
	runs atomic.Int64
}

// ready answers GET /ready: 200 when NATS is connected and every stream
// and bucket of the contract exists, else 503 naming what is missing. The
// answer is that of a check at most ReadyCacheTTL old.
func (s *Server) ready(c echo.Context) error {
	ok, checks := s.readiness.get(c.Request().Context(), s.checkReady)
	if ok {
		return c.JSON(http.StatusOK, readyBody{Status: "ready", Checks: checks})
	}
	return c.JSON(http.StatusServiceUnavailable, readyBody{Status: "not_ready", Checks: checks,
		Error: &errorDetail{Code: CodeUnavailable, Message: "not ready: see checks"}})
}

// get returns the cached outcome, checking again (with check) when it is
// older than the TTL.
func (r *readyCache) get(ctx context.Context, check func(context.Context) (bool, map[string]string)) (bool, map[string]string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.at.IsZero() || time.Since(r.at) >= r.ttl {
		// The check outlives a caller that goes away: the others wait on it.
		r.ok, r.checks = check(context.WithoutCancel(ctx))
		r.at = time.Now()
		r.runs.Add(1)
		metrics.ReadyChecks.Inc()
	}
	return r.ok, maps.Clone(r.checks)
}

// checkReady checks the bus once: NATS connected, every stream and bucket present.
func (s *Server) checkReady(ctx context.Context) (bool, map[string]string) {
	ctx, cancel := context.WithTimeout(ctx, s.readTimeout)
	defer cancel()
	checks := map[string]string{}
	ok := true
	if st := s.bus.Conn.Status(); st != nats.CONNECTED {
		checks["nats"] = "not connected (" + st.String() + ")"
		ok = false
	} else {
		checks["nats"] = StatusOK
		for _, name := range []string{bus.StreamJobs, bus.StreamDLQ, bus.StreamAudit} {
			if _, err := s.bus.JS.Stream(ctx, name); err != nil {
				// The answer is public: the error's text (server names,
				// permissions) goes to the log only.
				checks["stream "+name] = "missing or unreachable"
				s.log.Warn("ready: stream check failed", "stream", name, "err", err)
				ok = false
			} else {
				checks["stream "+name] = StatusOK
			}
		}
		for _, name := range []string{bus.BucketJobs, bus.BucketLocks, bus.BucketWorkers} {
			if _, err := s.bus.JS.KeyValue(ctx, name); err != nil {
				// The answer is public: the error's text (server names,
				// permissions) goes to the log only.
				checks["bucket "+name] = "missing or unreachable"
				s.log.Warn("ready: bucket check failed", "bucket", name, "err", err)
				ok = false
			} else {
				checks["bucket "+name] = StatusOK
			}
		}
	}
	return ok, checks
}

// Component is the health of one dependency.
type Component struct {
	Status string `json:"status"`
	Detail string `json:"detail,omitempty"`
	// LatencyMS is how long the check took.
	LatencyMS float64 `json:"latency_ms"`
	// CreatedAt and VerifiedAt are set on the "backups" component: when
	// the newest archive was made and when the newest verified one was;
	// VerifiedAt on "last_drill": when the last restore drill ran.
	CreatedAt  *time.Time `json:"created_at,omitempty"`
	VerifiedAt *time.Time `json:"verified_at,omitempty"`
}

// HealthReport is the body of GET /admin/db/health.
type HealthReport struct {
	Status     string                       `json:"status"`
	Components map[string]Component         `json:"components"`
	Workers    map[string][]presence.Worker `json:"workers"`
	// Queue is the depth of each worker kind's consumer on JOBS.
	Queue map[string]QueueDepth `json:"queue,omitempty"`
	Error *errorDetail          `json:"error,omitempty"`
}

// QueueDepth is one worker kind's backlog: commands waiting, and
// delivered but not yet acknowledged (running).
type QueueDepth struct {
	Pending    uint64 `json:"pending"`
	AckPending int    `json:"ack_pending"`
}

// dbHealth answers GET /admin/db/health: NATS (connected and JetStream
// answering), the System DB (ping), the live workers of each kind, and the
// vector store (Chroma's heartbeat; "disabled" without CHROMA_URL), the
// target DB, the freshness of backups and the last restore drill
// ("last_drill", health_drill.go). A down dependency makes the
// report "down" (503); a worker kind without any live instance, or a
// stale backup (see backupsHealth), makes it "degraded" (200): the API
// works but those jobs will wait, or the data is at risk.
func (s *Server) dbHealth(c echo.Context) error {
	ctx, cancel := context.WithTimeout(c.Request().Context(), s.readTimeout)
	defer cancel()
	rep := HealthReport{Status: StatusOK, Components: map[string]Component{}, Workers: map[string][]presence.Worker{}}

	natsUp := false
	start := time.Now()
	switch st := s.bus.Conn.Status(); {
	case st != nats.CONNECTED:
		rep.Components["nats"] = Component{Status: StatusDown, Detail: "not connected (" + st.String() + ")"}
	default:
		if _, err := s.bus.JS.AccountInfo(ctx); err != nil {
			rep.Components["nats"] = Component{Status: StatusDown, Detail: "JetStream unreachable: " + err.Error(), LatencyMS: ms(time.Since(start))}
		} else {
			natsUp = true
			rep.Components["nats"] = Component{Status: StatusOK, Detail: s.bus.Conn.ConnectedUrlRedacted(), LatencyMS: ms(time.Since(start))}
		}
	}

	start = time.Now()
	if err := s.db.Ping(ctx); err != nil {
		s.log.Warn("system db ping failed", "request_id", requestID(c), "err", err)
		rep.Components["system_db"] = Component{Status: StatusDown, Detail: s.db.Describe() + ": ping failed", LatencyMS: ms(time.Since(start))}
	} else {
		rep.Components["system_db"] = Component{Status: StatusOK, Detail: s.db.Describe(), LatencyMS: ms(time.Since(start))}
	}

	for _, k := range jobs.WorkerKinds {
		rep.Workers[k] = []presence.Worker{}
	}
	if natsUp {
		start = time.Now()
		live, err := presence.List(ctx, s.bus.Workers)
		if err != nil {
			rep.Components["workers"] = Component{Status: StatusDown, Detail: "cannot list workers: " + err.Error(), LatencyMS: ms(time.Since(start))}
		} else {
			var missing []string
			for kind, ws := range live {
				rep.Workers[kind] = ws
			}
			for _, k := range jobs.WorkerKinds {
				if len(rep.Workers[k]) == 0 {
					missing = append(missing, k)
				}
			}
			wc := Component{Status: StatusOK, LatencyMS: ms(time.Since(start))}
			if len(missing) > 0 {
				wc.Status, wc.Detail = StatusDegraded, fmt.Sprintf("no live worker of kind %v", missing)
			}
			rep.Components["workers"] = wc
		}
	}

	if natsUp {
		rep.Queue = map[string]QueueDepth{}
		for _, k := range jobs.WorkerKinds {
			cons, err := s.bus.JS.Consumer(ctx, bus.StreamJobs, k)
			if err != nil {
				continue // no replica of that kind ever started: nothing queued for it yet
			}
			if info, err := cons.Info(ctx); err == nil {
				rep.Queue[k] = QueueDepth{Pending: info.NumPending, AckPending: info.NumAckPending}
			}
		}
	}

	// The vector store: ok, down (with the reason) or disabled (no CHROMA_URL); see chroma_health.go.
	rep.Components["chroma"] = s.chromaHealth(ctx)
	// The target DB (see target_routes.go) and the last good backup.
	rep.Components["target_db"] = s.targetDBHealth(ctx)
	rep.Components["backups"] = s.backupsHealth(ctx)
	rep.Components["last_drill"] = s.drillHealth(ctx, time.Now())
	if natsUp {
		rep.Components["audit_stream"] = s.auditStreamHealth(ctx)
	}

	// Every component rolls up, "backups" included: a stale backup (or
	// none a day after init) is degraded, never down — the API works.
	for _, comp := range rep.Components {
		switch {
		case comp.Status == StatusDown:
			rep.Status = StatusDown
		case comp.Status == StatusDegraded && rep.Status == StatusOK:
			rep.Status = StatusDegraded
		}
	}
	if rep.Status == StatusDown {
		rep.Error = &errorDetail{Code: CodeUnavailable, Message: "a dependency is down: see components"}
		return c.JSON(http.StatusServiceUnavailable, rep)
	}
	return c.JSON(http.StatusOK, rep)
}

// AuditStreamWarnRatio is the share of AUDIT_MAX_BYTES above which the
// "audit_stream" component is degraded (the alert
// InsightopsAuditStreamNearLimit fires at the same share).
const AuditStreamWarnRatio = 0.8

// auditStreamHealth is the "audit_stream" component: how full the AUDIT
// stream is; degraded above AuditStreamWarnRatio of its limit (past the
// limit the oldest events leave the stream) or when it cannot be read.
func (s *Server) auditStreamHealth(ctx context.Context) Component {
	start := time.Now()
	used, limit, err := bus.StreamUsage(ctx, s.bus.JS, bus.StreamAudit)
	c := Component{Status: StatusOK, LatencyMS: ms(time.Since(start))}
	switch {
	case err != nil:
		c.Status, c.Detail = StatusDegraded, "cannot read the AUDIT stream: "+err.Error()
	case limit <= 0:
		c.Detail = fmt.Sprintf("%s held, no limit", humanize.IBytes(uint64(used)))
	default:
		ratio := float64(used) / float64(limit)
		c.Detail = fmt.Sprintf("%s of %s held (%.0f%%)", humanize.IBytes(uint64(used)), humanize.IBytes(uint64(limit)), ratio*100)
		if ratio > AuditStreamWarnRatio {
			c.Status = StatusDegraded
			c.Detail += fmt.Sprintf(": over %.0f%% of AUDIT_MAX_BYTES; at the limit the oldest events leave the stream (see the runbook, InsightopsAuditStreamNearLimit)", AuditStreamWarnRatio*100)
		}
	}
	return c
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// BackupMaxAge is how old the newest backup may be before the "backups"
// component is degraded.
const BackupMaxAge = 25 * time.Hour

// targetDBHealth is the "target_db" component: ok when the target answers,
// disabled when not configured, degraded with the reason otherwise (the
// API works without it).
func (s *Server) targetDBHealth(ctx context.Context) Component {
	start := time.Now()
	th := s.targetState(ctx)
	c := Component{LatencyMS: ms(time.Since(start))}
	switch th.Status {
	case TargetDisabled:
		c.Status, c.Detail = StatusDisabled, "ENABLE_TARGET_DB is off and there is no runtime copy"
	case TargetHealthy:
		c.Status, c.Detail = StatusOK, fmt.Sprintf("%s: %d tables, %d views", th.Path, th.Tables, th.Views)
	default:
		c.Status, c.Detail = StatusDegraded, th.Path+": "+th.Error
	}
	return c
}

// backupsHealth is the "backups" component: ok when the newest archive is
// younger than BackupMaxAge, degraded when it is older. With no archive at
// all it is ok ("no backup yet") until the system has been initialised
// (init.completed_at) for BackupMaxAge, degraded after that, so a fresh
// install is not degraded. A backup store that cannot be read is degraded.
// It never fails the request.
func (s *Server) backupsHealth(ctx context.Context) Component {
	start := time.Now()
	ctx, cancel := context.WithTimeout(ctx, s.readTimeout)
	defer cancel()
	st, err := s.backupStore(ctx)
	if err != nil {
		return Component{Status: StatusDegraded, Detail: "backup store unavailable: " + err.Error(), LatencyMS: ms(time.Since(start))}
	}
	infos, err := st.List(ctx)
	c := Component{LatencyMS: ms(time.Since(start))}
	if err != nil {
		c.Status, c.Detail = StatusDegraded, "cannot list backups in "+st.Describe()+": "+err.Error()
		return c
	}
	for _, in := range infos {
		if in.Meta.Verified() {
			v := in.Meta.Verification.VerifiedAt.UTC()
			c.VerifiedAt = &v
			break
		}
	}
	if len(infos) == 0 {
		c.Status, c.Detail = s.noBackupStatus(ctx)
		return c
	}
	newest := infos[0]
	created := newest.Created.UTC()
	c.CreatedAt = &created
	if time.Since(created) < BackupMaxAge {
		c.Status, c.Detail = StatusOK, "last backup "+newest.Name
	} else {
		c.Status, c.Detail = StatusDegraded, "no backup in the last 25 hours (last: "+newest.Name+")"
	}
	return c
}

// noBackupStatus is the "backups" status when there is no archive: ok
// before init completed or within BackupMaxAge of it, degraded after.
func (s *Server) noBackupStatus(ctx context.Context) (status, detail string) {
	v, err := s.db.GetConfig(ctx, store.ConfigInitCompletedAt)
	if errors.Is(err, store.ErrNotFound) {
		return StatusOK, "no backup yet (not initialised)"
	}
	if err != nil {
		return StatusDegraded, "no backup yet, and the init time cannot be read: " + err.Error()
	}
	at, err := time.Parse(time.RFC3339, v)
	if err != nil {
		return StatusDegraded, fmt.Sprintf("no backup yet, and %s is not a time: %q", store.ConfigInitCompletedAt, v)
	}
	if since := time.Since(at); since >= BackupMaxAge {
		return StatusDegraded, fmt.Sprintf("no backup at all, %s after init (%s)", since.Round(time.Minute), at.UTC().Format(time.RFC3339))
	}
	return StatusOK, "no backup yet (initialised " + at.UTC().Format(time.RFC3339) + ")"
}
