package httpapi

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"runtime/debug"
	"strconv"
	"strings"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/labstack/echo/v4/middleware"

	"github.com/insightops/insightops/shared/audit"
	"github.com/insightops/insightops/shared/auth"
	"github.com/insightops/insightops/shared/metrics"
	"github.com/insightops/insightops/shared/tracing"
)

const (
	ctxClaims     = "insightops.claims"
	ctxRequestID  = "insightops.request_id"
	ctxMustChange = "insightops.must_change_password"
	// maxRequestIDLen bounds a client-supplied X-Request-ID.
	maxRequestIDLen = 128
)

// buildEcho creates the echo instance: middleware, error handler, routes.
func (s *Server) buildEcho() error {
	e := echo.New()
	e.HideBanner, e.HidePort = true, true
	e.HTTPErrorHandler = s.handleError
	e.IPExtractor = ipExtractor(s.cfg.TrustedProxies)

	e.Pre(sanitizeRequestID)
	e.Use(middleware.RequestIDWithConfig(middleware.RequestIDConfig{
		RequestIDHandler: func(c echo.Context, id string) { c.Set(ctxRequestID, id) },
	}))
	e.Use(traceRequests)
	e.Use(s.accessLog())
	e.Use(s.recoverPanics)
	e.Use(limitBody(MaxBodyBytes, map[string]int64{ArchiveImportPath: importBodyLimit(s.cfg)}))
	e.Use(secureHeaders)
	if err := s.registerRoutes(e); err != nil {
		return err
	}
	if err := s.mountConsole(e); err != nil {
		return err
	}
	s.e = e
	return nil
}

// ipExtractor decides a request's source IP (rate-limit keys, audit
// source_ip): the direct peer, unless TRUSTED_PROXIES is set and the peer
// is in it; then X-Forwarded-For is read from the right, skipping the
// trusted proxies. No address is trusted by default — not loopback, not a
// private network — so a client cannot choose its own source IP by
// sending the header.
func ipExtractor(trusted []netip.Prefix) echo.IPExtractor {
	if len(trusted) == 0 {
		return echo.ExtractIPDirect()
	}
	opts := []echo.TrustOption{echo.TrustLoopback(false), echo.TrustLinkLocal(false), echo.TrustPrivateNet(false)}
	for _, p := range trusted {
		opts = append(opts, echo.TrustIPRange(&net.IPNet{IP: p.Addr().AsSlice(), Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen())}))
	}
	return echo.ExtractIPFromXFFHeader(opts...)
}

// sanitizeRequestID drops a client X-Request-ID that is not a short token
// of safe characters, so the id logged and audited is always well formed
// (the RequestID middleware then generates one).
func sanitizeRequestID(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		h := c.Request().Header
		if id := h.Get(echo.HeaderXRequestID); id != "" && !validRequestID(id) {
			h.Del(echo.HeaderXRequestID)
		}
		return next(c)
	}
}

func validRequestID(id string) bool {
	if len(id) > maxRequestIDLen {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		ok := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.' || c == ':'
		if !ok {
			return false
		}
	}
	return true
}

// requestID is the request's id (set by the RequestID middleware).
func requestID(c echo.Context) string {
	if id, ok := c.Get(ctxRequestID).(string); ok {
		return id
	}
	return c.Response().Header().Get(echo.HeaderXRequestID)
}

// accessLog logs one JSON line per request. It calls the error handler
// itself, so the status logged is the one answered.
func (s *Server) accessLog() echo.MiddlewareFunc {
	logger := middleware.RequestLoggerWithConfig(middleware.RequestLoggerConfig{
		HandleError:  true,
		LogLatency:   true,
		LogMethod:    true,
		LogRoutePath: true,
		LogURIPath:   true,
		LogStatus:    true,
		LogRemoteIP:  true,
		LogRequestID: true,
		LogValuesFunc: func(c echo.Context, v middleware.RequestLoggerValues) error {
			lvl := slog.LevelInfo
			if v.Status >= 500 {
				lvl = slog.LevelError
			}
			route := v.RoutePath
			if route == "" {
				route = "(none)"
			}
			metrics.HTTPRequests.WithLabelValues(route, v.Method, strconv.Itoa(v.Status)).Inc()
			metrics.HTTPDuration.WithLabelValues(route, v.Method).Observe(v.Latency.Seconds())
			s.log.LogAttrs(context.Background(), lvl, "http request",
				slog.String("request_id", v.RequestID),
				slog.String("method", v.Method),
				slog.String("route", route),
				slog.String("path", v.URIPath),
				slog.Int("status", v.Status),
				slog.Float64("latency_ms", float64(v.Latency.Microseconds())/1000),
				slog.String("remote_ip", v.RemoteIP),
				slog.String("trace_id", tracing.TraceID(c.Request().Context())),
			)
			return nil
		},
	})
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		h := logger(next)
		return func(c echo.Context) error {
			if err := h(c); err != nil && !c.Response().Committed {
				return err
			}
			// Already answered by the error handler the logger called.
			return nil
		}
	}
}

// recoverPanics turns a panic into a logged error (with its stack) and a
// generic 500 JSON answer without any detail.
func (s *Server) recoverPanics(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) (err error) {
		defer func() {
			r := recover()
			if r == nil {
				return
			}
			if r == http.ErrAbortHandler { //nolint:errorlint // sentinel compared as net/http does
				panic(r)
			}
			s.log.Error("panic in handler", "request_id", requestID(c), "panic", fmt.Sprint(r), "stack", string(debug.Stack()))
			err = &APIError{Status: http.StatusInternalServerError, Code: CodeInternal, Message: "internal error"}
		}()
		return next(c)
	}
}

// limitBody refuses bodies over limit bytes (or the limit perRoute gives
// the matched route's path): at once from Content-Length, otherwise when
// the reader passes the limit (decodeJSON maps that to 413).
func limitBody(limit int64, perRoute map[string]int64) echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			limit := limit
			if l, ok := perRoute[c.Path()]; ok {
				limit = l
			}
			req := c.Request()
			if req.ContentLength > limit {
				return echo.ErrStatusRequestEntityTooLarge
			}
			// The raw writer, so net/http closes the connection after a
			// body past the limit instead of draining it.
			req.Body = http.MaxBytesReader(c.Response().Writer, req.Body, limit)
			return next(c)
		}
	}
}

// secureHeaders marks every answer as not cacheable (tokens, job records)
// and not to be content-sniffed.
func secureHeaders(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		h := c.Response().Header()
		h.Set("Cache-Control", "no-store")
		h.Set("X-Content-Type-Options", "nosniff")
		return next(c)
	}
}

// authenticate requires a valid "Authorization: Bearer <token>" – a login
// JWT or a service token (auth.ServiceTokenPrefix) – and stores its claims
// in the context. A login token's user is rechecked against the System DB
// (at most every AccountRecheck): an inactive or removed user, or a token
// revoked by a password, role or active change or by a logout, is refused;
// a demoted one acts with its current role; one that must change its
// password may only call the routes of passwordChangeRoutes (403
// password_change_required elsewhere). Every refusal is a 401 with
// WWW-Authenticate: Bearer (503 when the System DB cannot be read and
// nothing is cached: never allowed), audited as auth.denied (without the
// token).
func (s *Server) authenticate(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		h := c.Request().Header.Get(echo.HeaderAuthorization)
		scheme, tok, found := strings.Cut(h, " ")
		tok = strings.TrimSpace(tok)
		var reason, msg string
		switch {
		case h == "":
			reason, msg = "missing_token", "missing Authorization: Bearer token"
		case !found || !strings.EqualFold(scheme, "Bearer") || tok == "" || strings.ContainsAny(tok, " \t"):
			reason, msg = "malformed_authorization", "malformed Authorization header; want: Bearer <token>"
		}
		var actor string
		if reason == "" && auth.IsServiceToken(tok) {
			claims, why, err := s.serviceTokens.check(c.Request().Context(), tok)
			if err != nil {
				s.log.Warn("service token check: system db unreadable", "err", err, "request_id", requestID(c))
			}
			if why == "" {
				c.Set(ctxClaims, claims)
				return next(c)
			}
			actor, reason, msg = claims.Subject, why, "invalid, expired or revoked service token"
		} else if reason == "" {
			claims, err := s.tokens.Verify(tok)
			switch {
			case err == nil:
				// The token is genuine; is its user still allowed?
				role, mustChange, why, aerr := s.accounts.check(c.Request().Context(), claims)
				if aerr != nil {
					s.log.Warn("account recheck: system db unreadable", "user", claims.Subject, "refused", why != "", "err", aerr, "request_id", requestID(c))
				}
				if why == "" {
					claims.Role = role
					c.Set(ctxClaims, claims)
					c.Set(ctxMustChange, mustChange)
					if mustChange && !passwordChangeRoutes[c.Request().Method+" "+c.Path()] {
						return s.passwordChangeRequired(c, claims)
					}
					return next(c)
				}
				actor, reason, msg = claims.Subject, why, "this token was revoked or its account is no longer active or was changed; log in again"
			case errors.Is(err, auth.ErrExpired):
				reason, msg = "expired_token", "token expired; log in again"
			default:
				reason, msg = "invalid_token", "invalid token"
			}
		}
		status := http.StatusUnauthorized
		if reason == reasonSystemDB {
			status = http.StatusServiceUnavailable
		}
		s.auditAnonymous(c, audit.Event{
			Actor:  actor,
			Action: "auth.denied", Resource: "auth", Outcome: audit.Denied,
			Detail: map[string]any{"reason": reason, "status": status, "method": c.Request().Method, "route": c.Path()},
		})
		if status == http.StatusServiceUnavailable {
			return apiErr(status, CodeUnavailable, "the system database is unavailable, so the token cannot be checked; retry later")
		}
		c.Response().Header().Set(echo.HeaderWWWAuthenticate, `Bearer realm="insightops"`)
		return apiErr(http.StatusUnauthorized, CodeUnauthorized, "%s", msg)
	}
}

// passwordChangeRequired refuses (403, audited) a caller who must change
// its password first.
func (s *Server) passwordChangeRequired(c echo.Context, cl auth.Claims) error {
	s.recordAudit(c, audit.Event{
		Actor: cl.Subject, Role: string(cl.Role),
		Action: "auth.denied", Resource: "auth", Outcome: audit.Denied,
		Detail: map[string]any{"reason": CodePasswordChangeRequired, "status": http.StatusForbidden, "method": c.Request().Method, "route": c.Path()},
	})
	return apiErr(http.StatusForbidden, CodePasswordChangeRequired, "change your password first: POST /auth/password {current_password, new_password}")
}

// requireRole refuses (403, audited) a caller whose role is below need.
func (s *Server) requireRole(need auth.Role) echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			cl, ok := claimsOf(c)
			if !ok {
				// authenticate did not run: a wiring bug, never a pass.
				return apiErr(http.StatusUnauthorized, CodeUnauthorized, "authentication required")
			}
			if auth.Allows(cl.Role, need) {
				return next(c)
			}
			s.recordAudit(c, audit.Event{
				Actor: cl.Subject, Role: string(cl.Role),
				Action: "auth.denied", Resource: "auth", Outcome: audit.Denied,
				Detail: map[string]any{"reason": "insufficient_role", "status": http.StatusForbidden, "required_role": string(need), "method": c.Request().Method, "route": c.Path()},
			})
			return apiErr(http.StatusForbidden, CodeForbidden, "this route needs the %s role; you are %s", need, cl.Role)
		}
	}
}

// requireConfirm guards destructive routes: the request must carry
// ?confirm=true. Routes flagged Confirm in the route table get it
// (after their admin role check); handlers may call it too.
func requireConfirm(c echo.Context) error {
	if c.QueryParam("confirm") != "true" {
		return apiErr(http.StatusBadRequest, CodeConfirmationRequired, "this operation is destructive: repeat it with ?confirm=true")
	}
	return nil
}

func confirmMiddleware(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		if err := requireConfirm(c); err != nil {
			return err
		}
		return next(c)
	}
}

// claimsOf returns the authenticated caller's claims.
func claimsOf(c echo.Context) (auth.Claims, bool) {
	cl, ok := c.Get(ctxClaims).(auth.Claims)
	return cl, ok
}

// recordAudit fills in the request's source and id and publishes e, bounded
// by AuditTimeout and detached from the request's cancellation; a failure
// is logged, not returned.
func (s *Server) recordAudit(c echo.Context, e audit.Event) { s.recordAuditWithin(c, e, AuditTimeout) }

// auditAnonymous audits an event caused by an unauthenticated caller,
// at most AnonymousAuditLimit per source IP; beyond it the event is only
// logged, so anonymous traffic cannot flood the append-only AUDIT stream.
func (s *Server) auditAnonymous(c echo.Context, e audit.Event) {
	if e.Actor == "" {
		e.Actor = "anonymous"
	}
	if ok, _ := s.noisyAudit.allow(c.RealIP(), time.Now()); !ok {
		s.log.Warn("audit suppressed (per-IP limit)", "action", e.Action, "source_ip", c.RealIP(), "request_id", requestID(c), "detail", e.Detail)
		return
	}
	s.recordAudit(c, e)
}
