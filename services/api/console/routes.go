package console

import (
	"net/http"
	"net/url"
	"strings"
)

// handler is a console handler for a signed-in browser.
type handler func(w http.ResponseWriter, r *http.Request, s *session) error

// routes registers the console's pages and actions. Every POST is an
// action: a CSRF-checked call of one API route.
func (c *Console) routes() {
	m := http.NewServeMux()
	m.Handle("GET "+Prefix+"/static/", http.HandlerFunc(c.serveStatic))
	m.HandleFunc("GET "+Prefix+"/login", c.loginPage)
	m.HandleFunc("POST "+Prefix+"/login", c.loginSubmit)
	m.HandleFunc("POST "+Prefix+"/logout", c.authed(c.logout))
	m.HandleFunc("GET "+Prefix+"/password", c.authed(c.passwordPage))
	m.HandleFunc("POST "+Prefix+"/password", c.authed(c.passwordSubmit))

	m.HandleFunc("GET "+Prefix, func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, Prefix+"/", http.StatusSeeOther)
	})
	m.HandleFunc("GET "+Prefix+"/{$}", c.authed(c.overview))

	m.HandleFunc("GET "+Prefix+"/jobs", c.authed(c.jobList))
	m.HandleFunc("GET "+Prefix+"/jobs/{id}", c.authed(c.jobPage))
	m.HandleFunc("GET "+Prefix+"/jobs/{id}/events", c.authed(c.jobEvents))
	m.HandleFunc("POST "+Prefix+"/jobs/{id}/cancel", c.authed(c.jobCancel))

	m.HandleFunc("GET "+Prefix+"/backups", c.authed(c.backupList))
	m.HandleFunc("POST "+Prefix+"/backups", c.authed(c.backupCreate))
	m.HandleFunc("POST "+Prefix+"/backups/prune", c.authed(c.backupPrune))
	m.HandleFunc("POST "+Prefix+"/backups/{name}/verify", c.authed(c.backupVerify))
	m.HandleFunc("GET "+Prefix+"/backups/{name}/restore", c.authed(c.restorePage))
	m.HandleFunc("POST "+Prefix+"/backups/{name}/restore", c.authed(c.restoreSubmit))

	c.extraRoutes(m)
	m.HandleFunc(Prefix+"/", func(w http.ResponseWriter, r *http.Request) {
		c.renderError(w, r, c.sessionOf(r), &apiError{Status: http.StatusNotFound, Code: "not_found", Message: "no such page"})
	})
	c.mux = m
}

// serveStatic serves the embedded script, style sheet and icon; they may
// be cached (their names change with the console's version... they are
// small, so an hour).
func (c *Console) serveStatic(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "public, max-age=3600")
	c.static.ServeHTTP(w, r)
}

// authed wraps h for a signed-in browser: without a valid session a page
// request is sent to the login page (an action or stream gets 401); an
// unsafe request without the session's CSRF token is refused (403). An
// API answer of 401 ends the session; 403 password_change_required sends
// the browser to the password page.
func (c *Console) authed(h handler) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		s := c.sessionOf(r)
		if s == nil {
			if r.Method == http.MethodGet && !strings.HasSuffix(r.URL.Path, "/events") {
				http.Redirect(w, r, Prefix+"/login?next="+url.QueryEscape(r.URL.RequestURI()), http.StatusSeeOther)
				return
			}
			c.renderError(w, r, nil, &apiError{Status: http.StatusUnauthorized, Code: codeUnauthorized, Message: "sign in first"})
			return
		}
		if r.Method != http.MethodGet && r.Method != http.MethodHead && !c.validCSRF(r, s) {
			c.log.Warn("console: request without a valid CSRF token refused", "method", r.Method, "path", r.URL.Path, "user", s.Email())
			c.renderError(w, r, s, &apiError{Status: http.StatusForbidden, Code: "csrf_failed",
				Message: "this form is stale or did not come from the console; reload the page and try again"})
			return
		}
		err := h(w, r, s)
		if err == nil {
			return
		}
		if ae, ok := asAPIError(err); ok {
			switch {
			case ae.Status == http.StatusUnauthorized:
				clearSession(w, r)
				http.Redirect(w, r, Prefix+"/login?expired=1", http.StatusSeeOther)
				return
			case ae.Code == codePasswordChangeRequired && r.URL.Path != Prefix+"/password":
				http.Redirect(w, r, Prefix+"/password", http.StatusSeeOther)
				return
			}
			c.renderError(w, r, s, ae)
			return
		}
		c.log.Error("console page failed", "path", r.URL.Path, "err", err)
		c.renderError(w, r, s, &apiError{Status: http.StatusInternalServerError, Code: "internal", Message: "the page could not be built"})
	}
}
