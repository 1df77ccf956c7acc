package restoreworker

import (
	"context"
	"fmt"
	"sort"

	"github.com/insightops/insightops/shared/backupfmt"
	"github.com/insightops/insightops/shared/jobspec"
	"github.com/insightops/insightops/shared/snapshot"
	"github.com/insightops/insightops/shared/store"
)

// checkCounts compares what was restored with the manifest and returns
// the differences (none: the counts match). The expected counts are put
// in res beside the ones found.
//
//   - System DB: every table counted now (after migrations and the audit
//     re-sync) against the per-table counts of the dump
//     (snapshot.RestoreResult.CheckCounts: audit_logs may hold more, the
//     events recorded since the backup); without per-table counts in the
//     manifest, the file's total.
//   - Target DB: every table of the new runtime copy, exactly.
//   - Chroma: every restored collection's count, exactly.
func (w *Worker) checkCounts(ctx context.Context, pl *restorePlan, m backupfmt.Manifest, res *jobspec.RestoreResult) []string {
	var problems []string
	if pl.system != nil && res.System != nil {
		rows, err := countTables(ctx, w.Deps.DB, store.TableNames())
		if err != nil {
			problems = append(problems, "system: "+err.Error())
		} else {
			res.System.Rows = rows
			want, ok := systemExpected(m)
			if ok {
				res.System.Expected = want
				if err := (snapshot.RestoreResult{Rows: rows}).CheckCounts(want); err != nil {
					problems = append(problems, "system: "+err.Error())
				}
			} else if pl.system.Count >= 0 && rows.Total() < pl.system.Count {
				problems = append(problems, fmt.Sprintf("system: %d rows in all, the dump held %d", rows.Total(), pl.system.Count))
			}
		}
	}
	if pl.target != nil && res.Target != nil {
		want, ok := countsOf(componentMeta(m, backupfmt.ComponentTarget)["tables"])
		if ok {
			res.Target.Expected = want
			problems = append(problems, exactCounts("target", res.Target.Tables, want)...)
		} else if pl.target.Count >= 0 && snapshot.Counts(res.Target.Tables).Total() != pl.target.Count {
			problems = append(problems, fmt.Sprintf("target: %d rows in all, the copy held %d", snapshot.Counts(res.Target.Tables).Total(), pl.target.Count))
		}
	}
	if res.Chroma != nil {
		for i := range res.Chroma.Collections {
			cr := &res.Chroma.Collections[i]
			n, err := pl.vectors.Count(ctx, cr.Name)
			if err != nil {
				problems = append(problems, fmt.Sprintf("chroma %s: count: %v", cr.Name, err))
				continue
			}
			cr.Count = n
			if cr.Cleared {
				if n != 0 {
					problems = append(problems, fmt.Sprintf("chroma %s: %d records after emptying it", cr.Name, n))
				}
				continue
			}
			cr.Expected = pl.chroma[cr.Name].Count
			if cr.Expected >= 0 && int64(n) != cr.Expected {
				problems = append(problems, fmt.Sprintf("chroma %s: %d records, the archive holds %d", cr.Name, n, cr.Expected))
			}
		}
	}
	return problems
}

// systemExpected returns the per-table row counts of the System DB dump
// recorded in the manifest (the backup worker's Meta["tables"]).
func systemExpected(m backupfmt.Manifest) (snapshot.Counts, bool) {
	return countsOf(componentMeta(m, backupfmt.ComponentSystem)["tables"])
}

// exactCounts lists the tables whose counts differ.
func exactCounts(what string, got, want snapshot.Counts) []string {
	names := map[string]bool{}
	for t := range got {
		names[t] = true
	}
	for t := range want {
		names[t] = true
	}
	sorted := make([]string, 0, len(names))
	for t := range names {
		sorted = append(sorted, t)
	}
	sort.Strings(sorted)
	var out []string
	for _, t := range sorted {
		g, gok := got[t]
		x, wok := want[t]
		switch {
		case !gok:
			out = append(out, fmt.Sprintf("%s %s: missing after the restore", what, t))
		case !wok:
			out = append(out, fmt.Sprintf("%s %s: not in the archive", what, t))
		case g != x:
			out = append(out, fmt.Sprintf("%s %s: %d rows, the archive holds %d", what, t, g, x))
		}
	}
	return out
}

// countTables counts the rows of the given System DB tables.
func countTables(ctx context.Context, db *store.DB, tables []string) (snapshot.Counts, error) {
	out := snapshot.Counts{}
	for _, t := range tables {
		var n int64
		if err := db.SQL.QueryRowContext(ctx, `SELECT count(*) FROM "`+t+`"`).Scan(&n); err != nil {
			return nil, fmt.Errorf("count rows of %s: %w", t, err)
		}
		out[t] = n
	}
	return out, nil
}
