// Package dashboards generates insightops's Grafana dashboards, the JSON
// files of deploy/monitoring/dashboards (`make dashboards` writes them;
// a test holds the files to this code). One datasource, DatasourceUID,
// provisioned by deploy/monitoring/grafana/datasources.yml, serves every
// panel.
package dashboards

import (
	"encoding/json"
	"fmt"
)

// DatasourceUID is the uid of the Prometheus datasource every panel uses.
const DatasourceUID = "insightops-prometheus"

// Dir is where the files live, relative to the repository root.
const Dir = "deploy/monitoring/dashboards"

// Dashboard is the part of Grafana's dashboard model insightops uses.
type Dashboard struct {
	UID           string     `json:"uid"`
	Title         string     `json:"title"`
	Description   string     `json:"description"`
	Tags          []string   `json:"tags"`
	Editable      bool       `json:"editable"`
	Refresh       string     `json:"refresh"`
	SchemaVersion int        `json:"schemaVersion"`
	Time          TimeRange  `json:"time"`
	Timezone      string     `json:"timezone"`
	Version       int        `json:"version"`
	Panels        []Panel    `json:"panels"`
	Templating    Templating `json:"templating"`
}

// TimeRange is the dashboard's default range.
type TimeRange struct {
	From string `json:"from"`
	To   string `json:"to"`
}

// Templating holds no variables (kept for Grafana's importer).
type Templating struct {
	List []any `json:"list"`
}

// Panel is one panel: a time series, a stat or a text.
type Panel struct {
	ID          int            `json:"id"`
	Type        string         `json:"type"`
	Title       string         `json:"title"`
	Description string         `json:"description,omitempty"`
	GridPos     GridPos        `json:"gridPos"`
	Datasource  *Datasource    `json:"datasource,omitempty"`
	Targets     []Target       `json:"targets,omitempty"`
	FieldConfig *FieldConfig   `json:"fieldConfig,omitempty"`
	Options     map[string]any `json:"options,omitempty"`
}

// GridPos places a panel on the 24-column grid.
type GridPos struct {
	H int `json:"h"`
	W int `json:"w"`
	X int `json:"x"`
	Y int `json:"y"`
}

// Datasource names the datasource by type and uid.
type Datasource struct {
	Type string `json:"type"`
	UID  string `json:"uid"`
}

// Target is one PromQL query of a panel.
type Target struct {
	RefID        string      `json:"refId"`
	Datasource   *Datasource `json:"datasource"`
	Expr         string      `json:"expr"`
	LegendFormat string      `json:"legendFormat,omitempty"`
}

// FieldConfig sets the unit of a panel's values.
type FieldConfig struct {
	Defaults  FieldDefaults `json:"defaults"`
	Overrides []any         `json:"overrides"`
}

// FieldDefaults is the unit (Grafana's unit ids: s, bytes, percentunit, short…).
type FieldDefaults struct {
	Unit string `json:"unit,omitempty"`
}

// q is a query with its legend.
type q struct{ expr, legend string }

// panel is a panel before layout.
type panel struct {
	kind, title, desc, unit string
	queries                 []q
	text                    string
	w, h                    int
}

func series(title, unit, desc string, queries ...q) panel {
	return panel{kind: "timeseries", title: title, unit: unit, desc: desc, queries: queries, w: 12, h: 8}
}

func stat(title, unit, desc string, queries ...q) panel {
	return panel{kind: "stat", title: title, unit: unit, desc: desc, queries: queries, w: 6, h: 5}
}

// build lays panels out left to right, wrapping at 24 columns.
func build(uid, title, desc string, panels ...panel) Dashboard {
	ds := &Datasource{Type: "prometheus", UID: DatasourceUID}
	d := Dashboard{
		UID: uid, Title: title, Description: desc, Tags: []string{"insightops"}, Editable: true,
		Refresh: "30s", SchemaVersion: 39, Time: TimeRange{From: "now-6h", To: "now"}, Timezone: "browser",
		Version: 1, Templating: Templating{List: []any{}},
	}
	x, y, rowH := 0, 0, 0
	for i, p := range panels {
		if x+p.w > 24 {
			x, y, rowH = 0, y+rowH, 0
		}
		out := Panel{ID: i + 1, Type: p.kind, Title: p.title, Description: p.desc, GridPos: GridPos{H: p.h, W: p.w, X: x, Y: y}}
		if p.kind == "text" {
			out.Options = map[string]any{"mode": "markdown", "content": p.text}
		} else {
			out.Datasource = ds
			out.FieldConfig = &FieldConfig{Defaults: FieldDefaults{Unit: p.unit}, Overrides: []any{}}
			for j, qq := range p.queries {
				out.Targets = append(out.Targets, Target{RefID: string(rune('A' + j)), Datasource: ds, Expr: qq.expr, LegendFormat: qq.legend})
			}
		}
		d.Panels = append(d.Panels, out)
		x += p.w
		rowH = max(rowH, p.h)
	}
	return d
}

// All returns every dashboard by file name.
func All() map[string]Dashboard {
	return map[string]Dashboard{
		"overview.json": build("insightops-overview", "insightops / overview",
			"The system at a glance: live workers, queues, running jobs, audit sink, stores.",
			stat("Live workers by kind", "short", "Instances with a live WORKERS presence key (read by the API).",
				q{`max by (kind) (insightops_workers_live)`, "{{kind}}"}),
			stat("Jobs running", "short", "Jobs running now across the worker replicas.",
				q{`sum by (kind) (insightops_jobs_running)`, "{{kind}}"}),
			stat("Audit sink lag", "short", "AUDIT events not yet copied to the System DB.",
				q{`max(insightops_consumer_pending_messages{stream="AUDIT",consumer="audit-sink"})`, "pending"}),
			stat("Backup store used", "percentunit", "Used over the store's size; empty for an unlimited bucket.",
				q{`max(insightops_backup_store_used_bytes) / max(insightops_backup_store_limit_bytes > 0)`, "used"}),
			series("Queue depth by worker kind", "short", "Jobs waiting for each worker kind's consumer on JOBS.",
				q{`max by (consumer) (insightops_consumer_pending_messages{stream="JOBS"})`, "{{consumer}} waiting"},
				q{`max by (consumer) (insightops_consumer_ack_pending_messages{stream="JOBS"})`, "{{consumer}} delivered, not acked"}),
			series("Live workers", "short", "", q{`max by (kind) (insightops_workers_live)`, "{{kind}}"}),
			series("Stream bytes vs limit", "bytes", "A limit of -1 is unlimited (not drawn).",
				q{`max by (stream) (insightops_stream_bytes)`, "{{stream}}"},
				q{`max by (stream) (insightops_stream_limit_bytes > 0)`, "{{stream}} limit"}),
			series("Job heartbeat age", "s", "Stalest heartbeat of a running job; alert above 60s.",
				q{`max by (kind) (insightops_job_heartbeat_age_seconds)`, "{{kind}}"}),
		),
		"jobs.json": build("insightops-jobs", "insightops / jobs",
			"Jobs by kind and final state, durations, attempts, retries and dead letters.",
			series("Jobs finished by kind and state", "short", "Per 5 minutes.",
				q{`sum by (kind, state) (increase(insightops_jobs_finished_total[5m]))`, "{{kind}} {{state}}"}),
			series("Job failure ratio by kind", "percentunit", "Failed over finished, 30 minutes.",
				q{`sum by (kind) (increase(insightops_jobs_finished_total{state="failed"}[30m])) / sum by (kind) (increase(insightops_jobs_finished_total[30m]))`, "{{kind}}"}),
			series("Job duration p50 / p95 by kind", "s", "Successful attempts.",
				q{`histogram_quantile(0.5, sum by (kind, le) (rate(insightops_job_duration_seconds_bucket{outcome="succeeded"}[15m])))`, "{{kind}} p50"},
				q{`histogram_quantile(0.95, sum by (kind, le) (rate(insightops_job_duration_seconds_bucket{outcome="succeeded"}[15m])))`, "{{kind}} p95"}),
			series("Attempts, retries and dead letters", "short", "Per 15 minutes.",
				q{`sum by (kind) (increase(insightops_job_attempts_total[15m]))`, "{{kind}} attempts"},
				q{`sum by (kind) (increase(insightops_job_retries_total[15m]))`, "{{kind}} retries"},
				q{`sum by (kind) (increase(insightops_jobs_dead_lettered_total[15m]))`, "{{kind}} dead-lettered"}),
			series("Jobs running", "short", "", q{`sum by (kind) (insightops_jobs_running)`, "{{kind}}"}),
			series("Redelivered jobs pending", "short", "Delivered more than once and still pending (a worker died or stalled).",
				q{`max by (consumer) (insightops_consumer_redelivered_messages{stream="JOBS"})`, "{{consumer}}"}),
		),
		"backups.json": build("insightops-backups", "insightops / backups",
			"Backup age, size and duration; verify, restore and drill outcomes; the backup store.",
			stat("Newest backup age", "s", "Now minus the newest archive's creation; the RPO alert fires past 25h.",
				q{`time() - max(insightops_backup_newest_archive_timestamp_seconds)`, "age"}),
			stat("Archives", "short", "", q{`max(insightops_backup_archives)`, "archives"}),
			stat("Last backup size", "bytes", "", q{`max(insightops_backup_last_bytes)`, "bytes"}),
			stat("Since last verified", "s", "Since this worker last verified an archive successfully.",
				q{`time() - max(insightops_backup_last_verified_timestamp_seconds > 0)`, "age"}),
			series("Backup age", "s", "", q{`time() - max(insightops_backup_newest_archive_timestamp_seconds)`, "newest archive"}),
			series("Backup duration p50 / p95", "s", "",
				q{`histogram_quantile(0.5, sum by (le) (rate(insightops_backup_duration_seconds_bucket[6h])))`, "p50"},
				q{`histogram_quantile(0.95, sum by (le) (rate(insightops_backup_duration_seconds_bucket[6h])))`, "p95"}),
			series("Verify outcomes", "short", "Per hour: archives that passed or failed verification.",
				q{`sum by (outcome) (increase(insightops_backup_verifications_total[1h]))`, "{{outcome}}"}),
			series("Restore outcomes", "short", "Per hour, by final state.",
				q{`sum by (state) (increase(insightops_jobs_finished_total{kind="restore.run"}[1h]))`, "{{state}}"}),
			series("Backup store used vs size", "bytes", "",
				q{`max(insightops_backup_store_used_bytes)`, "used"},
				q{`max(insightops_backup_store_limit_bytes > 0)`, "size"}),
			series("Restore drill outcomes", "short", "Per hour: scheduled restore drills of the newest archive (BACKUP_DRILL_SCHEDULE) that passed, failed, or could not run.",
				q{`sum by (outcome) (increase(insightops_backup_drills_total[1h]))`, "{{outcome}}"}),
		),
		"api.json": build("insightops-api", "insightops / API",
			"API request rate, errors and latency by route.",
			series("Requests by status", "reqps", "", q{`sum by (status) (rate(insightops_http_requests_total[5m]))`, "{{status}}"}),
			series("5xx ratio", "percentunit", "The error alert fires above 5% for 10 minutes.",
				q{`sum(rate(insightops_http_requests_total{status=~"5.."}[5m])) / sum(rate(insightops_http_requests_total[5m]))`, "5xx"}),
			series("Latency p95 by route", "s", "",
				q{`histogram_quantile(0.95, sum by (route, le) (rate(insightops_http_request_duration_seconds_bucket[5m])))`, "{{route}}"}),
			series("Latency p50 / p99", "s", "",
				q{`histogram_quantile(0.5, sum by (le) (rate(insightops_http_request_duration_seconds_bucket[5m])))`, "p50"},
				q{`histogram_quantile(0.99, sum by (le) (rate(insightops_http_request_duration_seconds_bucket[5m])))`, "p99"}),
			series("Errors by route", "reqps", "4xx and 5xx answers.",
				q{`sum by (route, status) (rate(insightops_http_requests_total{status=~"[45].."}[5m]))`, "{{route}} {{status}}"}),
		),
	}
}

// Files returns each dashboard's file content: indented JSON and a newline.
func Files() (map[string][]byte, error) {
	out := map[string][]byte{}
	for name, d := range All() {
		b, err := json.MarshalIndent(d, "", "  ")
		if err != nil {
			return nil, fmt.Errorf("dashboard %s: %w", name, err)
		}
		out[name] = append(b, '\n')
	}
	return out, nil
}
