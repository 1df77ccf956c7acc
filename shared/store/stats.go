package store

import (
	"context"
	"fmt"
)

// TableStat is the size of one System DB table.
type TableStat struct {
	Name  string
	Rows  int64
	Bytes int64 // on disk, including the table's indexes
}

// Stats returns every System DB table (see [TableNames]) with its row count
// and on-disk size including indexes. PostgreSQL reports
// pg_total_relation_size (heap, indexes and TOAST). SQLite sums the pages of
// the table and of its indexes from the dbstat virtual table, which
// modernc.org/sqlite compiles in; if dbstat were unavailable the sizes are
// reported as 0 rather than failing. The migrations' bookkeeping table is
// not listed.
func (db *DB) Stats(ctx context.Context) ([]TableStat, error) {
	sizes, err := db.tableSizes(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]TableStat, 0, len(systemTables))
	for _, name := range systemTables {
		st := TableStat{Name: name, Bytes: sizes[name]}
		// name comes from the fixed systemTables list, never from input.
		if err := db.SQL.QueryRowContext(ctx, `SELECT count(*) FROM `+name).Scan(&st.Rows); err != nil {
			return nil, fmt.Errorf("store: stats: count %s: %w", name, err)
		}
		out = append(out, st)
	}
	return out, nil
}

func (db *DB) tableSizes(ctx context.Context) (map[string]int64, error) {
	sizes := make(map[string]int64, len(systemTables))
	if db.dialect == Postgres {
		for _, name := range systemTables {
			var n int64
			if err := db.SQL.QueryRowContext(ctx, `SELECT pg_total_relation_size($1::regclass)`, name).Scan(&n); err != nil {
				return nil, fmt.Errorf("store: stats: size of %s: %w", name, err)
			}
			sizes[name] = n
		}
		return sizes, nil
	}
	rows, err := db.SQL.QueryContext(ctx,
		`SELECT m.tbl_name, SUM(d.pgsize)
		   FROM dbstat AS d JOIN sqlite_master AS m ON m.name = d.name
		  WHERE m.type IN ('table', 'index')
		  GROUP BY m.tbl_name`)
	if err != nil {
		if ctx.Err() != nil {
			return nil, fmt.Errorf("store: stats: %w", ctx.Err())
		}
		return sizes, nil // no dbstat: sizes unknown, reported as 0
	}
	defer rows.Close()
	for rows.Next() {
		var (
			name string
			n    int64
		)
		if err := rows.Scan(&name, &n); err != nil {
			return nil, fmt.Errorf("store: stats: %w", err)
		}
		sizes[name] = n
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: stats: %w", err)
	}
	return sizes, nil
}
