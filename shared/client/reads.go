package client

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"strconv"
	"time"
)

// KnowledgeBase is the answer of GET /admin/db/chroma/knowledge-base.
type KnowledgeBase struct {
	TotalCollections int              `json:"total_collections"`
	Collections      []CollectionInfo `json:"collections"`
	Entries          []KBEntry        `json:"entries"`
	TotalEntries     int              `json:"total_entries"`
	Collection       string           `json:"collection,omitempty"`
	Limit            int              `json:"limit"`
	Offset           int              `json:"offset"`
	Query            string           `json:"q,omitempty"`
	Chroma           string           `json:"chroma"`
}

// CollectionInfo is one Chroma collection with its count and metadata.
type CollectionInfo struct {
	Name     string         `json:"name"`
	Count    int            `json:"count"`
	Metadata map[string]any `json:"metadata"`
}

// KBEntry is one training entry (Vanna's get_training_data row), with its
// Distance for a similarity query (smaller is nearer).
type KBEntry struct {
	ID               string         `json:"id"`
	Question         *string        `json:"question"`
	Content          string         `json:"content"`
	TrainingDataType string         `json:"training_data_type"`
	Collection       string         `json:"collection"`
	Metadata         map[string]any `json:"metadata,omitempty"`
	Distance         *float64       `json:"distance,omitempty"`
}

// KBQuery selects a page of the knowledge base: one collection (sql, ddl,
// documentation; empty: all three), Limit (1–500) and Offset, or with Q
// the nearest entries to a question.
type KBQuery struct {
	Collection string
	Q          string
	Limit      int
	Offset     int
}

// KnowledgeBase reads the vector store's collections and a page of entries.
func (c *Client) KnowledgeBase(ctx context.Context, kq KBQuery) (KnowledgeBase, error) {
	q := url.Values{}
	setIf(q, "collection", kq.Collection)
	setIf(q, "q", kq.Q)
	if kq.Limit > 0 {
		q.Set("limit", strconv.Itoa(kq.Limit))
	}
	if kq.Offset > 0 {
		q.Set("offset", strconv.Itoa(kq.Offset))
	}
	var out KnowledgeBase
	err := c.get(ctx, "/admin/db/chroma/knowledge-base", q, &out)
	return out, err
}

// AuditEntry is one row of the audit trail (GET /admin/db/audit).
type AuditEntry struct {
	ID        int64           `json:"id"`
	EventID   string          `json:"event_id"`
	StreamSeq uint64          `json:"stream_seq"`
	At        time.Time       `json:"at"`
	Actor     string          `json:"actor"`
	Role      string          `json:"role,omitempty"`
	Action    string          `json:"action"`
	Resource  string          `json:"resource"`
	JobID     string          `json:"job_id,omitempty"`
	Outcome   string          `json:"outcome"`
	Detail    json.RawMessage `json:"detail,omitempty"`
	SourceIP  string          `json:"source_ip,omitempty"`
	RequestID string          `json:"request_id,omitempty"`
	Hash      string          `json:"hash"`
	PrevHash  string          `json:"prev_hash"`
}

// AuditFilter selects audit rows: exact actor, action, outcome, resource,
// job id; at in [Since, Until); Limit (1–1000, default 100) from Offset.
// Rows come newest first; with Follow, the rows stored after the row
// AfterID, oldest first (after_id).
type AuditFilter struct {
	Actor, Action, Outcome, Resource, JobID string
	Since, Until                            time.Time
	Limit, Offset                           int
	Follow                                  bool
	AfterID                                 int64
}

// Audit reads a page of the audit trail, newest first, or oldest first
// after f.AfterID with f.Follow (GET /admin/db/audit; admin).
func (c *Client) Audit(ctx context.Context, f AuditFilter) ([]AuditEntry, error) {
	q := url.Values{}
	setIf(q, "actor", f.Actor)
	setIf(q, "action", f.Action)
	setIf(q, "outcome", f.Outcome)
	setIf(q, "resource", f.Resource)
	setIf(q, "job_id", f.JobID)
	setIf(q, "since", timeOrZero(f.Since))
	setIf(q, "until", timeOrZero(f.Until))
	if f.Limit > 0 {
		q.Set("limit", strconv.Itoa(f.Limit))
	}
	if f.Offset > 0 {
		q.Set("offset", strconv.Itoa(f.Offset))
	}
	if f.Follow {
		q.Set("after_id", strconv.FormatInt(f.AfterID, 10))
	}
	var out struct {
		Entries []AuditEntry `json:"entries"`
		Count   int          `json:"count"`
		Limit   int          `json:"limit"`
		Offset  int          `json:"offset"`
	}
	err := c.get(ctx, "/admin/db/audit", q, &out)
	return out.Entries, err
}

// AuditVerifyReport is the answer of GET /admin/db/audit/verify.
type AuditVerifyReport struct {
	Rows   int64       `json:"rows"`
	OK     bool        `json:"ok"`
	Broken *AuditBreak `json:"first_broken,omitempty"`
}

// AuditBreak names the first audit row whose hash link does not hold.
type AuditBreak struct {
	ID        int64  `json:"id"`
	EventID   string `json:"event_id"`
	StreamSeq uint64 `json:"stream_seq"`
	Reason    string `json:"reason"`
}

// VerifyAudit recomputes the audit hash chain (GET /admin/db/audit/verify; admin).
func (c *Client) VerifyAudit(ctx context.Context) (AuditVerifyReport, error) {
	var out AuditVerifyReport
	err := c.get(ctx, "/admin/db/audit/verify", nil, &out)
	return out, err
}

// HealthReport is the answer of GET /admin/db/health.
type HealthReport struct {
	Status     string                `json:"status"` // ok, degraded or down
	Components map[string]Component  `json:"components"`
	Workers    map[string][]Worker   `json:"workers"`
	Queue      map[string]QueueDepth `json:"queue,omitempty"`
	Error      *ErrorDetail          `json:"error,omitempty"`
}

// Component is the health of one dependency.
type Component struct {
	Status     string     `json:"status"`
	Detail     string     `json:"detail,omitempty"`
	LatencyMS  float64    `json:"latency_ms"`
	CreatedAt  *time.Time `json:"created_at,omitempty"`
	VerifiedAt *time.Time `json:"verified_at,omitempty"`
}

// Worker is one live worker replica.
type Worker struct {
	ID          string    `json:"id"`
	Kind        string    `json:"kind"`
	Host        string    `json:"host"`
	PID         int       `json:"pid"`
	Concurrency int       `json:"concurrency"`
	InFlight    int64     `json:"in_flight"`
	StartedAt   time.Time `json:"started_at"`
	SeenAt      time.Time `json:"seen_at"`
}

// QueueDepth is one worker kind's backlog.
type QueueDepth struct {
	Pending    uint64 `json:"pending"`
	AckPending int    `json:"ack_pending"`
}

// ErrorDetail is the API's {"code", "message"}.
type ErrorDetail struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

// Health reads the deployment's health (GET /admin/db/health). A
// deployment that is down answers 503 with its report: Health then
// returns the report and the *Error.
func (c *Client) Health(ctx context.Context) (HealthReport, error) {
	var out HealthReport
	resp, err := c.do(ctx, request{method: http.MethodGet, path: "/admin/db/health"})
	if err != nil {
		var apiErr *Error
		if errors.As(err, &apiErr) && apiErr.Status == http.StatusServiceUnavailable && json.Unmarshal(apiErr.raw, &out) == nil && out.Status != "" {
			return out, err
		}
		return out, err
	}
	defer resp.Body.Close()
	err = c.decode(resp.Body, &out)
	return out, err
}
