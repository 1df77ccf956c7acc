package console

import (
	"fmt"
	"net/http"
	"sort"
	"time"

	"github.com/insightops/insightops/shared/presence"
)

// healthReport is GET /admin/db/health's answer as the console reads it.
type healthReport struct {
	Status     string                       `json:"status"`
	Components map[string]component         `json:"components"`
	Workers    map[string][]presence.Worker `json:"workers"`
	Queue      map[string]struct {
		Pending    uint64 `json:"pending"`
		AckPending int    `json:"ack_pending"`
	} `json:"queue"`
}

type component struct {
	Status     string     `json:"status"`
	Detail     string     `json:"detail"`
	LatencyMS  float64    `json:"latency_ms"`
	CreatedAt  *time.Time `json:"created_at"`
	VerifiedAt *time.Time `json:"verified_at"`
}

// namedComponent is one row of the overview's component table.
type namedComponent struct {
	Name string
	component
}

// kindRow is one worker kind: live workers, jobs in flight, queue depth.
type kindRow struct {
	Kind       string
	Workers    int
	InFlight   int64
	Pending    uint64
	AckPending int
}

type overviewData struct {
	Status     string
	Components []namedComponent
	Kinds      []kindRow
	LastBackup *time.Time
	LastVerify *time.Time
	// DeadLetters counts JOBS_DLQ (-1: unknown).
	DeadLetters int64
	Warnings    []string
}

// componentNames is the order of the overview's rows and their labels.
var componentNames = map[string]string{
	"nats": "NATS", "system_db": "System DB", "target_db": "Target DB", "chroma": "Chroma",
	"backups": "Backups", "workers": "Workers",
}

// advice says what to do about a component that is not ok.
var advice = map[string]string{
	"nats":      "NATS is unreachable: check the NATS server (NATS_URL) and its logs; no job can be queued until it is back.",
	"system_db": "The System DB is unreachable: check DATABASE_URL and the database server; sign-ins and the audit copy wait for it.",
	"target_db": "The target DB is unavailable: check TARGET_DATABASE_URL (or ENABLE_TARGET_DB) and restore it from a backup if it is damaged.",
	"chroma":    "Chroma is unreachable: check CHROMA_URL and the Chroma server; training and searches fail until it is back.",
	"backups":   "Backups are stale: run a backup now (Backups page) and check the backup schedule.",
	"workers":   "A worker kind has no live worker: start it, or its jobs wait in the queue.",
}

func (c *Console) overview(w http.ResponseWriter, r *http.Request, s *session) error {
	var rep healthReport
	if err := c.call(r, s, http.MethodGet, "/admin/db/health", nil, &rep); err != nil {
		// 503 carries the report too: show it, with the components down.
		if ae, ok := asAPIError(err); !ok || ae.Status != http.StatusServiceUnavailable || rep.Components == nil {
			return err
		}
	}
	d := overviewData{Status: rep.Status}
	for name, comp := range rep.Components {
		d.Components = append(d.Components, namedComponent{Name: name, component: comp})
		if comp.Status != "ok" && comp.Status != "disabled" {
			msg := advice[name]
			if msg == "" {
				msg = "check " + name
			}
			d.Warnings = append(d.Warnings, fmt.Sprintf("%s is %s (%s). %s", label(name), comp.Status, comp.Detail, msg))
		}
	}
	sort.Slice(d.Components, func(i, j int) bool { return d.Components[i].Name < d.Components[j].Name })
	if b, ok := rep.Components["backups"]; ok {
		d.LastBackup, d.LastVerify = b.CreatedAt, b.VerifiedAt
		if b.CreatedAt != nil && b.VerifiedAt == nil {
			d.Warnings = append(d.Warnings, "No backup has been verified: verify the newest one (Backups page), or a restore may fail when you need it.")
		}
	}
	kinds := make([]string, 0, len(rep.Workers))
	for k := range rep.Workers {
		kinds = append(kinds, k)
	}
	sort.Strings(kinds)
	for _, k := range kinds {
		row := kindRow{Kind: k, Workers: len(rep.Workers[k])}
		for _, wk := range rep.Workers[k] {
			row.InFlight += wk.InFlight
		}
		if q, ok := rep.Queue[k]; ok {
			row.Pending, row.AckPending = q.Pending, q.AckPending
		}
		if row.Workers == 0 && row.Pending > 0 {
			d.Warnings = append(d.Warnings, fmt.Sprintf("%d %s job(s) are queued and no %s worker is alive: start one.", row.Pending, k, k))
		}
		d.Kinds = append(d.Kinds, row)
	}
	d.DeadLetters = -1
	var dl struct {
		Total int64 `json:"total"`
	}
	if err := c.call(r, s, http.MethodGet, "/admin/db/dead-letters?limit=1", nil, &dl); err == nil {
		d.DeadLetters = dl.Total
		if dl.Total > 0 {
			d.Warnings = append(d.Warnings, fmt.Sprintf("%d job(s) failed after their last delivery: see Dead letters (Jobs page) for the reasons, fix the cause, then re-submit.", dl.Total))
		}
	}
	flash := ""
	if r.URL.Query().Get("changed") != "" {
		flash = "Password changed."
	}
	c.render(w, http.StatusOK, "overview", view{S: s, Title: "Overview", Nav: "overview", Data: d, Flash: flash, Live: true})
	return nil
}

func label(name string) string {
	if l, ok := componentNames[name]; ok {
		return l
	}
	return name
}
