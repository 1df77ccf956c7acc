package snapshot

import (
	"bufio"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	sqlite "modernc.org/sqlite"

	"github.com/insightops/insightops/shared/store"
)

// sqliteRestorer is the part of modernc.org/sqlite's driver connection that
// runs the online backup API in the restore direction.
type sqliteRestorer interface {
	NewRestore(srcURI string) (*sqlite.Backup, error)
}

// isBusy reports whether err is SQLITE_BUSY or SQLITE_LOCKED, after which a
// backup step may be retried.
func isBusy(err error) bool {
	if se, ok := errors.AsType[*sqlite.Error](err); ok {
		c := se.Code() & 0xff
		return c == 5 || c == 6
	}
	return false
}

// auditRow is one saved audit_logs row, one JSON object per line.
type auditRow struct {
	ID        int64   `json:"id"`
	EventID   string  `json:"event_id"`
	StreamSeq int64   `json:"stream_seq"`
	At        string  `json:"at"` // SQLite: the stored text; PostgreSQL: RFC 3339
	Actor     string  `json:"actor"`
	Role      string  `json:"role"`
	Action    string  `json:"action"`
	Resource  string  `json:"resource"`
	JobID     string  `json:"job_id"`
	Outcome   string  `json:"outcome"`
	Detail    *string `json:"detail"` // nil: NULL
	SourceIP  string  `json:"source_ip"`
	RequestID string  `json:"request_id"`
	PrevHash  string  `json:"prev_hash"`
	Hash      string  `json:"hash"`
}

const auditCols = "id, event_id, stream_seq, at, actor, role, action, resource, job_id, outcome, detail, source_ip, request_id, prev_hash, hash"

// auditColsNoID is auditCols without id.
var auditColsNoID = strings.TrimPrefix(auditCols, "id, ")

// hasAuditTable reports whether audit_logs exists (a database restored
// before its first migration has none).
func hasAuditTable(ctx context.Context, db *sql.DB, dialect store.Dialect) (bool, error) {
	var ok bool
	q := `SELECT count(*) > 0 FROM sqlite_schema WHERE type = 'table' AND name = 'audit_logs'`
	if dialect == store.Postgres {
		q = `SELECT to_regclass('audit_logs') IS NOT NULL`
	}
	if err := db.QueryRowContext(ctx, q).Scan(&ok); err != nil {
		return false, fmt.Errorf("look for audit_logs: %w", err)
	}
	return ok, nil
}

// saveAudit streams every audit_logs row of db into a new JSONL file in dir
// and returns its path and the number of rows. The file is fsynced: it is
// the only copy of events recorded after the backup until they are
// re-inserted.
func saveAudit(ctx context.Context, db *sql.DB, dialect store.Dialect, dir string) (path string, n int64, err error) {
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return "", 0, fmt.Errorf("create %s: %w", dir, err)
	}
	f, err := os.CreateTemp(dir, "insightops-audit-"+time.Now().UTC().Format("20060102T150405Z")+"-*.jsonl")
	if err != nil {
		return "", 0, fmt.Errorf("create audit file: %w", err)
	}
	path = f.Name()
	defer func() {
		if err != nil {
			_ = f.Close()
			_ = os.Remove(path)
		}
	}()
	ok, err := hasAuditTable(ctx, db, dialect)
	if err != nil {
		return "", 0, err
	}
	bw := bufio.NewWriterSize(f, 256<<10)
	if ok {
		rows, err := db.QueryContext(ctx, "SELECT "+auditCols+" FROM audit_logs ORDER BY id")
		if err != nil {
			return "", 0, fmt.Errorf("read audit_logs: %w", err)
		}
		defer rows.Close()
		enc := json.NewEncoder(bw)
		for rows.Next() {
			var (
				a      auditRow
				at     any
				detail sql.NullString
			)
			if err := rows.Scan(&a.ID, &a.EventID, &a.StreamSeq, &at, &a.Actor, &a.Role, &a.Action, &a.Resource,
				&a.JobID, &a.Outcome, &detail, &a.SourceIP, &a.RequestID, &a.PrevHash, &a.Hash); err != nil {
				return "", 0, fmt.Errorf("read audit_logs: %w", err)
			}
			switch v := at.(type) {
			case time.Time:
				a.At = v.UTC().Format(time.RFC3339Nano)
			case string:
				a.At = v
			case []byte:
				a.At = string(v)
			default:
				return "", 0, fmt.Errorf("read audit_logs: event %s: unexpected time value %T", a.EventID, at)
			}
			if detail.Valid {
				a.Detail = &detail.String
			}
			if err := enc.Encode(&a); err != nil {
				return "", 0, fmt.Errorf("write %s: %w", path, err)
			}
			n++
		}
		if err := rows.Err(); err != nil {
			return "", 0, fmt.Errorf("read audit_logs: %w", err)
		}
	}
	if err := bw.Flush(); err != nil {
		return "", 0, fmt.Errorf("write %s: %w", path, err)
	}
	if err := f.Sync(); err != nil {
		return "", 0, fmt.Errorf("fsync %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return "", 0, fmt.Errorf("close %s: %w", path, err)
	}
	return path, n, nil
}

// auditBatch is how many saved rows go into one INSERT of the staging table.
const auditBatch = 200

// reinsertAudit inserts into db the rows saved in the JSONL file at path
// that its audit_logs does not hold (by event_id), in one transaction: with
// their own id when it is free, otherwise with a new one. On PostgreSQL the
// id identity sequence is then moved past the highest id. It returns the
// number of rows inserted.
func reinsertAudit(ctx context.Context, db *sql.DB, dialect store.Dialect, path string) (int64, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	ok, err := hasAuditTable(ctx, db, dialect)
	if err != nil {
		return 0, err
	}
	if !ok {
		return 0, errors.New("the restored database has no audit_logs table")
	}
	conn, err := db.Conn(ctx)
	if err != nil {
		return 0, fmt.Errorf("get connection: %w", err)
	}
	defer conn.Close()
	tx, err := conn.BeginTx(ctx, nil)
	if err != nil {
		return 0, fmt.Errorf("begin: %w", err)
	}
	defer func() { _ = tx.Rollback() }()

	const tmp = "insightops_audit_restore"
	if dialect == store.Postgres {
		_, err = tx.ExecContext(ctx, "CREATE TEMP TABLE "+tmp+" (LIKE audit_logs) ON COMMIT DROP")
	} else {
		if _, err = tx.ExecContext(ctx, "DROP TABLE IF EXISTS temp."+tmp); err == nil {
			_, err = tx.ExecContext(ctx, "CREATE TEMP TABLE "+tmp+" AS SELECT "+auditCols+" FROM audit_logs WHERE 0")
		}
	}
	if err != nil {
		return 0, fmt.Errorf("create staging table: %w", err)
	}

	dec := json.NewDecoder(bufio.NewReaderSize(f, 256<<10))
	batch := make([]any, 0, auditBatch*15)
	flush := func() error {
		if len(batch) == 0 {
			return nil
		}
		rows := len(batch) / 15
		ph := strings.TrimSuffix(strings.Repeat("(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?), ", rows), ", ")
		if _, err := tx.ExecContext(ctx, store.RebindFor(dialect, "INSERT INTO "+tmp+" ("+auditCols+") VALUES "+ph), batch...); err != nil {
			return fmt.Errorf("stage saved rows: %w", err)
		}
		batch = batch[:0]
		return nil
	}
	for {
		var a auditRow
		if err := dec.Decode(&a); err != nil {
			if errors.Is(err, io.EOF) {
				break
			}
			return 0, fmt.Errorf("read %s: %w", path, err)
		}
		var at any = a.At
		if dialect == store.Postgres {
			t, err := time.Parse(time.RFC3339Nano, a.At)
			if err != nil {
				return 0, fmt.Errorf("read %s: event %s: %w", path, a.EventID, err)
			}
			at = t
		}
		var detail any
		if a.Detail != nil {
			detail = *a.Detail
		}
		batch = append(batch, a.ID, a.EventID, a.StreamSeq, at, a.Actor, a.Role, a.Action, a.Resource,
			a.JobID, a.Outcome, detail, a.SourceIP, a.RequestID, a.PrevHash, a.Hash)
		if len(batch) >= auditBatch*15 {
			if err := flush(); err != nil {
				return 0, err
			}
		}
	}
	if err := flush(); err != nil {
		return 0, err
	}

	var inserted int64
	// Saved events the restored table lacks, with their own id when free…
	r1, err := tx.ExecContext(ctx, "INSERT INTO audit_logs ("+auditCols+") SELECT "+auditCols+" FROM "+tmp+" s"+
		" WHERE NOT EXISTS (SELECT 1 FROM audit_logs a WHERE a.event_id = s.event_id)"+
		" AND NOT EXISTS (SELECT 1 FROM audit_logs a WHERE a.id = s.id)"+
		" ORDER BY s.id ON CONFLICT DO NOTHING")
	if err != nil {
		return 0, fmt.Errorf("insert saved rows: %w", err)
	}
	n, _ := r1.RowsAffected()
	inserted += n
	// …and with a new id when another event holds theirs.
	r2, err := tx.ExecContext(ctx, "INSERT INTO audit_logs ("+auditColsNoID+") SELECT "+auditColsNoID+" FROM "+tmp+" s"+ //nolint:gosec // column list and temp table name are constants of this file
		" WHERE NOT EXISTS (SELECT 1 FROM audit_logs a WHERE a.event_id = s.event_id)"+
		" ORDER BY s.id ON CONFLICT (event_id) DO NOTHING")
	if err != nil {
		return 0, fmt.Errorf("insert saved rows with new ids: %w", err)
	}
	n, _ = r2.RowsAffected()
	inserted += n
	if dialect == store.Postgres {
		if _, err := tx.ExecContext(ctx,
			`SELECT setval(pg_get_serial_sequence('audit_logs', 'id'), m) FROM (SELECT max(id) AS m FROM audit_logs) x WHERE m IS NOT NULL`); err != nil {
			return 0, fmt.Errorf("move the audit_logs id sequence: %w", err)
		}
	} else if _, err := tx.ExecContext(ctx, "DROP TABLE temp."+tmp); err != nil {
		return 0, fmt.Errorf("drop staging table: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return 0, fmt.Errorf("commit: %w", err)
	}
	return inserted, nil
}
