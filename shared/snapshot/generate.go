package snapshot

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"os"
)

// Generated describes a database made by [GenerateSQLite].
type Generated struct {
	Path  string `json:"path"`
	Rows  int64  `json:"rows"`
	Bytes int64  `json:"bytes"`
}

// generateBatch is the number of rows one INSERT of GenerateSQLite adds.
const generateBatch = 50_000

// GenerateSQLite creates a new SQLite database at path (which must not
// exist) of at least targetBytes, for benchmarks of backups and restores: a
// ledger-like table "entries" (dates, accounts, amounts, descriptions that
// mix repetitive text and random hex, so it compresses about as well as real
// data, roughly 2-3:1) with two indexes, plus a small "accounts" table. It
// is written without a journal and closed checkpointed, in rollback-journal
// mode, like a golden source.
func GenerateSQLite(ctx context.Context, path string, targetBytes int64) (Generated, error) {
	g, err := generateSQLite(ctx, path, targetBytes)
	if err != nil {
		return Generated{}, fmt.Errorf("snapshot: generate %s: %w", path, err)
	}
	return g, nil
}

func generateSQLite(ctx context.Context, path string, targetBytes int64) (g Generated, err error) {
	if _, err := os.Stat(path); err == nil {
		return g, fmt.Errorf("%s already exists", path)
	} else if !errors.Is(err, fs.ErrNotExist) {
		return g, err
	}
	db, err := sql.Open("sqlite", fileURI(path, "_pragma=journal_mode(OFF)", "_pragma=synchronous(OFF)"))
	if err != nil {
		return g, err
	}
	db.SetMaxOpenConns(1)
	defer func() {
		if cerr := db.Close(); cerr != nil && err == nil {
			err = cerr
		}
		if err != nil {
			_ = os.Remove(path)
		}
	}()
	stmts := []string{
		`CREATE TABLE accounts (id INTEGER PRIMARY KEY, code TEXT NOT NULL UNIQUE, name TEXT NOT NULL)`,
		`WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 200)
		 INSERT INTO accounts (id, code, name) SELECT x, printf('%04d', 1000 + x * 10), 'Account ' || x FROM c`,
		`CREATE TABLE entries (
			id INTEGER PRIMARY KEY,
			entry_date TEXT NOT NULL,
			account_id INTEGER NOT NULL REFERENCES accounts (id),
			amount_cents INTEGER NOT NULL,
			currency TEXT NOT NULL,
			description TEXT NOT NULL,
			reference TEXT NOT NULL
		)`,
	}
	for _, s := range stmts {
		if _, err := db.ExecContext(ctx, s); err != nil {
			return g, err
		}
	}
	insert := fmt.Sprintf(`WITH RECURSIVE c(x) AS (SELECT ?1 UNION ALL SELECT x + 1 FROM c WHERE x < ?1 + %d - 1)
		INSERT INTO entries (id, entry_date, account_id, amount_cents, currency, description, reference)
		SELECT x,
		       date('2020-01-01', '+' || (x %% 2190) || ' days'),
		       1 + (x * 7919) %% 200,
		       (abs(random()) %% 2000000) - 1000000,
		       CASE x %% 3 WHEN 0 THEN 'USD' WHEN 1 THEN 'EUR' ELSE 'AED' END,
		       'Invoice INV-' || printf('%%08d', x) || ' for customer ' || ((x * 31) %% 5000) ||
		         ' - monthly services, support and licences ' || hex(randomblob(12)),
		       hex(randomblob(8))
		FROM c`, generateBatch)
	var pageSize int64
	if err := db.QueryRowContext(ctx, "PRAGMA page_size").Scan(&pageSize); err != nil {
		return g, err
	}
	next := int64(1)
	for {
		var pages int64
		if err := db.QueryRowContext(ctx, "PRAGMA page_count").Scan(&pages); err != nil {
			return g, err
		}
		// Leave room for the indexes, built at the end (about a quarter).
		if pages*pageSize*5/4 >= targetBytes && next > 1 {
			break
		}
		if _, err := db.ExecContext(ctx, insert, next); err != nil {
			return g, fmt.Errorf("insert rows: %w", err)
		}
		next += generateBatch
	}
	for _, s := range []string{
		`CREATE INDEX entries_date_idx ON entries (entry_date)`,
		`CREATE INDEX entries_account_idx ON entries (account_id)`,
		`PRAGMA journal_mode=DELETE`,
	} {
		if _, err := db.ExecContext(ctx, s); err != nil {
			return g, err
		}
	}
	if err := db.Close(); err != nil {
		return g, err
	}
	st, err := os.Stat(path)
	if err != nil {
		return g, err
	}
	return Generated{Path: path, Rows: next - 1 + 200, Bytes: st.Size()}, nil
}
