package client

import (
	"context"
	"fmt"
	"net/http"
	"time"
)

// Login is the answer of POST /auth/login and POST /auth/password.
type Login struct {
	Token              string    `json:"token"`
	TokenType          string    `json:"token_type"`
	ExpiresAt          time.Time `json:"expires_at"`
	Role               string    `json:"role"`
	MustChangePassword bool      `json:"must_change_password"`
}

// Identity is the answer of GET /auth/whoami.
type Identity struct {
	Subject            string     `json:"subject"`
	Role               string     `json:"role"`
	Kind               string     `json:"kind"` // "login" or "service_token"
	Service            string     `json:"service,omitempty"`
	ExpiresAt          *time.Time `json:"expires_at,omitempty"`
	MustChangePassword bool       `json:"must_change_password,omitempty"`
}

// User is one account of /admin/users.
type User struct {
	ID                 int64      `json:"id"`
	Email              string     `json:"email"`
	Role               string     `json:"role"`
	Active             bool       `json:"active"`
	MustChangePassword bool       `json:"must_change_password"`
	CreatedAt          time.Time  `json:"created_at"`
	PasswordChangedAt  *time.Time `json:"password_changed_at,omitempty"`
}

// NewUser is the request of POST /admin/users; without a Password the
// API generates one (CreatedUser.GeneratedPassword) and the user must
// change it first.
type NewUser struct {
	Email    string `json:"email"`
	Role     string `json:"role"`
	Password string `json:"password,omitempty"`
}

// CreatedUser is the answer of POST /admin/users.
type CreatedUser struct {
	User              User   `json:"user"`
	GeneratedPassword string `json:"generated_password,omitempty"`
}

// UserPatch is the request of PATCH /admin/users/{id}: the fields to change.
type UserPatch struct {
	Role   *string `json:"role,omitempty"`
	Active *bool   `json:"active,omitempty"`
}

// ServiceToken is one service token of /admin/tokens (never its secret).
type ServiceToken struct {
	ID         int64      `json:"id"`
	Name       string     `json:"name"`
	Role       string     `json:"role"`
	CreatedBy  string     `json:"created_by"`
	CreatedAt  time.Time  `json:"created_at"`
	ExpiresAt  time.Time  `json:"expires_at"`
	LastUsedAt *time.Time `json:"last_used_at,omitempty"`
}

// NewServiceToken is the request of POST /admin/tokens.
type NewServiceToken struct {
	Name          string `json:"name"`
	Role          string `json:"role"`
	ExpiresInDays int    `json:"expires_in_days,omitempty"`
}

// CreatedServiceToken is the answer of POST /admin/tokens: the token and
// its secret (iops_…), shown this once.
type CreatedServiceToken struct {
	ServiceToken
	Token string `json:"token"`
}

// Login logs in with e-mail and password (POST /auth/login). It does not
// change the client's token: use WithToken with the answer's Token.
func (c *Client) Login(ctx context.Context, email, password string) (Login, error) {
	var out Login
	err := c.call(ctx, request{method: http.MethodPost, path: "/auth/login",
		json: map[string]string{"email": email, "password": password}}, &out)
	return out, err
}

// ChangePassword changes the signed-in user's password (POST
// /auth/password); the answer holds a new token, every older one stops
// working.
func (c *Client) ChangePassword(ctx context.Context, current, next string) (Login, error) {
	var out Login
	err := c.call(ctx, request{method: http.MethodPost, path: "/auth/password",
		json: map[string]string{"current_password": current, "new_password": next}}, &out)
	return out, err
}

// Logout revokes the client's login token (POST /auth/logout).
func (c *Client) Logout(ctx context.Context) error {
	err := c.call(ctx, request{method: http.MethodPost, path: "/auth/logout"}, nil)
	return err
}

// Whoami tells who the client's token is (GET /auth/whoami).
func (c *Client) Whoami(ctx context.Context) (Identity, error) {
	var out Identity
	err := c.get(ctx, "/auth/whoami", nil, &out)
	return out, err
}

// Users lists the users (GET /admin/users).
func (c *Client) Users(ctx context.Context) ([]User, error) {
	var out struct {
		Users []User `json:"users"`
	}
	err := c.get(ctx, "/admin/users", nil, &out)
	return out.Users, err
}

// User reads one user (GET /admin/users/{id}).
func (c *Client) User(ctx context.Context, id int64) (User, error) {
	var out User
	err := c.get(ctx, fmt.Sprintf("/admin/users/%d", id), nil, &out)
	return out, err
}

// CreateUser creates a user (POST /admin/users).
func (c *Client) CreateUser(ctx context.Context, u NewUser) (CreatedUser, error) {
	var out CreatedUser
	err := c.call(ctx, request{method: http.MethodPost, path: "/admin/users", json: u}, &out)
	return out, err
}

// UpdateUser changes a user's role and/or active flag (PATCH /admin/users/{id}).
func (c *Client) UpdateUser(ctx context.Context, id int64, p UserPatch) (User, error) {
	var out User
	err := c.call(ctx, request{method: http.MethodPatch, path: fmt.Sprintf("/admin/users/%d", id), json: p}, &out)
	return out, err
}

// DeleteUser removes a user (DELETE /admin/users/{id}).
func (c *Client) DeleteUser(ctx context.Context, id int64) error {
	err := c.call(ctx, request{method: http.MethodDelete, path: fmt.Sprintf("/admin/users/%d", id)}, nil)
	return err
}

// ServiceTokens lists the service tokens (GET /admin/tokens).
func (c *Client) ServiceTokens(ctx context.Context) ([]ServiceToken, error) {
	var out struct {
		Tokens []ServiceToken `json:"tokens"`
	}
	err := c.get(ctx, "/admin/tokens", nil, &out)
	return out.Tokens, err
}

// CreateServiceToken creates a service token (POST /admin/tokens); the
// answer's Token is the secret, shown once.
func (c *Client) CreateServiceToken(ctx context.Context, t NewServiceToken) (CreatedServiceToken, error) {
	var out CreatedServiceToken
	err := c.call(ctx, request{method: http.MethodPost, path: "/admin/tokens", json: t}, &out)
	return out, err
}

// RevokeServiceToken revokes a service token (DELETE /admin/tokens/{id}).
func (c *Client) RevokeServiceToken(ctx context.Context, id int64) error {
	err := c.call(ctx, request{method: http.MethodDelete, path: fmt.Sprintf("/admin/tokens/%d", id)}, nil)
	return err
}
