package httpapi

import (
	"errors"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/insightops/insightops/shared/audit"
	"github.com/insightops/insightops/shared/auth"
	"github.com/insightops/insightops/shared/config"
	"github.com/insightops/insightops/shared/store"
)

// KnownDefaultPasswords are the passwords the repository documents or
// ships (config.KnownDefaultSecrets, the one list): the policy refuses
// them and, with APP_ENV=production, the API does not start while an
// active admin still has one.
var KnownDefaultPasswords = config.KnownDefaultSecrets

// signedInRoutes are the routes outside /admin that need a token (of any
// role); passwordChangeRoutes the only ones a user who must change its
// password may call.
var (
	signedInRoutes       = map[string]bool{"/auth/password": true, "/auth/logout": true, "/auth/whoami": true}
	passwordChangeRoutes = map[string]bool{http.MethodPost + " /auth/password": true, http.MethodPost + " /auth/logout": true, http.MethodGet + " /auth/whoami": true}
)

var accountRoutes = []routeDef{
	{Route{http.MethodPost, "/auth/password", auth.Viewer, false, "change your own password: {current_password, new_password} → a new token; every older token of yours stops working"}, (*Server).changePassword},
	{Route{http.MethodPost, "/auth/logout", auth.Viewer, false, "revoke the login token presented (204)"}, (*Server).logout},
	{Route{http.MethodGet, "/auth/whoami", auth.Viewer, false, "who the presented token is: {subject, role, kind, service?, expires_at?}"}, (*Server).whoami},

	{Route{http.MethodGet, "/admin/users", auth.Admin, false, "list users"}, (*Server).listUsers},
	{Route{http.MethodPost, "/admin/users", auth.Admin, false, "create a user {email, role, password?} (201); a generated password is shown once; the user must change it at first login"}, (*Server).createUser},
	{Route{http.MethodGet, "/admin/users/:id", auth.Admin, false, "one user"}, (*Server).getUser},
	{Route{http.MethodPatch, "/admin/users/:id", auth.Admin, false, "change a user's role and/or active flag {role?, active?}; 409 last_admin"}, (*Server).patchUser},
	{Route{http.MethodDelete, "/admin/users/:id", auth.Admin, false, "remove a user (204); 409 last_admin"}, (*Server).deleteUser},
}

// userView is a user as the API shows it: never its password hash.
type userView struct {
	ID                 int64      `json:"id"`
	Email              string     `json:"email"`
	Role               string     `json:"role"`
	Active             bool       `json:"active"`
	MustChangePassword bool       `json:"must_change_password"`
	CreatedAt          time.Time  `json:"created_at"`
	PasswordChangedAt  *time.Time `json:"password_changed_at,omitempty"`
}

func viewUser(u store.User) userView {
	v := userView{ID: u.ID, Email: u.Email, Role: u.Role, Active: u.Active, MustChangePassword: u.MustChangePassword, CreatedAt: u.CreatedAt}
	if !u.PasswordChangedAt.IsZero() {
		v.PasswordChangedAt = &u.PasswordChangedAt
	}
	return v
}

type usersResponse struct {
	Users []userView `json:"users"`
}

type createUserRequest struct {
	Email    string `json:"email"`
	Role     string `json:"role"`
	Password string `json:"password,omitempty"`
}

type createUserResponse struct {
	User userView `json:"user"`
	// GeneratedPassword is set only when the request gave none; it is
	// shown this once and never stored in clear.
	GeneratedPassword string `json:"generated_password,omitempty"`
}

type patchUserRequest struct {
	Role   *string `json:"role,omitempty"`
	Active *bool   `json:"active,omitempty"`
}

type changePasswordRequest struct {
	CurrentPassword string `json:"current_password"`
	NewPassword     string `json:"new_password"`
}

// policyError answers a password refused by the policy: 422 with the reason.
func policyError(err error) error {
	var pe *auth.PolicyError
	if errors.As(err, &pe) {
		return apiErr(http.StatusUnprocessableEntity, CodePasswordPolicy, "%s (%s)", pe.Message, pe.Reason)
	}
	return err
}

// userAudit is an audit event of an account action by the caller.
func userAudit(c echo.Context, action, resource, outcome string, detail map[string]any) audit.Event {
	cl, _ := claimsOf(c)
	return audit.Event{Actor: cl.Subject, Role: string(cl.Role), Action: action, Resource: resource, Outcome: outcome, Detail: detail}
}

func pathID(c echo.Context) (int64, error) {
	id, err := strconv.ParseInt(c.Param("id"), 10, 64)
	if err != nil || id <= 0 {
		return 0, notFound("no such id %q", c.Param("id"))
	}
	return id, nil
}

// storeError maps the store's account errors to answers.
func storeError(err error, what string) error {
	switch {
	case errors.Is(err, store.ErrNotFound):
		return notFound("no such %s", what)
	case errors.Is(err, store.ErrLastAdmin):
		return apiErr(http.StatusConflict, CodeLastAdmin, "the last active admin cannot be removed, demoted or deactivated; make another user admin first")
	}
	return unavailable("the system database", err)
}

func (s *Server) listUsers(c echo.Context) error {
	users, err := s.db.ListUsers(c.Request().Context())
	if err != nil {
		return unavailable("the system database", err)
	}
	out := usersResponse{Users: make([]userView, len(users))}
	for i, u := range users {
		out.Users[i] = viewUser(u)
	}
	return c.JSON(http.StatusOK, out)
}

func (s *Server) getUser(c echo.Context) error {
	id, err := pathID(c)
	if err != nil {
		return err
	}
	u, err := s.db.UserByID(c.Request().Context(), id)
	if err != nil {
		return storeError(err, "user")
	}
	return c.JSON(http.StatusOK, viewUser(u))
}

// createUser answers POST /admin/users. The password, given or generated,
// was chosen by the admin, so the user must change it at first login.
func (s *Server) createUser(c echo.Context) error {
	var req createUserRequest
	if err := decodeJSON(c, &req, false); err != nil {
		return err
	}
	email := store.NormalizeEmail(req.Email)
	if email == "" || len(email) > maxEmailLen || !strings.Contains(email, "@") || strings.ContainsAny(email, " \t\r\n") {
		return badRequest("email must be an e-mail address of at most %d characters", maxEmailLen)
	}
	role, err := auth.ParseRole(req.Role)
	if err != nil {
		return badRequest("role: %v", err)
	}
	generated := ""
	if req.Password == "" {
		if generated, err = auth.GeneratePassword(); err != nil {
			return err
		}
		req.Password = generated
	} else if err := auth.CheckPolicy(req.Password, email, KnownDefaultPasswords...); err != nil {
		return policyError(err)
	}
	hash, err := auth.HashPassword(req.Password)
	if err != nil {
		return policyError(err)
	}
	u, err := s.db.CreateUser(c.Request().Context(), store.NewUser{Email: email, PasswordHash: hash, Role: string(role), MustChangePassword: true})
	if errors.Is(err, store.ErrExists) {
		return apiErr(http.StatusConflict, CodeUserExists, "a user with this e-mail exists")
	}
	if err != nil {
		return unavailable("the system database", err)
	}
	s.recordAudit(c, userAudit(c, "user.created", "user", audit.Success,
		map[string]any{"user_id": u.ID, "email": u.Email, "role": u.Role, "password_generated": generated != ""}))
	return c.JSON(http.StatusCreated, createUserResponse{User: viewUser(u), GeneratedPassword: generated})
}

// patchUser answers PATCH /admin/users/:id {role?, active?}.
func (s *Server) patchUser(c echo.Context) error {
	id, err := pathID(c)
	if err != nil {
		return err
	}
	var req patchUserRequest
	if err := decodeJSON(c, &req, false); err != nil {
		return err
	}
	if req.Role == nil && req.Active == nil {
		return badRequest("give role and/or active")
	}
	if req.Role != nil {
		r, err := auth.ParseRole(*req.Role)
		if err != nil {
			return badRequest("role: %v", err)
		}
		*req.Role = string(r)
	}
	detail := map[string]any{"user_id": id}
	if req.Role != nil {
		detail["role"] = *req.Role
	}
	if req.Active != nil {
		detail["active"] = *req.Active
	}
	u, err := s.db.UpdateUser(c.Request().Context(), id, store.UserPatch{Role: req.Role, Active: req.Active})
	if err != nil {
		if errors.Is(err, store.ErrLastAdmin) {
			detail["reason"] = CodeLastAdmin
			s.recordAudit(c, userAudit(c, "user.updated", "user", audit.Denied, detail))
		}
		return storeError(err, "user")
	}
	s.accounts.forget(u.Email)
	detail["email"] = u.Email
	s.recordAudit(c, userAudit(c, "user.updated", "user", audit.Success, detail))
	return c.JSON(http.StatusOK, viewUser(u))
}

// deleteUser answers DELETE /admin/users/:id.
func (s *Server) deleteUser(c echo.Context) error {
	id, err := pathID(c)
	if err != nil {
		return err
	}
	u, err := s.db.DeleteUser(c.Request().Context(), id)
	if err != nil {
		if errors.Is(err, store.ErrLastAdmin) {
			s.recordAudit(c, userAudit(c, "user.deleted", "user", audit.Denied, map[string]any{"user_id": id, "reason": CodeLastAdmin}))
		}
		return storeError(err, "user")
	}
	s.accounts.forget(u.Email)
	s.recordAudit(c, userAudit(c, "user.deleted", "user", audit.Success, map[string]any{"user_id": id, "email": u.Email, "role": u.Role}))
	return c.NoContent(http.StatusNoContent)
}

// changePassword answers POST /auth/password: the new password against
// the policy, then the caller's current password. Every older token of the
// user stops working; the answer carries a new one. Attempts count
// against the login rate limit of the e-mail.
func (s *Server) changePassword(c echo.Context) error {
	cl, _ := claimsOf(c)
	if cl.Service != "" {
		return apiErr(http.StatusForbidden, CodeForbidden, "a service token has no password")
	}
	var req changePasswordRequest
	if err := decodeJSON(c, &req, false); err != nil {
		return err
	}
	if req.CurrentPassword == "" || req.NewPassword == "" {
		return badRequest("current_password and new_password are required")
	}
	if len(req.CurrentPassword) > maxPasswordLen || len(req.NewPassword) > maxPasswordLen {
		return badRequest("password is longer than %d bytes", maxPasswordLen)
	}
	// The policy first: it needs no bcrypt work and no attempt is spent.
	if req.NewPassword == req.CurrentPassword {
		return apiErr(http.StatusUnprocessableEntity, CodePasswordPolicy, "the new password must differ from the current one (same_as_current)")
	}
	if err := auth.CheckPolicy(req.NewPassword, cl.Subject, KnownDefaultPasswords...); err != nil {
		s.recordAudit(c, userAudit(c, "user.password_changed", "user", audit.Failure, map[string]any{"reason": CodePasswordPolicy}))
		return policyError(err)
	}
	if ok, wait := s.loginByEmail.allow(cl.Subject, time.Now()); !ok {
		secs := max(1, int(wait.Seconds()+0.999))
		c.Response().Header().Set("Retry-After", strconv.Itoa(secs))
		return apiErr(http.StatusTooManyRequests, CodeRateLimited, "too many attempts; retry in %d seconds", secs)
	}
	ctx := c.Request().Context()
	select {
	case s.bcryptSlots <- struct{}{}:
		defer func() { <-s.bcryptSlots }()
	case <-ctx.Done():
		return apiErr(http.StatusServiceUnavailable, CodeUnavailable, "request cancelled")
	}
	u, err := s.db.UserByEmail(ctx, cl.Subject)
	if err != nil {
		return storeError(err, "user")
	}
	if !issuedTo(cl, u.ID, u.CreatedAt) {
		// Re-created since the recheck last read it: not this token's user.
		return apiErr(http.StatusUnauthorized, CodeUnauthorized, "this token's account was removed; log in again")
	}
	if !auth.CheckPassword(u.PasswordHash, req.CurrentPassword) {
		s.recordAudit(c, userAudit(c, "user.password_changed", "user", audit.Failure, map[string]any{"user_id": u.ID, "reason": CodeWrongPassword}))
		// 403, not 401: the token is fine, a client must not drop it.
		return apiErr(http.StatusForbidden, CodeWrongPassword, "the current password is wrong")
	}
	hash, err := auth.HashPassword(req.NewPassword)
	if err != nil {
		return policyError(err)
	}
	u, err = s.db.SetPassword(ctx, u.ID, hash, false)
	if err != nil {
		return storeError(err, "user")
	}
	s.accounts.forget(u.Email)
	s.recordAudit(c, userAudit(c, "user.password_changed", "user", audit.Success, map[string]any{"user_id": u.ID, "email": u.Email}))
	return s.issueLogin(c, u, cl.Role)
}

// issueLogin answers with a new login token for u acting as role.
func (s *Server) issueLogin(c echo.Context, u store.User, role auth.Role) error {
	token, exp, err := s.tokens.IssueFor(auth.Account{Email: u.Email, UserID: u.ID, Version: u.TokenVersion}, role)
	if err != nil {
		return &APIError{Status: http.StatusInternalServerError, Code: CodeInternal, Message: "internal error", Err: err}
	}
	return c.JSON(http.StatusOK, loginResponse{Token: token, TokenType: "Bearer", ExpiresAt: exp.UTC(), Role: role, MustChangePassword: u.MustChangePassword})
}

// Kinds of token of GET /auth/whoami.
const (
	TokenKindLogin   = "login"
	TokenKindService = "service_token"
)

// Identity is the body of GET /auth/whoami: who the presented token
// authenticates, as the API sees it after the account recheck (the role
// is the one the request acts with).
type Identity struct {
	// Subject is the user's e-mail, or "token:<name>" for a service token.
	Subject string `json:"subject"`
	Role    string `json:"role"`
	// Kind is "login" (a token of POST /auth/login) or "service_token".
	Kind string `json:"kind"`
	// Service is the service token's name.
	Service string `json:"service,omitempty"`
	// ExpiresAt is when a login token expires.
	ExpiresAt *time.Time `json:"expires_at,omitempty"`
	// MustChangePassword is set while the user must change its password
	// before anything but /auth/password, /auth/logout and /auth/whoami.
	MustChangePassword bool `json:"must_change_password,omitempty"`
}

// whoami answers GET /auth/whoami with the caller's Identity.
func (s *Server) whoami(c echo.Context) error {
	cl, _ := claimsOf(c)
	id := Identity{Subject: cl.Subject, Role: string(cl.Role), Kind: TokenKindLogin}
	if cl.Service != "" {
		id.Kind, id.Service = TokenKindService, cl.Service
	} else if !cl.ExpiresAt.IsZero() {
		exp := cl.ExpiresAt.UTC()
		id.ExpiresAt = &exp
	}
	if v, ok := c.Get(ctxMustChange).(bool); ok {
		id.MustChangePassword = v
	}
	return c.JSON(http.StatusOK, id)
}

// logout answers POST /auth/logout: the presented login token is revoked.
func (s *Server) logout(c echo.Context) error {
	cl, _ := claimsOf(c)
	if cl.Service != "" {
		return badRequest("a service token is revoked with DELETE /admin/tokens/{id}")
	}
	if cl.ID == "" {
		return badRequest("this token has no id to revoke; it expires at %s", cl.ExpiresAt.UTC().Format(time.RFC3339))
	}
	if err := s.db.RevokeToken(c.Request().Context(), cl.ID, cl.ExpiresAt.Add(auth.Leeway)); err != nil {
		return unavailable("the system database", err)
	}
	s.accounts.markRevoked(cl.ID)
	s.recordAudit(c, userAudit(c, "auth.logout", "auth", audit.Success, nil))
	return c.NoContent(http.StatusNoContent)
}
