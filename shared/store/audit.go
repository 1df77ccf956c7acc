package store

import (
	"context"
	"database/sql"
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
	Actor    string    // exact actor
	Action   string    // exact action
	Outcome  string    // exact outcome
	Resource string    // exact resource
	JobID    string    // exact job id
	Since    time.Time // At >= Since
	Until    time.Time // At < Until
	Limit    int       // at most this many rows; 0 means 100, capped at 10000
	Offset   int       // rows to skip, for paging
	// Follow returns the rows with an id above AfterID, oldest first: ids
	// grow in the order rows were stored (the audit sink stores one event
	// at a time), so a reader follows the trail by asking again after the
	// last id it has, missing none and seeing none twice.
	Follow  bool
	AfterID int64
}

// AuditLogs returns the audit rows matching f, newest first (oldest first
// with Follow).
func (db *DB) AuditLogs(ctx context.Context, f AuditFilter) ([]AuditLog, error) {
	var q strings.Builder
	q.WriteString(`SELECT id, event_id, stream_seq, at, actor, role, action, resource, job_id, outcome,
	             detail, source_ip, request_id, prev_hash, hash
	      FROM audit_logs WHERE 1 = 1`)
	var args []any
	if f.Actor != "" {
		q.WriteString(` AND actor = ?`)
		args = append(args, f.Actor)
	}
	if f.Action != "" {
		q.WriteString(` AND action = ?`)
		args = append(args, f.Action)
	}
	for _, c := range []struct{ col, v string }{{"outcome", f.Outcome}, {"resource", f.Resource}, {"job_id", f.JobID}} {
		if c.v != "" {
			q.WriteString(` AND ` + c.col + ` = ?`)
			args = append(args, c.v)
		}
	}
	if !f.Since.IsZero() {
		q.WriteString(` AND at >= ?`)
		args = append(args, db.timeArg(f.Since))
	}
	if !f.Until.IsZero() {
		q.WriteString(` AND at < ?`)
		args = append(args, db.timeArg(f.Until))
	}
	limit := f.Limit
	if limit <= 0 {
		limit = 100
	}
	limit = min(limit, 10000)
	order := ` ORDER BY at DESC, id DESC`
	if f.Follow {
		q.WriteString(` AND id > ?`)
		args = append(args, f.AfterID)
		order = ` ORDER BY id ASC`
	}
	q.WriteString(order + ` LIMIT ? OFFSET ?`)
	args = append(args, limit, max(f.Offset, 0))

	rows, err := db.SQL.QueryContext(ctx, db.Rebind(q.String()), args...)
	if err != nil {
		return nil, fmt.Errorf("store: list audit logs: %w", err)
	}
	defer rows.Close()
	out := []AuditLog{}
	for rows.Next() {
		e, err := scanAuditLog(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, e)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: list audit logs: %w", err)
	}
	return out, nil
}

// AuditEventExists reports whether an event id is stored.
func (db *DB) AuditEventExists(ctx context.Context, eventID string) (bool, error) {
	var n int
	err := db.SQL.QueryRowContext(ctx, db.Rebind(`SELECT COUNT(*) FROM audit_logs WHERE event_id = ?`), eventID).Scan(&n)
	if err != nil {
		return false, fmt.Errorf("store: audit event %s: %w", eventID, err)
	}
	return n > 0, nil
}

// LastAuditHash is the hash of the row with the highest stream sequence,
// or "" when the table is empty.
func (db *DB) LastAuditHash(ctx context.Context) (string, error) {
	var h string
	err := db.SQL.QueryRowContext(ctx, `SELECT hash FROM audit_logs ORDER BY stream_seq DESC, id DESC LIMIT 1`).Scan(&h)
	if errors.Is(err, sql.ErrNoRows) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("store: last audit hash: %w", err)
	}
	return h, nil
}

// EachAuditLog calls fn for every row in stream order; an error from fn
// stops the walk and is returned.
func (db *DB) EachAuditLog(ctx context.Context, fn func(AuditLog) error) error {
	rows, err := db.SQL.QueryContext(ctx, `SELECT id, event_id, stream_seq, at, actor, role, action, resource, job_id, outcome,
	             detail, source_ip, request_id, prev_hash, hash
	      FROM audit_logs ORDER BY stream_seq, id`)
	if err != nil {
		return fmt.Errorf("store: walk audit logs: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		e, err := scanAuditLog(rows)
		if err != nil {
			return err
		}
		if err := fn(e); err != nil {
			return err
		}
	}
	return rows.Err()
}

func scanAuditLog(rows *sql.Rows) (AuditLog, error) {
	var (
		e      AuditLog
		seq    int64
		detail []byte
	)
	if err := rows.Scan(&e.ID, &e.EventID, &seq, scanTime{&e.At}, &e.Actor, &e.Role, &e.Action,
		&e.Resource, &e.JobID, &e.Outcome, &detail, &e.SourceIP, &e.RequestID, &e.PrevHash, &e.Hash); err != nil {
		return e, fmt.Errorf("store: read audit log: %w", err)
	}
	e.StreamSeq = uint64(seq)
	if len(detail) > 0 {
		e.Detail = json.RawMessage(detail)
	}
	return e, nil
}
