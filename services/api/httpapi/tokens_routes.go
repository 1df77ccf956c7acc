package httpapi

import (
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/insightops/insightops/shared/audit"
	"github.com/insightops/insightops/shared/auth"
	"github.com/insightops/insightops/shared/store"
)

// Bounds of a service token.
const (
	maxTokenNameLen         = 64
	DefaultServiceTokenDays = 90
	MaxServiceTokenDays     = 366
)

// tokenRoutes are the service token routes (admin only).
var tokenRoutes = []routeDef{
	{Route{http.MethodGet, "/admin/tokens", auth.Admin, false, "list service tokens (never their secret)"}, (*Server).listServiceTokens},
	{Route{http.MethodPost, "/admin/tokens", auth.Admin, false, "create a service token {name, role, expires_in_days} (201); the secret is shown once"}, (*Server).createServiceToken},
	{Route{http.MethodDelete, "/admin/tokens/:id", auth.Admin, false, "revoke a service token (204)"}, (*Server).deleteServiceToken},
}

type createTokenRequest struct {
	Name string `json:"name"`
	Role string `json:"role"`
	// ExpiresInDays is the token's lifetime (default 90, at most 366).
	ExpiresInDays int `json:"expires_in_days,omitempty"`
}

// tokenView is a service token as listed: never its secret or hash.
type tokenView struct {
	ID         int64      `json:"id"`
	Name       string     `json:"name"`
	Role       string     `json:"role"`
	CreatedBy  string     `json:"created_by"`
	CreatedAt  time.Time  `json:"created_at"`
	ExpiresAt  time.Time  `json:"expires_at"`
	LastUsedAt *time.Time `json:"last_used_at,omitempty"`
}

type tokensResponse struct {
	Tokens []tokenView `json:"tokens"`
}

type createTokenResponse struct {
	tokenView
	// Token is the secret, shown this once: use it as
	// "Authorization: Bearer <token>".
	Token string `json:"token"`
}

func viewToken(t store.ServiceToken) tokenView {
	v := tokenView{ID: t.ID, Name: t.Name, Role: t.Role, CreatedBy: t.CreatedBy, CreatedAt: t.CreatedAt, ExpiresAt: t.ExpiresAt}
	if !t.LastUsedAt.IsZero() {
		v.LastUsedAt = &t.LastUsedAt
	}
	return v
}

func validTokenName(n string) bool {
	if n == "" || len(n) > maxTokenNameLen {
		return false
	}
	return strings.IndexFunc(n, func(r rune) bool {
		return (r < 'a' || r > 'z') && (r < 'A' || r > 'Z') && (r < '0' || r > '9') && r != '-' && r != '_' && r != '.'
	}) < 0
}

func (s *Server) listServiceTokens(c echo.Context) error {
	toks, err := s.db.ListServiceTokens(c.Request().Context())
	if err != nil {
		return unavailable("the system database", err)
	}
	out := tokensResponse{Tokens: make([]tokenView, len(toks))}
	for i, t := range toks {
		out.Tokens[i] = viewToken(t)
	}
	return c.JSON(http.StatusOK, out)
}

// createServiceToken answers POST /admin/tokens: the secret is returned
// once and only its hash is stored.
func (s *Server) createServiceToken(c echo.Context) error {
	var req createTokenRequest
	if err := decodeJSON(c, &req, false); err != nil {
		return err
	}
	if !validTokenName(req.Name) {
		return badRequest("name must be 1 to %d characters of letters, digits, '-', '_' or '.'", maxTokenNameLen)
	}
	role, err := auth.ParseRole(req.Role)
	if err != nil {
		return badRequest("role: %v", err)
	}
	days := req.ExpiresInDays
	if days == 0 {
		days = DefaultServiceTokenDays
	}
	if days < 1 || days > MaxServiceTokenDays {
		return badRequest("expires_in_days must be between 1 and %d", MaxServiceTokenDays)
	}
	secret, hash, err := auth.NewServiceToken()
	if err != nil {
		return err
	}
	cl, _ := claimsOf(c)
	t, err := s.db.CreateServiceToken(c.Request().Context(), store.ServiceToken{
		Name: req.Name, TokenHash: hash, Role: string(role), CreatedBy: cl.Subject,
		ExpiresAt: time.Now().Add(time.Duration(days) * 24 * time.Hour).UTC().Truncate(time.Second),
	})
	if errors.Is(err, store.ErrExists) {
		return apiErr(http.StatusConflict, CodeTokenExists, "a service token named %q exists", req.Name)
	}
	if err != nil {
		return unavailable("the system database", err)
	}
	s.recordAudit(c, userAudit(c, "token.created", "token", audit.Success,
		map[string]any{"token_id": t.ID, "name": t.Name, "role": t.Role, "expires_at": t.ExpiresAt.Format(time.RFC3339)}))
	return c.JSON(http.StatusCreated, createTokenResponse{tokenView: viewToken(t), Token: secret})
}

// deleteServiceToken answers DELETE /admin/tokens/:id: the token is
// refused from the next request on.
func (s *Server) deleteServiceToken(c echo.Context) error {
	id, err := pathID(c)
	if err != nil {
		return err
	}
	t, err := s.db.DeleteServiceToken(c.Request().Context(), id)
	if err != nil {
		return storeError(err, "service token")
	}
	s.serviceTokens.forget()
	s.recordAudit(c, userAudit(c, "token.revoked", "token", audit.Success, map[string]any{"token_id": t.ID, "name": t.Name, "role": t.Role}))
	return c.NoContent(http.StatusNoContent)
}
