package testkit

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"testing"
	"time"
)

// TableRows reads every row of table, ordered by its first column, each
// rendered as its values joined by "|" (times in UTC RFC 3339), so two
// databases' contents compare with reflect.DeepEqual.
func TableRows(ctx context.Context, t testing.TB, db *sql.DB, table string) []string {
	t.Helper()
	rows, err := db.QueryContext(ctx, `SELECT * FROM "`+table+`" ORDER BY 1`)
	if err != nil {
		t.Fatalf("read %s: %v", table, err)
	}
	defer rows.Close()
	cols, _ := rows.Columns()
	var out []string
	for rows.Next() {
		vals := make([]any, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			t.Fatal(err)
		}
		parts := make([]string, len(vals))
		for i, v := range vals {
			switch x := v.(type) {
			case time.Time:
				parts[i] = x.UTC().Format(time.RFC3339Nano)
			case []byte:
				parts[i] = string(x)
			default:
				parts[i] = fmt.Sprintf("%v", x)
			}
		}
		out = append(out, strings.Join(parts, "|"))
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}
