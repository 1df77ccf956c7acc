package console

import (
	"bytes"
	"encoding/json"
	"fmt"
	"html/template"
	"net/http"
	"strings"
	"time"

	"github.com/insightops/insightops/shared/auth"
)

// pageNames are the templates under ui/templates, each rendered inside
// layout.html.
var pageNames = []string{"login", "password", "overview", "jobs", "job", "backups", "restore", "error", "knowledge", "audit", "accounts", "deadletters"}

// view is what every page template gets.
type view struct {
	S     *session
	Title string
	// Nav names the navigation entry to mark as current.
	Nav  string
	Data any
	// Flash is a one-line notice at the top of the page.
	Flash string
	Error *apiError
	// Live marks a page whose #live region the script refreshes.
	Live bool
}

var funcs = template.FuncMap{
	"age":      age,
	"when":     when,
	"pretty":   pretty,
	"join":     strings.Join,
	"bytes":    humanBytes,
	"contains": contains,
	"add":      func(a, b int) int { return a + b },
	"split":    strings.Fields,
	"distance": distance,
	// minPassword is the policy's minimum, as a hint for the browser (the
	// API checks the policy).
	"minPassword": func() int { return auth.MinPasswordChars },
	"sub":         func(a, b int) int { return a - b },
}

func parsePages() (map[string]*template.Template, error) {
	out := map[string]*template.Template{}
	for _, name := range pageNames {
		t, err := template.New(name).Funcs(funcs).ParseFS(templateFS, "ui/templates/layout.html", "ui/templates/"+name+".html")
		if err != nil {
			return nil, fmt.Errorf("console: parse template %s: %w", name, err)
		}
		out[name] = t
	}
	return out, nil
}

// render writes page name with status; the page is built in memory first
// so a template error is a clean 500.
func (c *Console) render(w http.ResponseWriter, status int, name string, v view) {
	var buf bytes.Buffer
	if err := c.pages[name].ExecuteTemplate(&buf, "layout", v); err != nil {
		c.log.Error("console: render", "page", name, "err", err)
		http.Error(w, "the page could not be rendered", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}

// renderError shows an API error (or the console's own) with its status.
func (c *Console) renderError(w http.ResponseWriter, r *http.Request, s *session, e *apiError) {
	status := e.Status
	if status < 400 {
		status = http.StatusInternalServerError
	}
	c.render(w, status, "error", view{S: s, Title: "Error", Error: e, Data: r.Referer()})
}

// age is how long ago t was, coarsely ("3m", "2h", "5d").
func age(t any) string {
	var at time.Time
	switch v := t.(type) {
	case time.Time:
		at = v
	case *time.Time:
		if v == nil {
			return "never"
		}
		at = *v
	default:
		return ""
	}
	if at.IsZero() {
		return "never"
	}
	d := time.Since(at)
	switch {
	case d < 0:
		return "just now"
	case d < time.Minute:
		return fmt.Sprintf("%ds ago", int(d.Seconds()))
	case d < time.Hour:
		return fmt.Sprintf("%dm ago", int(d.Minutes()))
	case d < 48*time.Hour:
		return fmt.Sprintf("%dh ago", int(d.Hours()))
	}
	return fmt.Sprintf("%dd ago", int(d.Hours()/24))
}

// when formats a time as UTC RFC 3339 ("" for none).
func when(t any) string {
	switch v := t.(type) {
	case time.Time:
		if v.IsZero() {
			return ""
		}
		return v.UTC().Format("2006-01-02 15:04:05Z")
	case *time.Time:
		if v == nil {
			return ""
		}
		return v.UTC().Format("2006-01-02 15:04:05Z")
	}
	return ""
}

// pretty indents JSON for display.
func pretty(raw json.RawMessage) string {
	if len(raw) == 0 {
		return ""
	}
	var buf bytes.Buffer
	if json.Indent(&buf, raw, "", "  ") != nil {
		return string(raw)
	}
	return buf.String()
}

func humanBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}

// distance formats a similarity distance ("" for none).
func distance(d *float64) string {
	if d == nil {
		return ""
	}
	return fmt.Sprintf("%.4f", *d)
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
