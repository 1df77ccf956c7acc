package httpapi

import (
	"errors"
	"math"
	"net/http"
	"strconv"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/insightops/insightops/shared/audit"
	"github.com/insightops/insightops/shared/auth"
	"github.com/insightops/insightops/shared/store"
)

// Input bounds of a login request.
const (
	maxEmailLen    = 254
	maxPasswordLen = 1024
)

type loginRequest struct {
	Email    string `json:"email"`
	Password string `json:"password"`
}

type loginResponse struct {
	Token     string    `json:"token"`
	TokenType string    `json:"token_type"`
	ExpiresAt time.Time `json:"expires_at"`
	Role      auth.Role `json:"role"`
	// MustChangePassword: every route but POST /auth/password and
	// POST /auth/logout answers 403 password_change_required until then.
	MustChangePassword bool `json:"must_change_password"`
}

// parseLogin decodes and checks the body of POST /auth/login: a required
// JSON object {email, password}, both non-empty and within bounds. The
// returned request holds the e-mail normalised (store.NormalizeEmail); a
// bad body is a 4xx *APIError.
func (s *Server) parseLogin(c echo.Context) (loginRequest, error) {
	var req loginRequest
	if err := decodeJSON(c, &req, false); err != nil {
		return loginRequest{}, err
	}
	req.Email = store.NormalizeEmail(req.Email)
	switch {
	case req.Email == "" || req.Password == "":
		return loginRequest{}, badRequest("email and password are required")
	case len(req.Email) > maxEmailLen:
		return loginRequest{}, badRequest("email is longer than %d characters", maxEmailLen)
	case len(req.Password) > maxPasswordLen:
		return loginRequest{}, badRequest("password is longer than %d bytes", maxPasswordLen)
	}
	return req, nil
}

// login answers POST /auth/login: {email, password} → {token, expires_at,
// role}. Attempts are rate-limited per source IP and per e-mail (429 with
// Retry-After); an unknown or inactive user costs the same bcrypt
// comparison as a wrong password and gets the same answer. Every attempt is
// audited as auth.login, never with the password.
func (s *Server) login(c echo.Context) error {
	req, err := s.parseLogin(c)
	if err != nil {
		return err
	}
	email := req.Email

	ev := audit.Event{Actor: email, Action: "auth.login", Resource: "auth"}
	now := time.Now()
	ok, wait := s.loginByIP.allow(c.RealIP(), now)
	limitedBy := "source_ip"
	if ok {
		ok, wait = s.loginByEmail.allow(email, now)
		limitedBy = "email"
	}
	if !ok {
		ev.Outcome, ev.Detail = audit.Denied, map[string]any{"reason": "rate_limited", "limited_by": limitedBy}
		s.auditAnonymous(c, ev)
		secs := int(math.Ceil(wait.Seconds()))
		c.Response().Header().Set("Retry-After", strconv.Itoa(max(1, secs)))
		return apiErr(http.StatusTooManyRequests, CodeRateLimited, "too many login attempts; retry in %d seconds", max(1, secs))
	}

	// One bcrypt comparison per CPU at a time.
	select {
	case s.bcryptSlots <- struct{}{}:
		defer func() { <-s.bcryptSlots }()
	case <-c.Request().Context().Done():
		return apiErr(http.StatusServiceUnavailable, CodeUnavailable, "request cancelled")
	}

	user, err := s.db.UserByEmail(c.Request().Context(), email)
	hash, reason := user.PasswordHash, ""
	switch {
	case errors.Is(err, store.ErrNotFound):
		hash, reason = s.dummyHash, "unknown_user"
	case err != nil:
		hash, reason = s.dummyHash, "system_db_unavailable"
	}
	// Always compare, so every failure takes a bcrypt comparison's time.
	match := auth.CheckPassword(hash, req.Password)
	var role auth.Role
	if reason == "" {
		switch r, rerr := auth.ParseRole(user.Role); {
		case !match:
			reason = "bad_password"
		case !user.Active:
			reason = "inactive_user"
		case rerr != nil:
			reason = "invalid_role"
			s.log.Error("user has an invalid role", "user_id", user.ID, "role", user.Role)
		default:
			role = r
		}
	}
	if reason == "system_db_unavailable" {
		ev.Outcome, ev.Detail = audit.Failure, map[string]any{"reason": reason}
		s.recordAudit(c, ev)
		return unavailable("the system database", err)
	}
	if reason != "" {
		ev.Outcome, ev.Detail = audit.Failure, map[string]any{"reason": reason}
		s.recordAudit(c, ev)
		return apiErr(http.StatusUnauthorized, CodeInvalidCredentials, "invalid email or password")
	}

	ev.Actor, ev.Role, ev.Outcome = user.Email, string(role), audit.Success
	ev.Detail = map[string]any{"must_change_password": user.MustChangePassword}
	s.recordAudit(c, ev)
	return s.issueLogin(c, user, role)
}
