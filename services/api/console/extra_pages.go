package console

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/insightops/insightops/shared/auditsink"
	"github.com/insightops/insightops/shared/vectors"
)

// extraRoutes registers the knowledge base, audit and accounts pages.
func (c *Console) extraRoutes(m *http.ServeMux) {
	m.HandleFunc("GET "+Prefix+"/dead-letters", c.authed(c.deadLetters))
	m.HandleFunc("POST "+Prefix+"/dead-letters/resubmit", c.authed(c.deadLetterResubmit))

	m.HandleFunc("GET "+Prefix+"/knowledge", c.authed(c.knowledgePage))
	m.HandleFunc("POST "+Prefix+"/knowledge/train", c.authed(c.knowledgeTrain))
	m.HandleFunc("POST "+Prefix+"/knowledge/clear", c.authed(c.knowledgeClear))

	m.HandleFunc("GET "+Prefix+"/audit", c.authed(c.auditPage))
	m.HandleFunc("GET "+Prefix+"/audit/export", c.authed(c.auditExport))

	m.HandleFunc("GET "+Prefix+"/accounts", c.authed(c.accountsPage))
	m.HandleFunc("POST "+Prefix+"/accounts/users", c.authed(c.userCreate))
	m.HandleFunc("POST "+Prefix+"/accounts/users/{id}", c.authed(c.userChange))
	m.HandleFunc("POST "+Prefix+"/accounts/users/{id}/delete", c.authed(c.userDelete))
	m.HandleFunc("POST "+Prefix+"/accounts/tokens", c.authed(c.tokenCreate))
	m.HandleFunc("POST "+Prefix+"/accounts/tokens/{id}/revoke", c.authed(c.tokenRevoke))
}

// kbPageSize is the knowledge base page's page size.
const kbPageSize = 25

type knowledgeData struct {
	Collections []vectors.CollectionInfo
	Names       []string
	Entries     []vectors.Entry
	Total       int
	Collection  string
	Query       string
	Page        int
	More        bool
	// Link is the page's query without the page number.
	Link string
	// Unavailable is why the knowledge base cannot be read (no Chroma).
	Unavailable *apiError
}

// knowledgePage shows GET /admin/db/chroma/knowledge-base: the
// collections, a page of entries, or with q the nearest entries and their
// distances.
func (c *Console) knowledgePage(w http.ResponseWriter, r *http.Request, s *session) error {
	q := r.URL.Query()
	d := knowledgeData{Names: vectors.Collections, Collection: q.Get("collection"), Query: strings.TrimSpace(q.Get("q"))}
	d.Page, _ = strconv.Atoi(q.Get("page"))
	d.Page = max(d.Page, 1)
	api, link := url.Values{}, url.Values{}
	for k, v := range map[string]string{"collection": d.Collection, "q": d.Query} {
		if v != "" {
			api.Set(k, v)
			link.Set(k, v)
		}
	}
	d.Link = link.Encode()
	api.Set("limit", strconv.Itoa(kbPageSize+1))
	api.Set("offset", strconv.Itoa((d.Page-1)*kbPageSize))
	var kb struct {
		Collections  []vectors.CollectionInfo `json:"collections"`
		Entries      []vectors.Entry          `json:"entries"`
		TotalEntries int                      `json:"total_entries"`
	}
	if err := c.call(r, s, http.MethodGet, "/admin/db/chroma/knowledge-base?"+api.Encode(), nil, &kb); err != nil {
		ae, ok := asAPIError(err)
		if !ok || ae.Status == http.StatusUnauthorized || ae.Code == codePasswordChangeRequired {
			return err
		}
		d.Unavailable = ae
	}
	d.Collections, d.Entries, d.Total = kb.Collections, kb.Entries, kb.TotalEntries
	if len(d.Entries) > kbPageSize {
		d.Entries, d.More = d.Entries[:kbPageSize], true
	}
	flash := ""
	if r.URL.Query().Get("cleared") != "" {
		flash = "Clear queued."
	}
	c.render(w, http.StatusOK, "knowledge", view{S: s, Title: "Knowledge base", Nav: "knowledge", Data: d, Flash: flash})
	return nil
}

// knowledgeTrain queues POST /admin/db/chroma/train.
func (c *Console) knowledgeTrain(w http.ResponseWriter, r *http.Request, s *session) error {
	var a accepted
	if err := c.call(r, s, http.MethodPost, "/admin/db/chroma/train", map[string]any{}, &a); err != nil {
		return err
	}
	toJob(w, r, a)
	return nil
}

// knowledgeClear queues DELETE /admin/db/chroma/clear?confirm=true once
// the operator typed the collection's name ("all" for the three).
func (c *Console) knowledgeClear(w http.ResponseWriter, r *http.Request, s *session) error {
	coll := r.PostFormValue("collection_name")
	want := coll
	if want == "" {
		want = "all"
	}
	if r.PostFormValue("confirm_name") != want {
		return &apiError{Status: http.StatusBadRequest, Code: "confirmation_required",
			Message: fmt.Sprintf("type %q exactly to confirm the clear", want)}
	}
	q := url.Values{"confirm": {"true"}}
	if coll != "" {
		q.Set("collection_name", coll)
	}
	var a accepted
	if err := c.call(r, s, http.MethodDelete, "/admin/db/chroma/clear?"+q.Encode(), nil, &a); err != nil {
		return err
	}
	toJob(w, r, a)
	return nil
}

// auditPageSize is the audit page's page size.
const auditPageSize = 50

// auditExportMax bounds one JSON-lines export.
const auditExportMax = 100000

// auditEntry is one row of GET /admin/db/audit.
type auditEntry struct {
	ID        int64           `json:"id"`
	At        time.Time       `json:"at"`
	Actor     string          `json:"actor"`
	Role      string          `json:"role"`
	Action    string          `json:"action"`
	Resource  string          `json:"resource"`
	JobID     string          `json:"job_id"`
	Outcome   string          `json:"outcome"`
	Detail    json.RawMessage `json:"detail"`
	SourceIP  string          `json:"source_ip"`
	RequestID string          `json:"request_id"`
}

type auditData struct {
	Entries []auditEntry
	Filter  url.Values
	Query   string
	Page    int
	More    bool
	Chain   *auditsink.Report
}

// auditFilterKeys are the audit filters the page passes to the API.
var auditFilterKeys = []string{"actor", "action", "outcome", "resource", "job_id", "since", "until"}

func auditFilter(r *http.Request) url.Values {
	f := url.Values{}
	for _, k := range auditFilterKeys {
		if v := strings.TrimSpace(r.URL.Query().Get(k)); v != "" {
			f.Set(k, v)
		}
	}
	return f
}

// auditPage shows GET /admin/db/audit with the page's filters, a page at a
// time, and with ?check=1 the hash-chain check (GET /admin/db/audit/verify).
func (c *Console) auditPage(w http.ResponseWriter, r *http.Request, s *session) error {
	f := auditFilter(r)
	d := auditData{Filter: f, Query: f.Encode()}
	d.Page, _ = strconv.Atoi(r.URL.Query().Get("page"))
	d.Page = max(d.Page, 1)
	api := url.Values{}
	for k, v := range f {
		api[k] = v
	}
	api.Set("limit", strconv.Itoa(auditPageSize+1))
	api.Set("offset", strconv.Itoa((d.Page-1)*auditPageSize))
	var page struct {
		Entries []auditEntry `json:"entries"`
	}
	if err := c.call(r, s, http.MethodGet, "/admin/db/audit?"+api.Encode(), nil, &page); err != nil {
		return err
	}
	d.Entries = page.Entries
	if len(d.Entries) > auditPageSize {
		d.Entries, d.More = d.Entries[:auditPageSize], true
	}
	if r.URL.Query().Get("check") != "" {
		var rep auditsink.Report
		if err := c.call(r, s, http.MethodGet, "/admin/db/audit/verify", nil, &rep); err != nil {
			return err
		}
		d.Chain = &rep
	}
	c.render(w, http.StatusOK, "audit", view{S: s, Title: "Audit", Nav: "audit", Data: d})
	return nil
}

// auditExport streams the filtered audit log as JSON lines, one API page
// (1,000 rows) at a time, at most auditExportMax rows.
func (c *Console) auditExport(w http.ResponseWriter, r *http.Request, s *session) error {
	f := auditFilter(r)
	const batch = 1000
	started := false
	for offset := 0; offset < auditExportMax; offset += batch {
		api := url.Values{}
		for k, v := range f {
			api[k] = v
		}
		api.Set("limit", strconv.Itoa(batch))
		api.Set("offset", strconv.Itoa(offset))
		var page struct {
			Entries []json.RawMessage `json:"entries"`
		}
		if err := c.call(r, s, http.MethodGet, "/admin/db/audit?"+api.Encode(), nil, &page); err != nil {
			if started {
				c.log.Warn("console: audit export cut short", "offset", offset, "err", err)
				return nil
			}
			return err
		}
		if !started {
			w.Header().Set("Content-Type", "application/x-ndjson")
			w.Header().Set("Content-Disposition", `attachment; filename="audit-`+time.Now().UTC().Format("20060102T150405Z")+`.jsonl"`)
			w.WriteHeader(http.StatusOK)
			started = true
		}
		for _, e := range page.Entries {
			if _, err := w.Write(append(e, '\n')); err != nil {
				return nil //nolint:nilerr // the browser went away: nothing left to answer
			}
		}
		if len(page.Entries) < batch {
			break
		}
	}
	return nil
}

type userRow struct {
	ID                 int64      `json:"id"`
	Email              string     `json:"email"`
	Role               string     `json:"role"`
	Active             bool       `json:"active"`
	MustChangePassword bool       `json:"must_change_password"`
	CreatedAt          time.Time  `json:"created_at"`
	PasswordChangedAt  *time.Time `json:"password_changed_at"`
}

type tokenRow struct {
	ID         int64      `json:"id"`
	Name       string     `json:"name"`
	Role       string     `json:"role"`
	CreatedBy  string     `json:"created_by"`
	CreatedAt  time.Time  `json:"created_at"`
	ExpiresAt  time.Time  `json:"expires_at"`
	LastUsedAt *time.Time `json:"last_used_at"`
}

type accountsData struct {
	Users  []userRow
	Tokens []tokenRow
	Roles  []string
	// Secret is a generated password or a new token's secret, shown once.
	Secret, SecretFor string
}

func (c *Console) accountsPage(w http.ResponseWriter, r *http.Request, s *session) error {
	return c.renderAccounts(w, r, s, accountsData{}, "")
}

// renderAccounts shows GET /admin/users and GET /admin/tokens, with d's
// one-time secret when there is one.
func (c *Console) renderAccounts(w http.ResponseWriter, r *http.Request, s *session, d accountsData, flash string) error {
	var users struct {
		Users []userRow `json:"users"`
	}
	if err := c.call(r, s, http.MethodGet, "/admin/users", nil, &users); err != nil {
		return err
	}
	var tokens struct {
		Tokens []tokenRow `json:"tokens"`
	}
	if err := c.call(r, s, http.MethodGet, "/admin/tokens", nil, &tokens); err != nil {
		return err
	}
	d.Users, d.Tokens, d.Roles = users.Users, tokens.Tokens, []string{"viewer", "operator", "admin"}
	if flash == "" {
		flash = r.URL.Query().Get("done")
	}
	c.render(w, http.StatusOK, "accounts", view{S: s, Title: "Accounts", Nav: "accounts", Data: d, Flash: flash})
	return nil
}

func toAccounts(w http.ResponseWriter, r *http.Request, done string) {
	http.Redirect(w, r, Prefix+"/accounts?done="+url.QueryEscape(done), http.StatusSeeOther)
}

// userCreate is POST /admin/users; a generated password is shown once.
func (c *Console) userCreate(w http.ResponseWriter, r *http.Request, s *session) error {
	body := map[string]any{"email": r.PostFormValue("email"), "role": r.PostFormValue("role")}
	if pw := r.PostFormValue("password"); pw != "" {
		body["password"] = pw
	}
	var created struct {
		User              userRow `json:"user"`
		GeneratedPassword string  `json:"generated_password"`
	}
	if err := c.call(r, s, http.MethodPost, "/admin/users", body, &created); err != nil {
		return err
	}
	d := accountsData{}
	if created.GeneratedPassword != "" {
		d.Secret, d.SecretFor = created.GeneratedPassword, "the password of "+created.User.Email+" (they must change it at first sign-in)"
	}
	return c.renderAccounts(w, r, s, d, "User "+created.User.Email+" created.")
}

// userChange is PATCH /admin/users/:id with the form's role or active flag.
func (c *Console) userChange(w http.ResponseWriter, r *http.Request, s *session) error {
	body := map[string]any{}
	if role := r.PostFormValue("role"); role != "" {
		body["role"] = role
	}
	if act := r.PostFormValue("active"); act != "" {
		body["active"] = act == "true"
	}
	if err := c.call(r, s, http.MethodPatch, "/admin/users/"+url.PathEscape(r.PathValue("id")), body, nil); err != nil {
		return err
	}
	toAccounts(w, r, "User changed.")
	return nil
}

// userDelete is DELETE /admin/users/:id.
func (c *Console) userDelete(w http.ResponseWriter, r *http.Request, s *session) error {
	if err := c.call(r, s, http.MethodDelete, "/admin/users/"+url.PathEscape(r.PathValue("id")), nil, nil); err != nil {
		return err
	}
	toAccounts(w, r, "User removed.")
	return nil
}

// tokenCreate is POST /admin/tokens; the secret is shown once.
func (c *Console) tokenCreate(w http.ResponseWriter, r *http.Request, s *session) error {
	days, _ := strconv.Atoi(r.PostFormValue("expires_in_days"))
	body := map[string]any{"name": r.PostFormValue("name"), "role": r.PostFormValue("role")}
	if days > 0 {
		body["expires_in_days"] = days
	}
	var created struct {
		Name  string `json:"name"`
		Token string `json:"token"`
	}
	if err := c.call(r, s, http.MethodPost, "/admin/tokens", body, &created); err != nil {
		return err
	}
	return c.renderAccounts(w, r, s, accountsData{Secret: created.Token, SecretFor: "service token " + created.Name + " (shown once)"}, "Token "+created.Name+" created.")
}

// tokenRevoke is DELETE /admin/tokens/:id.
func (c *Console) tokenRevoke(w http.ResponseWriter, r *http.Request, s *session) error {
	if err := c.call(r, s, http.MethodDelete, "/admin/tokens/"+url.PathEscape(r.PathValue("id")), nil, nil); err != nil {
		return err
	}
	toAccounts(w, r, "Token revoked.")
	return nil
}
