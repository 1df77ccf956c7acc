// Package console is the operator console: server-rendered HTML pages under
// /ui for the whole admin plane (overview, jobs, backups, knowledge base,
// audit, accounts).
//
// The console holds no rule of its own. Every page reads, and every button
// acts, through the HTTP API itself: the console turns the browser's
// session cookie back into the bearer token it holds and serves an
// in-process request to the API's handler (apiCall), so authentication,
// roles, validation, confirmation and audit are exactly those of a client
// calling the API. A viewer sees no action buttons, and a forged POST is
// refused by the API's own role check.
//
// Browser security: the session is an HttpOnly, SameSite=Strict cookie
// (Secure over TLS) holding the login token, never exposed to scripts or
// URLs; every unsafe request carries a per-session CSRF token (a hidden
// field or the X-CSRF-Token header) checked here; every page is served
// with a Content-Security-Policy allowing only the console's own script
// and style sheet (no inline code) and no external origin.
package console

import (
	"embed"
	"errors"
	"html/template"
	"io/fs"
	"log/slog"
	"net/http"

	"github.com/insightops/insightops/shared/auth"
)

// Prefix is the path under which the console is served.
const Prefix = "/ui"

// ContentSecurityPolicy is sent with every console answer: only the
// console's own script, style sheet and images, requests to its own
// origin, no framing, forms posted only to itself.
const ContentSecurityPolicy = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
	"connect-src 'self'; font-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"

//go:embed ui/templates/*.html
var templateFS embed.FS

//go:embed ui/static
var staticFS embed.FS

// Options are what the console needs from the API server.
type Options struct {
	// API is the HTTP API's handler; every page and action is a request
	// to it.
	API http.Handler
	// Verify checks a login token (signature and expiry) and returns its
	// claims; the API rechecks the account on every request anyway.
	Verify func(token string) (auth.Claims, error)
	// CSRFKey signs the per-session CSRF tokens (at least 32 bytes; every
	// replica of the API must use the same key).
	CSRFKey []byte
	Log     *slog.Logger
}

// Console serves the pages. Build it with New.
type Console struct {
	api     http.Handler
	verify  func(string) (auth.Claims, error)
	csrfKey []byte
	log     *slog.Logger
	pages   map[string]*template.Template
	static  http.Handler
	mux     *http.ServeMux
}

// New builds the console.
func New(opts Options) (*Console, error) {
	if opts.API == nil || opts.Verify == nil {
		return nil, errors.New("console: Options.API and Options.Verify are required")
	}
	if len(opts.CSRFKey) < 32 {
		return nil, errors.New("console: Options.CSRFKey must be at least 32 bytes")
	}
	log := opts.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	pages, err := parsePages()
	if err != nil {
		return nil, err
	}
	sub, err := fs.Sub(staticFS, "ui/static")
	if err != nil {
		return nil, err
	}
	c := &Console{api: opts.API, verify: opts.Verify, csrfKey: opts.CSRFKey, log: log, pages: pages,
		static: http.StripPrefix(Prefix+"/static/", http.FileServerFS(sub))}
	c.routes()
	return c, nil
}

// ServeHTTP serves one console request with the console's security headers.
func (c *Console) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Content-Security-Policy", ContentSecurityPolicy)
	h.Set("X-Frame-Options", "DENY")
	h.Set("Referrer-Policy", "same-origin")
	h.Set("Cross-Origin-Opener-Policy", "same-origin")
	h.Set("Cross-Origin-Resource-Policy", "same-origin")
	h.Set("Permissions-Policy", "camera=(), microphone=(), geolocation=()")
	c.mux.ServeHTTP(w, r)
}
