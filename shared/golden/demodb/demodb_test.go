package demodb

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/insightops/insightops/shared/golden"
	"github.com/insightops/insightops/shared/ontology"
)

// Paths of the shipped assets, relative to this package's directory.
var (
	assetsDir     = filepath.Join("..", "..", "..", "assets")
	questionsPath = filepath.Join(assetsDir, "training", "questions.json")
	ontologyDir   = filepath.Join(assetsDir, "ontology")
	shippedDBPath = filepath.Join(assetsDir, "databases", "vanna_db.db")
)

// generate writes a demo DB with seed into a fresh temp dir.
func generate(t *testing.T, seed int64) (string, Summary) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "vanna_db.db")
	sum, err := Generate(context.Background(), path, seed)
	if err != nil {
		t.Fatalf("Generate: %v", err)
	}
	return path, sum
}

func openRO(t *testing.T, path string) *sql.DB {
	t.Helper()
	db, err := golden.OpenReadOnly(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func TestGenerateIsDeterministic(t *testing.T) {
	p1, s1 := generate(t, DefaultSeed)
	p2, s2 := generate(t, DefaultSeed)
	if s1.SHA256 != s2.SHA256 || s1.Bytes != s2.Bytes {
		t.Fatalf("same seed, different files: %s (%d bytes) vs %s (%d bytes)", s1.SHA256, s1.Bytes, s2.SHA256, s2.Bytes)
	}
	for _, p := range []string{p1, p2} {
		sum, _, err := golden.HashFile(context.Background(), p)
		if err != nil || sum != s1.SHA256 {
			t.Fatalf("Summary.SHA256 %s does not match the file (%s, %v)", s1.SHA256, sum, err)
		}
	}
	_, s3 := generate(t, DefaultSeed+1)
	if s3.SHA256 == s1.SHA256 {
		t.Fatal("different seeds produced the same file")
	}
}

func TestGenerateReplacesExistingFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sub", "dir", "demo.db")
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte("old junk"), 0o644); err != nil {
		t.Fatal(err)
	}
	sum, err := Generate(context.Background(), path, 7)
	if err != nil {
		t.Fatal(err)
	}
	ents, _ := os.ReadDir(filepath.Dir(path))
	if len(ents) != 1 || ents[0].Name() != "demo.db" {
		var names []string
		for _, e := range ents {
			names = append(names, e.Name())
		}
		t.Fatalf("directory holds %v, want only demo.db", names)
	}
	if sum.Bytes < 1024 {
		t.Fatalf("Bytes = %d", sum.Bytes)
	}
}

func TestGenerateCancelled(t *testing.T) {
	dir := t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := Generate(ctx, filepath.Join(dir, "x.db"), 1); !errors.Is(err, context.Canceled) {
		t.Fatalf("Generate with a cancelled context = %v, want context.Canceled", err)
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 0 {
		t.Fatalf("left %d files behind", len(ents))
	}
}

func TestGeneratedDatabase(t *testing.T) {
	ctx := context.Background()
	path, sum := generate(t, DefaultSeed)
	for _, s := range []string{"-wal", "-shm", "-journal"} {
		if _, err := os.Stat(path + s); err == nil {
			t.Errorf("%s file left beside the database", s)
		}
	}
	if sum.TotalRows < 3000 || sum.TotalRows > 8000 {
		t.Errorf("TotalRows = %d, want 3000-8000", sum.TotalRows)
	}
	if sum.Bytes > 2<<20 {
		t.Errorf("file is %d bytes, want under 2 MiB", sum.Bytes)
	}
	wantTables := []string{"accounts", "bills", "customers", "dataset_info", "invoice_lines", "invoices",
		"journal_entries", "payments", "products", "vendors"}
	if len(sum.Tables) != len(wantTables) {
		t.Fatalf("tables %v, want %v", sum.Tables, wantTables)
	}
	for i, tc := range sum.Tables {
		if tc.Name != wantTables[i] || tc.Rows == 0 {
			t.Errorf("table #%d = %+v, want %s with rows", i, tc, wantTables[i])
		}
	}
	if strings.Join(sum.Views, ",") != "v_account_balances,v_invoice_balances,v_monthly_revenue" {
		t.Errorf("views = %v", sum.Views)
	}
	if sum.Indexes != len(indexSQL) {
		t.Errorf("indexes = %d, want %d", sum.Indexes, len(indexSQL))
	}

	db := openRO(t, path)
	info, err := golden.Inspect(ctx, db, 3)
	if err != nil || info.Tables != len(wantTables) || info.Views != 3 {
		t.Fatalf("Inspect = %+v, %v", info, err)
	}

	scalar := func(q string) string {
		t.Helper()
		var s sql.NullString
		if err := db.QueryRowContext(ctx, q).Scan(&s); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
		return s.String
	}
	checks := []struct{ name, query, want string }{
		{"journal mode", "PRAGMA journal_mode", "delete"},
		{"page size", "PRAGMA page_size", "4096"},
		{"integrity", "PRAGMA integrity_check", "ok"},
		{"foreign keys", "SELECT count(*) FROM pragma_foreign_key_check", "0"},
		{"freelist after VACUUM", "PRAGMA freelist_count", "0"},
		{"unbalanced journal entries", `SELECT count(*) FROM (SELECT entry_number FROM journal_entries
			GROUP BY entry_number HAVING ROUND(SUM(debit), 2) <> ROUND(SUM(credit), 2))`, "0"},
		{"ledger AR equals open invoice balances", `SELECT (SELECT balance FROM v_account_balances WHERE code = '1100')
			= (SELECT ROUND(SUM(balance_due), 2) FROM v_invoice_balances WHERE status <> 'void')`, "1"},
		{"invoice totals equal their lines", `SELECT count(*) FROM invoices AS i
			WHERE ROUND(i.subtotal, 2) <> (SELECT ROUND(SUM(line_total), 2) FROM invoice_lines WHERE invoice_id = i.invoice_id)
			   OR ROUND(i.subtotal + i.tax_amount, 2) <> ROUND(i.total_amount, 2)`, "0"},
		{"no overpaid invoice", `SELECT count(*) FROM v_invoice_balances WHERE balance_due < 0`, "0"},
		{"paid status matches payments", `SELECT count(*) FROM v_invoice_balances
			WHERE (status = 'paid') <> (balance_due = 0 AND status <> 'void')`, "0"},
		{"void invoices have no payments", `SELECT count(*) FROM payments AS p JOIN invoices AS i USING (invoice_id) WHERE i.status = 'void'`, "0"},
		{"payment customer matches invoice", `SELECT count(*) FROM payments AS p JOIN invoices AS i USING (invoice_id) WHERE p.customer_id <> i.customer_id`, "0"},
		{"nothing after as-of date", `SELECT count(*) FROM (SELECT issue_date AS d FROM invoices UNION ALL SELECT payment_date FROM payments
			UNION ALL SELECT bill_date FROM bills UNION ALL SELECT paid_date FROM bills WHERE paid_date IS NOT NULL
			UNION ALL SELECT entry_date FROM journal_entries) WHERE d > '` + AsOfDate + `' OR d < '` + PeriodStart + `'`, "0"},
		{"as-of date recorded", `SELECT value FROM dataset_info WHERE key = 'as_of_date'`, AsOfDate},
		{"Arabic account names", `SELECT name_ar FROM accounts WHERE code = '1100'`, "الذمم المدينة"},
	}
	for _, c := range checks {
		if got := scalar(c.query); got != c.want {
			t.Errorf("%s: got %q, want %q", c.name, got, c.want)
		}
	}
	var statuses int
	if err := db.QueryRowContext(ctx, "SELECT count(DISTINCT status) FROM invoices").Scan(&statuses); err != nil || statuses != 5 {
		t.Errorf("invoice statuses: %d distinct, want all 5 (%v)", statuses, err)
	}
}

// TestGeneratedIsValidGoldenSource feeds the generated file through
// golden.Sync, as the init job does.
func TestGeneratedIsValidGoldenSource(t *testing.T) {
	src, sum := generate(t, DefaultSeed)
	res, err := golden.Sync(context.Background(), src, filepath.Join(t.TempDir(), "runtime", "target.db"))
	if err != nil {
		t.Fatal(err)
	}
	if res.Action != golden.ActionCopied || res.DestSHA256 != sum.SHA256 {
		t.Fatalf("Sync = %+v", res)
	}
}

type trainingPair struct {
	Question string `json:"question"`
	SQL      string `json:"sql"`
}

// TestTrainingQuestions runs every known-good question/SQL pair shipped in
// assets/training/questions.json against a freshly generated database.
func TestTrainingQuestions(t *testing.T) {
	data, err := os.ReadFile(questionsPath)
	if err != nil {
		t.Fatal(err)
	}
	dec := json.NewDecoder(strings.NewReader(string(data)))
	dec.DisallowUnknownFields()
	var pairs []trainingPair
	if err := dec.Decode(&pairs); err != nil {
		t.Fatalf("%s: %v", questionsPath, err)
	}
	if n := len(pairs); n < 15 || n > 25 {
		t.Errorf("%d pairs, want 15-25", n)
	}
	path, _ := generate(t, DefaultSeed)
	db := openRO(t, path)
	seen := map[string]bool{}
	for i, p := range pairs {
		name := fmt.Sprintf("%02d", i+1)
		t.Run(name, func(t *testing.T) {
			if strings.TrimSpace(p.Question) == "" || strings.TrimSpace(p.SQL) == "" {
				t.Fatalf("empty question or sql: %+v", p)
			}
			if seen[p.Question] {
				t.Fatalf("duplicate question %q", p.Question)
			}
			seen[p.Question] = true
			assertRows(t, db, p.SQL)
		})
	}
}

// TestOntologyMatchesDatabase checks the shipped glossary against the
// generated schema: every table it names exists and every sql_hint runs.
func TestOntologyMatchesDatabase(t *testing.T) {
	terms, err := ontology.Load(ontologyDir)
	if err != nil {
		t.Fatal(err)
	}
	path, _ := generate(t, DefaultSeed)
	db := openRO(t, path)
	objects := map[string]bool{}
	rows, err := db.Query("SELECT name FROM sqlite_schema WHERE type IN ('table', 'view')")
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err != nil {
			t.Fatal(err)
		}
		objects[n] = true
	}
	rows.Close()
	for _, term := range terms {
		t.Run(term.Term, func(t *testing.T) {
			for _, tbl := range term.Tables {
				if !objects[tbl] {
					t.Errorf("table %q does not exist", tbl)
				}
			}
			if up := strings.ToUpper(term.SQLHint); strings.HasPrefix(up, "SELECT") || strings.HasPrefix(up, "WITH") {
				assertRows(t, db, term.SQLHint)
			}
		})
	}
}

// assertRows runs query and requires at least one row whose first row is not
// entirely NULL (an aggregate over nothing).
func assertRows(t *testing.T, db *sql.DB, query string) {
	t.Helper()
	rows, err := db.QueryContext(context.Background(), query)
	if err != nil {
		t.Fatalf("query failed: %v\n%s", err, query)
	}
	defer rows.Close()
	cols, err := rows.Columns()
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for rows.Next() {
		vals := make([]any, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			t.Fatal(err)
		}
		if n == 0 {
			allNull := true
			for _, v := range vals {
				if v != nil {
					allNull = false
				}
			}
			if allNull {
				t.Errorf("first row is all NULL\n%s", query)
			}
		}
		n++
	}
	if err := rows.Err(); err != nil {
		t.Fatalf("reading rows: %v\n%s", err, query)
	}
	if n == 0 {
		t.Errorf("no rows\n%s", query)
	}
}

// canonicalDump hashes the schema and every row of every table in rowid
// order: equal dumps mean equal content even if the file bytes differ (e.g.
// after a modernc.org/sqlite upgrade).
func canonicalDump(t *testing.T, db *sql.DB) string {
	t.Helper()
	h := sha256.New()
	rows, err := db.Query("SELECT type, name, COALESCE(sql, '') FROM sqlite_schema ORDER BY type, name")
	if err != nil {
		t.Fatal(err)
	}
	var tables []string
	for rows.Next() {
		var typ, name, ddl string
		if err := rows.Scan(&typ, &name, &ddl); err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(h, "%s\x00%s\x00%s\n", typ, name, ddl)
		if typ == "table" {
			tables = append(tables, name)
		}
	}
	rows.Close()
	for _, tbl := range tables {
		r, err := db.Query(`SELECT * FROM "` + tbl + `" ORDER BY rowid`)
		if err != nil {
			t.Fatal(err)
		}
		cols, _ := r.Columns()
		for r.Next() {
			vals := make([]any, len(cols))
			ptrs := make([]any, len(cols))
			for i := range vals {
				ptrs[i] = &vals[i]
			}
			if err := r.Scan(ptrs...); err != nil {
				t.Fatal(err)
			}
			fmt.Fprintf(h, "%s", tbl)
			for _, v := range vals {
				fmt.Fprintf(h, "\x00%T:%v", v, v)
			}
			h.Write([]byte{'\n'})
		}
		if err := r.Err(); err != nil {
			t.Fatal(err)
		}
		r.Close()
	}
	return hex.EncodeToString(h.Sum(nil))
}

// TestShippedDatabaseIsCurrent guards against editing the generator without
// regenerating assets/databases/vanna_db.db: the shipped file must hold
// exactly what Generate(DefaultSeed) produces. Content is compared, not
// bytes, so a driver upgrade alone does not fail it.
func TestShippedDatabaseIsCurrent(t *testing.T) {
	if _, err := os.Stat(shippedDBPath); err != nil {
		t.Fatalf("shipped database missing: %v", err)
	}
	path, sum := generate(t, DefaultSeed)
	shipped := canonicalDump(t, openRO(t, shippedDBPath))
	fresh := canonicalDump(t, openRO(t, path))
	if shipped != fresh {
		t.Fatalf("%s is stale: regenerate it with\n\tcd shared && go run ./cmd/gendemo -out ../assets/databases/vanna_db.db", shippedDBPath)
	}
	if got, _, _ := golden.HashFile(context.Background(), shippedDBPath); got != sum.SHA256 {
		t.Logf("shipped file content is current but its bytes differ (sha256 %s, fresh %s): SQLite library changed?", got, sum.SHA256)
	}
}
