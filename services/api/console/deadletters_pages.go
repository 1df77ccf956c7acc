package console

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/insightops/insightops/shared/jobs"
)

// deadLetter is one entry of GET /admin/db/dead-letters.
type deadLetter struct {
	Seq        uint64          `json:"seq"`
	At         time.Time       `json:"at"`
	JobID      string          `json:"job_id"`
	Kind       string          `json:"kind"`
	Params     json.RawMessage `json:"params"`
	Error      string          `json:"error"`
	Deliveries int             `json:"deliveries"`
}

// Resubmittable reports whether the console offers a one-click
// re-submission: not for destructive kinds, which go through their own
// confirmation pages.
func (d deadLetter) Resubmittable() bool { return resubmitPath(d.Kind, nil) != "" }

// resubmitPath is the API route that queues a job of kind with params
// (the route a client uses to submit that kind), or "" when the console
// does not re-submit that kind in one click.
func resubmitPath(kind string, params map[string]any) string {
	switch kind {
	case jobs.KindInit:
		return "/admin/db/init"
	case jobs.KindBackupCreate:
		return "/admin/db/backup"
	case jobs.KindBackupPrune:
		return "/admin/db/backup/prune"
	case jobs.KindChromaTrain:
		return "/admin/db/chroma/train"
	case jobs.KindBackupVerify:
		if params == nil {
			return "verify"
		}
		name, _ := params["name"].(string)
		delete(params, "name")
		return "/admin/db/backup/" + url.PathEscape(name) + "/verify"
	}
	return ""
}

type deadLettersData struct {
	Letters []deadLetter
	Total   uint64
	Page    int
	More    bool
}

const deadLetterPageSize = 50

// deadLetters shows GET /admin/db/dead-letters a page at a time.
func (c *Console) deadLetters(w http.ResponseWriter, r *http.Request, s *session) error {
	page, _ := strconv.Atoi(r.URL.Query().Get("page"))
	page = max(page, 1)
	var list struct {
		DeadLetters []deadLetter `json:"dead_letters"`
		Total       uint64       `json:"total"`
	}
	q := url.Values{"limit": {strconv.Itoa(deadLetterPageSize)}, "offset": {strconv.Itoa((page - 1) * deadLetterPageSize)}}
	if err := c.call(r, s, http.MethodGet, "/admin/db/dead-letters?"+q.Encode(), nil, &list); err != nil {
		return err
	}
	d := deadLettersData{Letters: list.DeadLetters, Total: list.Total, Page: page,
		More: uint64(page*deadLetterPageSize) < list.Total}
	c.render(w, http.StatusOK, "deadletters", view{S: s, Title: "Dead letters", Nav: "jobs", Data: d, Live: true})
	return nil
}

// deadLetterResubmit queues a new job with a dead letter's kind and params
// on the kind's own submit route, so it is validated, locked and audited
// as any submission of that kind.
func (c *Console) deadLetterResubmit(w http.ResponseWriter, r *http.Request, s *session) error {
	kind := r.PostFormValue("kind")
	params := map[string]any{}
	if raw := r.PostFormValue("params"); raw != "" && raw != "null" {
		if err := json.Unmarshal([]byte(raw), &params); err != nil {
			return &apiError{Status: http.StatusBadRequest, Code: "bad_request", Message: "the dead letter's params are not a JSON object"}
		}
	}
	path := resubmitPath(kind, params)
	if path == "" {
		return &apiError{Status: http.StatusBadRequest, Code: "bad_request",
			Message: "a " + kind + " job is re-submitted from its own page (it needs a typed confirmation)"}
	}
	var a accepted
	if err := c.call(r, s, http.MethodPost, path, params, &a); err != nil {
		return err
	}
	toJob(w, r, a)
	return nil
}
