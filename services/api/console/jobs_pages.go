package console

import (
	"encoding/json"
	"net/http"
	"net/url"
	"sort"
	"strconv"

	"github.com/insightops/insightops/shared/jobs"
)

// jobPageSize is the jobs page's page size.
const jobPageSize = 50

type jobListData struct {
	Tasks []jobs.Record
	Kinds []string
	// States are the job states to filter by.
	States []string
	Filter url.Values
	// Query is the filter as a query string (without the page).
	Query string
	Page  int
	More  bool
}

// jobList shows GET /admin/db/tasks with the page's filters, a page at a
// time: the API is asked for one record more than a page to know whether
// there is a next one.
func (c *Console) jobList(w http.ResponseWriter, r *http.Request, s *session) error {
	q := r.URL.Query()
	f := url.Values{}
	for _, k := range []string{"kind", "state", "submitted_by", "since", "until"} {
		if v := q.Get(k); v != "" {
			f.Set(k, v)
		}
	}
	page, _ := strconv.Atoi(q.Get("page"))
	page = max(page, 1)
	api := url.Values{}
	for k, v := range f {
		api[k] = v
	}
	api.Set("limit", strconv.Itoa(jobPageSize+1))
	if page > 1 {
		api.Set("offset", strconv.Itoa((page-1)*jobPageSize))
	}
	var list struct {
		Tasks []jobs.Record `json:"tasks"`
	}
	if err := c.call(r, s, http.MethodGet, "/admin/db/tasks?"+api.Encode(), nil, &list); err != nil {
		return err
	}
	d := jobListData{Tasks: list.Tasks, Kinds: jobs.Kinds, Filter: f, Query: f.Encode(), Page: page,
		States: []string{string(jobs.Queued), string(jobs.Running), string(jobs.Succeeded), string(jobs.Failed), string(jobs.Cancelled)}}
	if len(d.Tasks) > jobPageSize {
		d.Tasks, d.More = d.Tasks[:jobPageSize], true
	}
	c.render(w, http.StatusOK, "jobs", view{S: s, Title: "Jobs", Nav: "jobs", Data: d, Live: true})
	return nil
}

// stepRow is one step of a job's result (the timeline).
type stepRow struct {
	Name       string          `json:"name"`
	Status     string          `json:"status"`
	DurationMS float64         `json:"duration_ms"`
	Detail     json.RawMessage `json:"detail"`
}

type auditRow struct {
	At       string          `json:"at"`
	Actor    string          `json:"actor"`
	Action   string          `json:"action"`
	Outcome  string          `json:"outcome"`
	Detail   json.RawMessage `json:"detail"`
	SourceIP string          `json:"source_ip"`
}

// partRow is one component of a backup's or restore's result.
type partRow struct {
	Name   string
	Status string `json:"status"`
	Reason string `json:"reason"`
	Bytes  int64  `json:"bytes"`
	Count  int64  `json:"count"`
}

type jobData struct {
	Job   jobs.Record
	Steps []stepRow
	Parts []partRow
	Audit []auditRow
	// AuditHidden: the audit log needs the admin role.
	AuditHidden bool
}

// jobPage shows one job: its record, the steps of its result, and (for an
// admin) its audit events; a script follows the job's event stream.
func (c *Console) jobPage(w http.ResponseWriter, r *http.Request, s *session) error {
	id := r.PathValue("id")
	var d jobData
	if err := c.call(r, s, http.MethodGet, "/admin/db/tasks/"+url.PathEscape(id), nil, &d.Job); err != nil {
		return err
	}
	var res struct {
		Steps      []stepRow          `json:"steps"`
		Components map[string]partRow `json:"components"`
	}
	if len(d.Job.Result) > 0 && json.Unmarshal(d.Job.Result, &res) == nil {
		d.Steps = res.Steps
		for name, p := range res.Components {
			p.Name = name
			d.Parts = append(d.Parts, p)
		}
		sort.Slice(d.Parts, func(i, j int) bool { return d.Parts[i].Name < d.Parts[j].Name })
	}
	if s.Can("admin") {
		var a struct {
			Entries []auditRow `json:"entries"`
		}
		if err := c.call(r, s, http.MethodGet, "/admin/db/audit?job_id="+url.QueryEscape(id)+"&limit=100", nil, &a); err == nil {
			d.Audit = a.Entries
		}
	} else {
		d.AuditHidden = true
	}
	flash := r.URL.Query().Get("queued")
	if flash != "" {
		flash = "Queued: " + flash
	}
	c.render(w, http.StatusOK, "job", view{S: s, Title: "Job " + d.Job.Kind, Nav: "jobs", Data: d, Flash: flash})
	return nil
}

// jobEvents is the page's event stream: GET /admin/db/tasks/:id/events
// itself, authenticated by the session cookie.
func (c *Console) jobEvents(w http.ResponseWriter, r *http.Request, s *session) error {
	return c.raw(w, r, s, "/admin/db/tasks/"+url.PathEscape(r.PathValue("id"))+"/events")
}

// jobCancel cancels through DELETE /admin/db/tasks/:id.
func (c *Console) jobCancel(w http.ResponseWriter, r *http.Request, s *session) error {
	id := r.PathValue("id")
	if err := c.call(r, s, http.MethodDelete, "/admin/db/tasks/"+url.PathEscape(id), nil, nil); err != nil {
		return err
	}
	http.Redirect(w, r, Prefix+"/jobs/"+url.PathEscape(id)+"?queued=cancellation", http.StatusSeeOther)
	return nil
}
