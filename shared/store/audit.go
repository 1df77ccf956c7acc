package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
)

// AuditLog is a row of audit_logs: one audit event as published on the
// AUDIT stream, plus where it sat in the stream and its hash chain.
type AuditLog struct {
	ID        int64  // assigned by the database; ignored by InsertAuditLog
	EventID   string // the event's id (Nats-Msg-Id); unique
	StreamSeq uint64 // AUDIT stream sequence, 0 if unknown
	At        time.Time
	Actor     string
	Role      string
	Action    string // e.g. "backup.requested"
	Resource  string
	JobID     string
	Outcome   string // "success", "failure" or "denied"
	Detail    json.RawMessage
	SourceIP  string
	RequestID string
	PrevHash  string
	Hash      string
}

// InsertAuditLog appends an audit event. An event whose EventID is already
// stored is ignored (a redelivery), and inserted is false.
//
// Outcome is not constrained by the schema: the table records whatever was
// published, so a malformed event is kept rather than rejected forever.
func (db *DB) InsertAuditLog(ctx context.Context, e AuditLog) (inserted bool, err error) {
	switch {
	case e.EventID == "":
		return false, errors.New("store: insert audit log: empty event id")
	case e.Action == "":
		return false, fmt.Errorf("store: insert audit log %s: empty action", e.EventID)
	}
	if e.At.IsZero() {
		e.At = time.Now()
	}
	var detail any // NULL when absent
	if d := strings.TrimSpace(string(e.Detail)); d != "" && d != "null" {
		if !json.Valid(e.Detail) {
			return false, fmt.Errorf("store: insert audit log %s: detail is not valid JSON", e.EventID)
		}
		detail = d
	}
	res, err := db.SQL.ExecContext(ctx, db.Rebind(
		`INSERT INTO audit_logs (event_id, stream_seq, at, actor, role, action, resource, job_id,
		                         outcome, detail, source_ip, request_id, prev_hash, hash)
		 VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
		 ON CONFLICT (event_id) DO NOTHING`),
		e.EventID, int64(e.StreamSeq), db.timeArg(e.At), e.Actor, e.Role, e.Action, e.Resource, e.JobID,
		e.Outcome, detail, e.SourceIP, e.RequestID, e.PrevHash, e.Hash)
	if err != nil {
		return false, fmt.Errorf("store: insert audit log %s: %w", e.EventID, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return false, fmt.Errorf("store: insert audit log %s: %w", e.EventID, err)
	}
	return n > 0, nil
}

// AuditFilter selects audit log rows; zero fields do not filter.
type AuditFilter struct {
	Actor  string    // exact actor
	Action string    // exact action
	Since  time.Time // At >= Since
	Limit  int       // at most this many rows; 0 means 100, capped at 10000
}

// AuditLogs returns the audit rows matching f, newest first.
func (db *DB) AuditLogs(ctx context.Context, f AuditFilter) ([]AuditLog, error) {
	q := `SELECT id, event_id, stream_seq, at, actor, role, action, resource, job_id, outcome,
	             detail, source_ip, request_id, prev_hash, hash
	      FROM audit_logs WHERE 1 = 1`
	var args []any
	if f.Actor != "" {
		q += ` AND actor = ?`
		args = append(args, f.Actor)
	}
	if f.Action != "" {
		q += ` AND action = ?`
		args = append(args, f.Action)
	}
	if !f.Since.IsZero() {
		q += ` AND at >= ?`
		args = append(args, db.timeArg(f.Since))
	}
	limit := f.Limit
	if limit <= 0 {
		limit = 100
	}
	limit = min(limit, 10000)
	q += ` ORDER BY at DESC, id DESC LIMIT ?`
	args = append(args, limit)

	rows, err := db.SQL.QueryContext(ctx, db.Rebind(q), args...)
	if err != nil {
		return nil, fmt.Errorf("store: list audit logs: %w", err)
	}
	defer rows.Close()
	out := []AuditLog{}
	for rows.Next() {
		var (
			e      AuditLog
			seq    int64
			detail []byte
		)
		if err := rows.Scan(&e.ID, &e.EventID, &seq, scanTime{&e.At}, &e.Actor, &e.Role, &e.Action,
			&e.Resource, &e.JobID, &e.Outcome, &detail, &e.SourceIP, &e.RequestID, &e.PrevHash, &e.Hash); err != nil {
			return nil, fmt.Errorf("store: list audit logs: %w", err)
		}
		e.StreamSeq = uint64(seq)
		if len(detail) > 0 {
			e.Detail = json.RawMessage(detail)
		}
		out = append(out, e)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: list audit logs: %w", err)
	}
	return out, nil
}
