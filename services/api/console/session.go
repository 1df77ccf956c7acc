package console

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/insightops/insightops/shared/auth"
)

// CookieName is the session cookie: the login token, HttpOnly,
// SameSite=Strict, Path=/ui, Secure when the request came over TLS.
const CookieName = "insightops_session"

// CSRFHeader carries the CSRF token of requests made by the console's
// script (forms carry it in the csrf field).
const CSRFHeader = "X-CSRF-Token"

// csrfField is the hidden form field holding the CSRF token.
const csrfField = "csrf"

// session is the signed-in browser: its token and what the token says.
type session struct {
	token  string
	claims auth.Claims
	csrf   string
}

// Can reports whether the session's role is at least need ("viewer",
// "operator", "admin"); templates use it to show action buttons.
func (s *session) Can(need string) bool {
	return s != nil && auth.Allows(s.claims.Role, auth.Role(need))
}

// Email is the signed-in user's e-mail.
func (s *session) Email() string { return s.claims.Subject }

// Role is the signed-in user's role.
func (s *session) Role() string { return string(s.claims.Role) }

// CSRF is the session's CSRF token.
func (s *session) CSRF() string { return s.csrf }

// csrfFor derives the CSRF token of a login token: an HMAC, so any replica
// with the key can check it and it dies with the session.
func (c *Console) csrfFor(token string) string {
	m := hmac.New(sha256.New, c.csrfKey)
	m.Write([]byte("insightops console csrf\x00"))
	m.Write([]byte(token))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// sessionOf returns the request's session, or nil when it has no cookie
// or the token is not genuine or has expired.
func (c *Console) sessionOf(r *http.Request) *session {
	ck, err := r.Cookie(CookieName)
	if err != nil || ck.Value == "" {
		return nil
	}
	cl, err := c.verify(ck.Value)
	if err != nil {
		return nil
	}
	return &session{token: ck.Value, claims: cl, csrf: c.csrfFor(ck.Value)}
}

// validCSRF reports whether an unsafe request carries the session's CSRF
// token (header or form field) and, when the browser names one, comes
// from the console's own origin.
func (c *Console) validCSRF(r *http.Request, s *session) bool {
	if !sameOrigin(r) {
		return false
	}
	got := r.Header.Get(CSRFHeader)
	if got == "" {
		got = r.PostFormValue(csrfField)
	}
	return got != "" && hmac.Equal([]byte(got), []byte(s.csrf))
}

// sameOrigin reports whether the request's Origin (or, without one, its
// Sec-Fetch-Site) says it was made by a page of this host. Requests
// without either (old browsers, curl) pass this check; the CSRF token is
// the real guard.
func sameOrigin(r *http.Request) bool {
	if o := r.Header.Get("Origin"); o != "" && o != "null" {
		u, err := url.Parse(o)
		return err == nil && strings.EqualFold(u.Host, r.Host)
	} else if o == "null" {
		return false
	}
	switch r.Header.Get("Sec-Fetch-Site") {
	case "", "same-origin", "none":
		return true
	}
	return false
}

// secureRequest reports whether the browser reached us over TLS (directly
// or, as the proxy says, in front of us); the cookie is then Secure.
func secureRequest(r *http.Request) bool {
	return r.TLS != nil || strings.EqualFold(r.Header.Get("X-Forwarded-Proto"), "https")
}

// setSession stores the login token in the session cookie until expires.
func setSession(w http.ResponseWriter, r *http.Request, token string, expires time.Time) {
	//nolint:gosec // G124: HttpOnly and SameSite=Strict always; Secure whenever the browser came over TLS (a Secure cookie over plain HTTP would be dropped)
	http.SetCookie(w, &http.Cookie{
		Name: CookieName, Value: token, Path: Prefix, Expires: expires,
		MaxAge:   max(1, int(time.Until(expires).Seconds())),
		HttpOnly: true, SameSite: http.SameSiteStrictMode, Secure: secureRequest(r),
	})
}

// clearSession removes the session cookie.
func clearSession(w http.ResponseWriter, r *http.Request) {
	//nolint:gosec // G124: as setSession
	http.SetCookie(w, &http.Cookie{
		Name: CookieName, Value: "", Path: Prefix, MaxAge: -1,
		HttpOnly: true, SameSite: http.SameSiteStrictMode, Secure: secureRequest(r),
	})
}
