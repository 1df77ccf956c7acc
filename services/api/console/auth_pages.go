package console

import (
	"net/http"
	"strings"
	"time"
)

// loginAnswer is the part of POST /auth/login's and POST /auth/password's
// answer the console keeps.
type loginAnswer struct {
	Token              string    `json:"token"`
	ExpiresAt          time.Time `json:"expires_at"`
	Role               string    `json:"role"`
	MustChangePassword bool      `json:"must_change_password"`
}

// safeNext is where to go after signing in: a console path, never another
// site ("//evil", "/\evil" and absolute URLs are dropped).
func safeNext(next string) string {
	if !strings.HasPrefix(next, Prefix+"/") || strings.HasPrefix(next, "//") || strings.ContainsAny(next, "\\\r\n") {
		return Prefix + "/"
	}
	return next
}

func (c *Console) loginPage(w http.ResponseWriter, r *http.Request) {
	if s := c.sessionOf(r); s != nil {
		http.Redirect(w, r, Prefix+"/", http.StatusSeeOther)
		return
	}
	flash := ""
	if r.URL.Query().Get("expired") != "" {
		flash = "Your session ended; sign in again."
	}
	c.render(w, http.StatusOK, "login", view{Title: "Sign in", Flash: flash, Data: map[string]string{"Next": safeNext(r.URL.Query().Get("next"))}})
}

// loginSubmit signs in through POST /auth/login (rate limits, audit and
// all) and keeps the token in the session cookie. There is no session yet
// to hold a CSRF token, so the request must come from the console's own
// origin (Origin or Sec-Fetch-Site).
func (c *Console) loginSubmit(w http.ResponseWriter, r *http.Request) {
	if !sameOrigin(r) {
		c.renderError(w, r, nil, &apiError{Status: http.StatusForbidden, Code: "csrf_failed", Message: "sign in from the console's own page"})
		return
	}
	email, next := r.PostFormValue("email"), safeNext(r.PostFormValue("next"))
	var ans loginAnswer
	err := c.call(r, nil, http.MethodPost, "/auth/login", map[string]string{"email": email, "password": r.PostFormValue("password")}, &ans)
	if err != nil {
		v := view{Title: "Sign in", Data: map[string]string{"Next": next, "Email": email}}
		ae, ok := asAPIError(err)
		if !ok {
			ae = &apiError{Status: http.StatusInternalServerError, Code: "internal", Message: "sign-in failed"}
		}
		v.Error = ae
		c.render(w, ae.Status, "login", v)
		return
	}
	setSession(w, r, ans.Token, ans.ExpiresAt)
	if ans.MustChangePassword {
		next = Prefix + "/password"
	}
	http.Redirect(w, r, next, http.StatusSeeOther) //nolint:gosec // G710: next passed safeNext, a console path only
}

// logout revokes the token (POST /auth/logout) and drops the cookie.
func (c *Console) logout(w http.ResponseWriter, r *http.Request, s *session) error {
	if err := c.call(r, s, http.MethodPost, "/auth/logout", nil, nil); err != nil {
		c.log.Warn("console: logout call failed; the cookie is dropped anyway", "user", s.Email(), "err", err)
	}
	clearSession(w, r)
	http.Redirect(w, r, Prefix+"/login", http.StatusSeeOther)
	return nil
}

func (c *Console) passwordPage(w http.ResponseWriter, r *http.Request, s *session) error {
	c.render(w, http.StatusOK, "password", view{S: s, Title: "Change password", Nav: "password"})
	return nil
}

// passwordSubmit changes the password through POST /auth/password (policy
// and audit are the API's) and keeps the new token it answers with.
func (c *Console) passwordSubmit(w http.ResponseWriter, r *http.Request, s *session) error {
	if r.PostFormValue("new_password") != r.PostFormValue("confirm_password") {
		c.render(w, http.StatusBadRequest, "password", view{S: s, Title: "Change password", Nav: "password",
			Error: &apiError{Status: http.StatusBadRequest, Code: "bad_request", Message: "the two new passwords differ"}})
		return nil
	}
	var ans loginAnswer
	err := c.call(r, s, http.MethodPost, "/auth/password", map[string]string{
		"current_password": r.PostFormValue("current_password"), "new_password": r.PostFormValue("new_password"),
	}, &ans)
	if err != nil {
		ae, ok := asAPIError(err)
		if !ok || ae.Status == http.StatusUnauthorized {
			return err
		}
		c.render(w, ae.Status, "password", view{S: s, Title: "Change password", Nav: "password", Error: ae})
		return nil
	}
	setSession(w, r, ans.Token, ans.ExpiresAt)
	http.Redirect(w, r, Prefix+"/?changed=1", http.StatusSeeOther)
	return nil
}
