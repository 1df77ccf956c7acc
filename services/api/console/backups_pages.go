package console

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/insightops/insightops/shared/backupfmt"
)

// backupItem is one archive of GET /admin/db/backup/list.
type backupItem struct {
	Filename      string            `json:"filename"`
	SizeBytes     int64             `json:"size_bytes"`
	Created       time.Time         `json:"created"`
	Components    []string          `json:"components"`
	SHA256        string            `json:"sha256"`
	Verified      bool              `json:"verified"`
	VerifiedAt    *time.Time        `json:"verified_at"`
	VerifyOutcome string            `json:"verify_outcome"`
	VerifyError   string            `json:"verify_error"`
	Skipped       map[string]string `json:"skipped"`
	Note          string            `json:"note"`
	JobID         string            `json:"job_id"`
	// Signature is the archive's signature status as the API reports it
	// (any JSON: a status string, a flag or an object), absent when the
	// API does not sign archives.
	Signature json.RawMessage `json:"signature"`
}

// SignatureText is the signature status for display: a string as it is,
// anything else as compact JSON, "" when there is none.
func (b backupItem) SignatureText() string {
	raw := bytes.TrimSpace(b.Signature)
	if len(raw) == 0 || string(raw) == "null" {
		return ""
	}
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return s
	}
	var buf bytes.Buffer
	if json.Compact(&buf, raw) != nil {
		return string(raw)
	}
	return buf.String()
}

type backupsData struct {
	Backups    []backupItem
	Components []string
}

// accepted is the part of a 202 answer the console follows: the job.
type accepted struct {
	TaskID  string `json:"task_id"`
	Message string `json:"message"`
}

func (c *Console) backupList(w http.ResponseWriter, r *http.Request, s *session) error {
	var list struct {
		Backups []backupItem `json:"backups"`
	}
	if err := c.call(r, s, http.MethodGet, "/admin/db/backup/list", nil, &list); err != nil {
		return err
	}
	c.render(w, http.StatusOK, "backups", view{S: s, Title: "Backups", Nav: "backups", Live: true,
		Data: backupsData{Backups: list.Backups, Components: backupfmt.Components}})
	return nil
}

// toJob follows a queued job to its page.
func toJob(w http.ResponseWriter, r *http.Request, a accepted) {
	http.Redirect(w, r, Prefix+"/jobs/"+url.PathEscape(a.TaskID)+"?queued="+url.QueryEscape(a.Message), http.StatusSeeOther)
}

// backupCreate queues a backup through POST /admin/db/backup with the
// form's components (none ticked: the API's default, every enabled one)
// and note.
func (c *Console) backupCreate(w http.ResponseWriter, r *http.Request, s *session) error {
	body := map[string]any{}
	if err := r.ParseForm(); err != nil {
		return &apiError{Status: http.StatusBadRequest, Code: "bad_request", Message: "unreadable form"}
	}
	if comps := r.PostForm["components"]; len(comps) > 0 {
		body["components"] = comps
	}
	if note := strings.TrimSpace(r.PostFormValue("note")); note != "" {
		body["note"] = note
	}
	var a accepted
	if err := c.call(r, s, http.MethodPost, "/admin/db/backup", body, &a); err != nil {
		return err
	}
	toJob(w, r, a)
	return nil
}

// backupVerify queues POST /admin/db/backup/:name/verify.
func (c *Console) backupVerify(w http.ResponseWriter, r *http.Request, s *session) error {
	var a accepted
	if err := c.call(r, s, http.MethodPost, "/admin/db/backup/"+url.PathEscape(r.PathValue("name"))+"/verify", nil, &a); err != nil {
		return err
	}
	toJob(w, r, a)
	return nil
}

// backupPrune queues POST /admin/db/backup/prune; "preview" is a dry run
// whose job result lists what would go, a real prune needs "prune" typed.
func (c *Console) backupPrune(w http.ResponseWriter, r *http.Request, s *session) error {
	prune := r.PostFormValue("mode") == "prune"
	if prune && r.PostFormValue("confirm_name") != "prune" {
		return &apiError{Status: http.StatusBadRequest, Code: "confirmation_required", Message: `type "prune" to confirm deleting archives`}
	}
	var a accepted
	body := map[string]any{"dry_run": !prune}
	if err := c.call(r, s, http.MethodPost, "/admin/db/backup/prune", body, &a); err != nil {
		return err
	}
	toJob(w, r, a)
	return nil
}

func (c *Console) restorePage(w http.ResponseWriter, r *http.Request, s *session) error {
	name := r.PathValue("name")
	var list struct {
		Backups []backupItem `json:"backups"`
	}
	if err := c.call(r, s, http.MethodGet, "/admin/db/backup/list", nil, &list); err != nil {
		return err
	}
	for _, b := range list.Backups {
		if b.Filename == name {
			c.render(w, http.StatusOK, "restore", view{S: s, Title: "Restore " + name, Nav: "backups", Data: b})
			return nil
		}
	}
	return &apiError{Status: http.StatusNotFound, Code: "not_found", Message: "no backup archive named " + name}
}

// restoreSubmit queues POST /admin/db/backup/restore/:name?confirm=true
// once the operator typed the archive's name exactly.
func (c *Console) restoreSubmit(w http.ResponseWriter, r *http.Request, s *session) error {
	name := r.PathValue("name")
	if r.PostFormValue("confirm_name") != name {
		return &apiError{Status: http.StatusBadRequest, Code: "confirmation_required",
			Message: "type the archive's name exactly to confirm the restore"}
	}
	body := map[string]any{}
	if r.PostFormValue("skip_safety_backup") == "on" {
		body["skip_safety_backup"] = true
	}
	var a accepted
	if err := c.call(r, s, http.MethodPost, "/admin/db/backup/restore/"+url.PathEscape(name)+"?confirm=true", body, &a); err != nil {
		return err
	}
	toJob(w, r, a)
	return nil
}
