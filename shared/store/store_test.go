package store_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/insightops/insightops/shared/store"
	"github.com/insightops/insightops/shared/testkit"
)

// backend opens a fresh, empty System DB of one dialect. target returns the
// (databaseURL, sqlitePath) pair it opened, for tests that open it twice.
type backend struct {
	name   string
	target func(t *testing.T) (databaseURL, sqlitePath string)
}

var backends = []backend{
	{"sqlite", func(t *testing.T) (string, string) {
		return "", filepath.Join(t.TempDir(), "data", "system.db") // parent dir does not exist yet
	}},
	{"postgres", func(t *testing.T) (string, string) {
		return testkit.Postgres(t), ""
	}},
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func openAt(t *testing.T, databaseURL, sqlitePath string) *store.DB {
	t.Helper()
	db, err := store.Open(ctxT(t), databaseURL, sqlitePath)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { _ = db.Close() })
	return db
}

func migrated(t *testing.T, b backend) *store.DB {
	t.Helper()
	u, p := b.target(t)
	db := openAt(t, u, p)
	if _, err := db.Migrate(ctxT(t)); err != nil {
		t.Fatalf("Migrate: %v", err)
	}
	return db
}

func count(t *testing.T, db *store.DB, table string) int64 {
	t.Helper()
	var n int64
	if err := db.SQL.QueryRowContext(ctxT(t), "SELECT count(*) FROM "+table).Scan(&n); err != nil {
		t.Fatalf("count %s: %v", table, err)
	}
	return n
}

// TestStore runs every System DB behaviour against both dialects; each
// behaviour gets a database of its own.
func TestStore(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name       string
		onlySQLite bool
		run        func(t *testing.T, b backend)
	}{
		{"MigrateTwiceAppliesOnlyOnce", false, testMigrateTwice},
		{"ConcurrentMigrateFromTwoHandlesAppliesOnce", false, testConcurrentMigrate},
		{"AdminCreatedOnceNeverOverwritten", false, testAdminCreatedOnce},
		{"EmailMatchingIsCaseInsensitive", false, testEmailCaseInsensitive},
		{"MissingRowsReturnErrNotFound", false, testErrNotFound},
		{"InvalidRoleRejectedByCodeAndSchema", false, testInvalidRole},
		{"OntologyUpsertIsIdempotent", false, testOntologyIdempotent},
		{"OntologyRejectsDuplicateTermsAtomically", false, testOntologyDuplicates},
		{"DemoSeedIsIdempotent", false, testDemoSeedIdempotent},
		{"AuditInsertDedupesByEventID", false, testAuditDedupe},
		{"ConfigSetOverwritesAndGetReads", false, testConfig},
		{"StatsListsAllSevenTables", false, testStats},
		{"FeedbackForeignKeysEnforcedAndCascade", false, testForeignKeys},
		{"ConcurrentWritersDoNotFail", false, testConcurrentWriters},
		{"DescribeHasNoCredentials", false, testDescribe},
		{"PragmasSetOnEveryPooledConnection", true, testSQLitePragmas},
	}
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			t.Parallel()
			for _, c := range cases {
				if c.onlySQLite && b.name != "sqlite" {
					continue
				}
				t.Run(c.name, func(t *testing.T) { t.Parallel(); c.run(t, b) })
			}
		})
	}
}

// schemaVersions are the embedded migrations' versions; latestSchema the last.
var schemaVersions = []int64{1, 2, 3}

const latestSchema = 3

func testMigrateTwice(t *testing.T, b backend) {
	u, p := b.target(t)
	db := openAt(t, u, p)
	ctx := ctxT(t)
	v, pending, err := db.SchemaVersion(ctx)
	if err != nil || v != 0 || !pending {
		t.Fatalf("before migrating: version %d pending %v err %v; want 0 true nil", v, pending, err)
	}
	first, err := db.Migrate(ctx)
	if err != nil {
		t.Fatalf("first Migrate: %v", err)
	}
	if !reflect.DeepEqual(first.Applied, schemaVersions) || first.Version != latestSchema {
		t.Fatalf("first Migrate = %+v; want Applied %v Version %d", first, schemaVersions, latestSchema)
	}
	second, err := db.Migrate(ctx)
	if err != nil {
		t.Fatalf("second Migrate: %v", err)
	}
	if len(second.Applied) != 0 || second.Version != latestSchema {
		t.Fatalf("second Migrate = %+v; want nothing applied, Version %d", second, latestSchema)
	}
	if v, pending, err := db.SchemaVersion(ctx); err != nil || v != latestSchema || pending {
		t.Fatalf("after migrating: version %d pending %v err %v; want %d false nil", v, pending, err, latestSchema)
	}
}

func testConcurrentMigrate(t *testing.T, b backend) {
	u, p := b.target(t)
	dbs := []*store.DB{openAt(t, u, p), openAt(t, u, p)}
	var (
		wg      sync.WaitGroup
		results [2]store.MigrateResult
		errs    [2]error
	)
	for i, db := range dbs {
		wg.Go(func() { results[i], errs[i] = db.Migrate(ctxT(t)) })
	}
	wg.Wait()
	applied := 0
	for i := range dbs {
		if errs[i] != nil {
			t.Fatalf("Migrate on handle %d: %v", i, errs[i])
		}
		if results[i].Version != latestSchema {
			t.Errorf("handle %d: Version %d; want %d", i, results[i].Version, latestSchema)
		}
		applied += len(results[i].Applied)
	}
	if applied != len(schemaVersions) {
		t.Fatalf("migrations applied across both handles = %d; want %d (%+v)", applied, len(schemaVersions), results)
	}
}

func testAdminCreatedOnce(t *testing.T, b backend) {
	db := migrated(t, b)
	ctx := ctxT(t)
	before := time.Now().Add(-time.Minute)
	created, err := db.CreateUserIfAbsent(ctx, "admin@example.com", "hash-1", store.RoleAdmin)
	if err != nil || !created {
		t.Fatalf("first create: created=%v err=%v; want true nil", created, err)
	}
	created, err = db.CreateUserIfAbsent(ctx, "admin@example.com", "hash-2", store.RoleViewer)
	if err != nil || created {
		t.Fatalf("second create: created=%v err=%v; want false nil", created, err)
	}
	u, err := db.UserByEmail(ctx, "admin@example.com")
	if err != nil {
		t.Fatalf("UserByEmail: %v", err)
	}
	if u.PasswordHash != "hash-1" || u.Role != store.RoleAdmin || !u.Active || u.ID == 0 {
		t.Fatalf("user = %+v; want the first hash, role admin, active, an id", u)
	}
	if u.CreatedAt.Before(before) || u.CreatedAt.After(time.Now().Add(time.Minute)) {
		t.Fatalf("CreatedAt = %v; want about now", u.CreatedAt)
	}
	if n := count(t, db, "users"); n != 1 {
		t.Fatalf("users rows = %d; want 1", n)
	}
}

func testEmailCaseInsensitive(t *testing.T, b backend) {
	db := migrated(t, b)
	ctx := ctxT(t)
	if created, err := db.CreateUserIfAbsent(ctx, "  Ops.Lead@Example.COM ", "h", store.RoleOperator); err != nil || !created {
		t.Fatalf("create: created=%v err=%v", created, err)
	}
	if created, err := db.CreateUserIfAbsent(ctx, "ops.lead@example.com", "other", store.RoleAdmin); err != nil || created {
		t.Fatalf("create with other case: created=%v err=%v; want false nil", created, err)
	}
	for _, q := range []string{"ops.lead@example.com", "OPS.LEAD@EXAMPLE.COM", "Ops.Lead@example.com"} {
		u, err := db.UserByEmail(ctx, q)
		if err != nil {
			t.Fatalf("UserByEmail(%q): %v", q, err)
		}
		if u.Email != "ops.lead@example.com" || u.Role != store.RoleOperator || u.PasswordHash != "h" {
			t.Fatalf("UserByEmail(%q) = %+v; want the stored lower-case operator", q, u)
		}
	}
}

func testErrNotFound(t *testing.T, b backend) {
	db := migrated(t, b)
	ctx := ctxT(t)
	if _, err := db.UserByEmail(ctx, "nobody@example.com"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("UserByEmail(absent) err = %v; want ErrNotFound", err)
	}
	if _, err := db.GetConfig(ctx, "absent.key"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("GetConfig(absent) err = %v; want ErrNotFound", err)
	}
}

func testInvalidRole(t *testing.T, b backend) {
	db := migrated(t, b)
	ctx := ctxT(t)
	if _, err := db.CreateUserIfAbsent(ctx, "root@example.com", "h", "root"); err == nil || !strings.Contains(err.Error(), `invalid role "root"`) {
		t.Fatalf("CreateUserIfAbsent with role root = %v; want the invalid role refusal", err)
	}
	_, err := db.SQL.ExecContext(ctx, db.Rebind(`INSERT INTO users (email, password_hash, role) VALUES (?, ?, ?)`),
		"root@example.com", "h", "root")
	wantConstraint(t, err, constraintCheck, "schema accepted role root; want the CHECK constraint to reject it")
	if _, err := db.UserByEmail(ctx, "root@example.com"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("user with invalid role exists (err %v)", err)
	}
}

func glossary() []store.OntologyTerm {
	return []store.OntologyTerm{
		{Term: "revenue", Definition: "Money earned from sales.", Synonyms: []string{"sales", "turnover"},
			Tables: []string{"accounting_transactions"}, SQLHint: "SUM(amount_cents) WHERE account LIKE '4%'"},
		{Term: "Burn Rate", Definition: "Monthly net cash outflow.", Tables: []string{"accounting_transactions"}},
		{Term: "COGS", Definition: "Cost of goods sold.", Synonyms: []string{"cost of sales"}, Tables: nil},
	}
}

func testOntologyIdempotent(t *testing.T, b backend) {
	db := migrated(t, b)
	ctx := ctxT(t)
	res, err := db.UpsertOntology(ctx, glossary())
	if err != nil || res != (store.OntologyResult{Inserted: 3}) {
		t.Fatalf("first upsert = %+v, %v; want 3 inserted", res, err)
	}
	res, err = db.UpsertOntology(ctx, glossary())
	if err != nil || res != (store.OntologyResult{Unchanged: 3}) {
		t.Fatalf("second upsert = %+v, %v; want 3 unchanged", res, err)
	}
	changed := glossary()
	changed[2].Synonyms = append(changed[2].Synonyms, "COS")
	res, err = db.UpsertOntology(ctx, changed)
	if err != nil || res != (store.OntologyResult{Updated: 1, Unchanged: 2}) {
		t.Fatalf("upsert after a change = %+v, %v; want 1 updated 2 unchanged", res, err)
	}
	got, err := db.OntologyTerms(ctx)
	if err != nil {
		t.Fatalf("OntologyTerms: %v", err)
	}
	var names []string
	for _, g := range got {
		names = append(names, g.Term)
	}
	if want := []string{"Burn Rate", "COGS", "revenue"}; !slices.Equal(names, want) {
		t.Fatalf("terms = %v; want %v (sorted)", names, want)
	}
	want := changed[2]
	want.Tables = []string{}
	if !reflect.DeepEqual(got[1], want) {
		t.Fatalf("COGS = %+v; want %+v", got[1], want)
	}
	if !reflect.DeepEqual(got[2], glossary()[0]) {
		t.Fatalf("revenue = %+v; want %+v", got[2], glossary()[0])
	}
	if n := count(t, db, "business_ontologies"); n != 3 {
		t.Fatalf("rows = %d; want 3", n)
	}
}

func testOntologyDuplicates(t *testing.T, b backend) {
	db := migrated(t, b)
	ctx := ctxT(t)
	dup := append(glossary(), store.OntologyTerm{Term: " revenue "})
	if _, err := db.UpsertOntology(ctx, dup); err == nil || !strings.Contains(err.Error(), `term "revenue" appears twice`) {
		t.Fatalf("upsert with a repeated term = %v; want the repeated-term refusal", err)
	}
	if n := count(t, db, "business_ontologies"); n != 0 {
		t.Fatalf("rows after rejected upsert = %d; want 0", n)
	}
}

func testDemoSeedIdempotent(t *testing.T, b backend) {
	db := migrated(t, b)
	ctx := ctxT(t)
	rows := store.DemoTransactions(200, 7)
	n, err := db.SeedDemoTransactions(ctx, rows)
	if err != nil || n != 200 {
		t.Fatalf("first seed = %d, %v; want 200", n, err)
	}
	n, err = db.SeedDemoTransactions(ctx, rows)
	if err != nil || n != 0 {
		t.Fatalf("second seed = %d, %v; want 0", n, err)
	}
	if c := count(t, db, "accounting_transactions"); c != 200 {
		t.Fatalf("rows after second seed = %d; want 200", c)
	}
	n, err = db.SeedDemoTransactions(ctx, store.DemoTransactions(250, 7))
	if err != nil || n != 50 {
		t.Fatalf("seed of a longer list = %d, %v; want the 50 new rows", n, err)
	}
	var sum int64
	var first string
	if err := db.SQL.QueryRowContext(ctx, `SELECT COALESCE(SUM(amount_cents), 0) FROM accounting_transactions`).Scan(&sum); err != nil {
		t.Fatal(err)
	}
	var want int64
	for _, r := range store.DemoTransactions(250, 7) {
		want += r.AmountCents
	}
	if sum != want {
		t.Fatalf("sum of amounts = %d; want %d (exact cents)", sum, want)
	}
	if err := db.SQL.QueryRowContext(ctx, db.Rebind(`SELECT CAST(txn_date AS TEXT) FROM accounting_transactions WHERE external_ref = ?`),
		rows[0].ExternalRef).Scan(&first); err != nil {
		t.Fatal(err)
	}
	if wantDate := rows[0].Date.Format(time.DateOnly); first != wantDate {
		t.Fatalf("txn_date = %q; want %q", first, wantDate)
	}
}

func testAuditDedupe(t *testing.T, b backend) {
	db := migrated(t, b)
	ctx := ctxT(t)
	at := time.Date(2026, 11, 27, 10, 15, 0, 123456000, time.UTC)
	ev := store.AuditLog{
		EventID: "01JDAUDIT0000000000000001", StreamSeq: 42, At: at, Actor: "admin@example.com", Role: "admin",
		Action: "backup.requested", Resource: "backup", JobID: "01JDJOB", Outcome: "success",
		Detail: json.RawMessage(`{"components":["system","target"],"note":"nightly"}`), SourceIP: "10.0.0.7",
		RequestID: "req-1", PrevHash: "aa", Hash: "bb",
	}
	ins, err := db.InsertAuditLog(ctx, ev)
	if err != nil || !ins {
		t.Fatalf("first insert = %v, %v; want true", ins, err)
	}
	again := ev
	again.Action = "backup.tampered"
	ins, err = db.InsertAuditLog(ctx, again)
	if err != nil || ins {
		t.Fatalf("insert with the same event id = %v, %v; want false", ins, err)
	}
	other := ev
	other.EventID, other.Actor, other.Action, other.Detail, other.At = "01JDAUDIT0000000000000002", "op@example.com", "auth.denied", nil, at.Add(time.Hour)
	if ins, err := db.InsertAuditLog(ctx, other); err != nil || !ins {
		t.Fatalf("insert of another event = %v, %v; want true", ins, err)
	}
	if n := count(t, db, "audit_logs"); n != 2 {
		t.Fatalf("audit rows = %d; want 2", n)
	}
	got, err := db.AuditLogs(ctx, store.AuditFilter{Actor: "admin@example.com"})
	if err != nil || len(got) != 1 {
		t.Fatalf("AuditLogs(actor) = %d rows, %v; want 1", len(got), err)
	}
	g := got[0]
	if g.Action != "backup.requested" || !g.At.Equal(at) || g.StreamSeq != 42 || g.Hash != "bb" || g.SourceIP != "10.0.0.7" {
		t.Fatalf("stored event = %+v; want the first insert unchanged", g)
	}
	var gotDetail, wantDetail any
	_ = json.Unmarshal(g.Detail, &gotDetail)
	_ = json.Unmarshal(ev.Detail, &wantDetail)
	if !reflect.DeepEqual(gotDetail, wantDetail) {
		t.Fatalf("detail = %s; want %s", g.Detail, ev.Detail)
	}
	all, err := db.AuditLogs(ctx, store.AuditFilter{})
	if err != nil || len(all) != 2 || all[0].EventID != other.EventID || all[0].Detail != nil {
		t.Fatalf("AuditLogs() = %+v, %v; want both, newest first, nil detail for the newer", all, err)
	}
	since, err := db.AuditLogs(ctx, store.AuditFilter{Since: at.Add(time.Minute)})
	if err != nil || len(since) != 1 || since[0].Action != "auth.denied" {
		t.Fatalf("AuditLogs(since) = %+v, %v; want the later event only", since, err)
	}
	// Following: the rows after an id, oldest first, whatever their times.
	for _, tc := range []struct {
		after int64
		want  []string
	}{
		{0, []string{all[1].EventID, all[0].EventID}},
		{all[1].ID, []string{all[0].EventID}},
		{all[0].ID, nil},
	} {
		rows, err := db.AuditLogs(ctx, store.AuditFilter{Follow: true, AfterID: tc.after})
		var got []string
		for _, r := range rows {
			got = append(got, r.EventID)
		}
		if err != nil || !slices.Equal(got, tc.want) {
			t.Fatalf("AuditLogs(after id %d) = %v, %v; want %v", tc.after, got, err, tc.want)
		}
	}
	if _, err := db.InsertAuditLog(ctx, store.AuditLog{EventID: "x", Action: "a", Detail: json.RawMessage(`{bad`)}); err == nil || !strings.Contains(err.Error(), "detail is not valid JSON") {
		t.Fatalf("insert with invalid JSON detail = %v; want the invalid-JSON refusal", err)
	}
}

func testConfig(t *testing.T, b backend) {
	db := migrated(t, b)
	ctx := ctxT(t)
	if err := db.SetConfig(ctx, "golden.sha256", "abc"); err != nil {
		t.Fatal(err)
	}
	if err := db.SetConfig(ctx, "golden.sha256", "def"); err != nil {
		t.Fatal(err)
	}
	v, err := db.GetConfig(ctx, "golden.sha256")
	if err != nil || v != "def" {
		t.Fatalf("GetConfig = %q, %v; want def", v, err)
	}
	if n := count(t, db, "configurations"); n != 1 {
		t.Fatalf("rows = %d; want 1", n)
	}
}

func testStats(t *testing.T, b backend) {
	db := migrated(t, b)
	ctx := ctxT(t)
	if _, err := db.SeedDemoTransactions(ctx, store.DemoTransactions(500, 1)); err != nil {
		t.Fatal(err)
	}
	if _, err := db.CreateUserIfAbsent(ctx, "a@example.com", "h", store.RoleAdmin); err != nil {
		t.Fatal(err)
	}
	stats, err := db.Stats(ctx)
	if err != nil {
		t.Fatalf("Stats: %v", err)
	}
	var names []string
	rows := map[string]int64{}
	for _, s := range stats {
		names = append(names, s.Name)
		rows[s.Name] = s.Rows
		if s.Bytes <= 0 {
			t.Errorf("table %s: Bytes = %d; want > 0", s.Name, s.Bytes)
		}
	}
	want := []string{"users", "queries", "feedback", "audit_logs", "configurations", "business_ontologies", "accounting_transactions", "service_tokens", "revoked_tokens"}
	if !slices.Equal(names, want) || !slices.Equal(store.TableNames(), want) {
		t.Fatalf("Stats tables = %v (TableNames %v); want %v", names, store.TableNames(), want)
	}
	if rows["accounting_transactions"] != 500 || rows["users"] != 1 || rows["audit_logs"] != 0 {
		t.Fatalf("row counts = %v; want 500 transactions, 1 user, 0 audit rows", rows)
	}
	var demo, empty int64
	for _, s := range stats {
		switch s.Name {
		case "accounting_transactions":
			demo = s.Bytes
		case "audit_logs":
			empty = s.Bytes
		}
	}
	if demo <= empty {
		t.Fatalf("500-row table is %d bytes, empty table %d; want the full one larger", demo, empty)
	}
}

func testForeignKeys(t *testing.T, b backend) {
	db := migrated(t, b)
	ctx := ctxT(t)
	if _, err := db.CreateUserIfAbsent(ctx, "u@example.com", "h", store.RoleViewer); err != nil {
		t.Fatal(err)
	}
	u, err := db.UserByEmail(ctx, "u@example.com")
	if err != nil {
		t.Fatal(err)
	}
	var qid int64
	if err := db.SQL.QueryRowContext(ctx, db.Rebind(
		`INSERT INTO queries (user_id, question, sql, status) VALUES (?, ?, ?, ?) RETURNING id`),
		u.ID, "total revenue?", "SELECT 1", "success").Scan(&qid); err != nil {
		t.Fatalf("insert query: %v", err)
	}
	for _, rating := range []int{1, -1} {
		if _, err := db.SQL.ExecContext(ctx, db.Rebind(`INSERT INTO feedback (query_id, user_id, rating) VALUES (?, ?, ?)`),
			qid, u.ID, rating); err != nil {
			t.Fatalf("insert feedback %d: %v", rating, err)
		}
	}
	_, err = db.SQL.ExecContext(ctx, db.Rebind(`INSERT INTO feedback (query_id, rating) VALUES (?, ?)`), qid, 5)
	wantConstraint(t, err, constraintCheck, "rating 5 accepted; want the CHECK (rating IN (-1, 1)) to reject it")
	_, err = db.SQL.ExecContext(ctx, db.Rebind(`INSERT INTO feedback (query_id, rating) VALUES (?, ?)`), qid+1000, 1)
	wantConstraint(t, err, constraintForeignKey, "feedback for a missing query accepted; want a foreign key violation")
	if _, err := db.SQL.ExecContext(ctx, db.Rebind(`DELETE FROM queries WHERE id = ?`), qid); err != nil {
		t.Fatal(err)
	}
	if n := count(t, db, "feedback"); n != 0 {
		t.Fatalf("feedback rows after deleting the query = %d; want 0 (ON DELETE CASCADE)", n)
	}
}

func testConcurrentWriters(t *testing.T, b backend) {
	db := migrated(t, b)
	ctx := ctxT(t)
	const workers, each = 8, 25
	demo := store.DemoTransactions(workers*each, 3)
	var wg sync.WaitGroup
	errs := make(chan error, workers*each*4)
	for w := range workers {
		wg.Go(func() {
			for i := range each {
				id := fmt.Sprintf("ev-%d-%d", w, i)
				if _, err := db.InsertAuditLog(ctx, store.AuditLog{EventID: id, Action: "test.write", At: time.Now()}); err != nil {
					errs <- err
				}
				if err := db.SetConfig(ctx, fmt.Sprintf("k%d", i%5), id); err != nil {
					errs <- err
				}
				// Overlapping batches, each its own transaction.
				lo := (w*each + i) % len(demo)
				if _, err := db.SeedDemoTransactions(ctx, demo[lo:min(lo+5, len(demo))]); err != nil {
					errs <- err
				}
				if _, err := db.UpsertOntology(ctx, []store.OntologyTerm{{Term: fmt.Sprintf("t%d", i), Definition: id}}); err != nil {
					errs <- err
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Errorf("concurrent write: %v", err)
	}
	if n := count(t, db, "audit_logs"); n != workers*each {
		t.Fatalf("audit rows = %d; want %d", n, workers*each)
	}
	if n := count(t, db, "accounting_transactions"); n != int64(len(demo)) {
		t.Fatalf("demo rows = %d; want %d", n, len(demo))
	}
	if n := count(t, db, "business_ontologies"); n != each {
		t.Fatalf("ontology rows = %d; want %d", n, each)
	}
}

func testDescribe(t *testing.T, b backend) {
	u, p := b.target(t)
	const secret = "Sup3r-s3cret-pw"
	if u != "" {
		// Trust authentication ignores the password, so the URL still works.
		pu, err := url.Parse(u)
		if err != nil {
			t.Fatal(err)
		}
		pu.User = url.UserPassword(pu.User.Username(), secret)
		u = pu.String()
	}
	db := openAt(t, u, p)
	d := db.Describe()
	if strings.Contains(d, secret) {
		t.Fatalf("Describe() = %q leaks the password", d)
	}
	switch b.name {
	case "sqlite":
		abs, _ := filepath.Abs(p)
		if d != "sqlite "+abs || db.Dialect() != store.SQLite || db.SQLitePath() != abs {
			t.Fatalf("Describe() = %q, Dialect %v, path %q; want sqlite %s", d, db.Dialect(), db.SQLitePath(), abs)
		}
	case "postgres":
		pu, _ := url.Parse(u)
		want := "postgres " + pu.Host + pu.Path
		if d != want || db.Dialect() != store.Postgres {
			t.Fatalf("Describe() = %q, Dialect %v; want %q", d, db.Dialect(), want)
		}
	}
	if err := db.Ping(ctxT(t)); err != nil {
		t.Fatalf("Ping: %v", err)
	}
}

func testSQLitePragmas(t *testing.T, b backend) {
	db := migrated(t, b)
	ctx := ctxT(t)
	// Hold several connections at once so the pool must open distinct ones.
	for i := range 4 {
		conn, err := db.SQL.Conn(ctx)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		var (
			journal            string
			busy, fk, syncMode int64
		)
		if err := conn.QueryRowContext(ctx, `PRAGMA journal_mode`).Scan(&journal); err != nil {
			t.Fatal(err)
		}
		if err := conn.QueryRowContext(ctx, `PRAGMA busy_timeout`).Scan(&busy); err != nil {
			t.Fatal(err)
		}
		if err := conn.QueryRowContext(ctx, `PRAGMA foreign_keys`).Scan(&fk); err != nil {
			t.Fatal(err)
		}
		if err := conn.QueryRowContext(ctx, `PRAGMA synchronous`).Scan(&syncMode); err != nil {
			t.Fatal(err)
		}
		if journal != "wal" || busy != 5000 || fk != 1 || syncMode != 1 {
			t.Fatalf("connection %d: journal_mode=%s busy_timeout=%d foreign_keys=%d synchronous=%d; want wal 5000 1 1(NORMAL)",
				i, journal, busy, fk, syncMode)
		}
	}
}

func TestDemoTransactionsAreDeterministicAndPlausible(t *testing.T) {
	t.Parallel()
	a, again, other := store.DemoTransactions(300, 42), store.DemoTransactions(300, 42), store.DemoTransactions(300, 43)
	if !reflect.DeepEqual(a, again) {
		t.Fatal("same seed gave different rows")
	}
	if reflect.DeepEqual(a, other) {
		t.Fatal("different seeds gave identical rows")
	}
	if prefix := store.DemoTransactions(100, 42); !reflect.DeepEqual(prefix, a[:100]) {
		t.Fatal("a shorter list is not a prefix of a longer one with the same seed")
	}
	if len(store.DemoTransactions(0, 1)) != 0 || len(store.DemoTransactions(-1, 1)) != 0 {
		t.Fatal("n <= 0 must give no rows")
	}
	refs := map[string]bool{}
	accounts := map[string]bool{}
	for _, r := range a {
		if refs[r.ExternalRef] {
			t.Fatalf("duplicate external ref %s", r.ExternalRef)
		}
		refs[r.ExternalRef] = true
		accounts[r.Account] = true
		if r.Date.Year() != 2025 || r.Currency != "USD" || r.AmountCents == 0 || r.Description == "" {
			t.Fatalf("implausible row %+v", r)
		}
		income := strings.HasPrefix(r.Account, "4")
		if income != (r.AmountCents > 0) {
			t.Fatalf("row %+v: revenue must be positive and expenses negative", r)
		}
	}
	for _, acc := range []string{"4000 Revenue", "5000 Cost of Goods Sold", "6100 Rent"} {
		if !accounts[acc] {
			t.Errorf("300 rows never use account %q", acc)
		}
	}
}

func TestOpenErrorsNeverContainThePassword(t *testing.T) {
	t.Parallel()
	const secret = "hunter2-Secret"
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for _, u := range []string{
		"postgres://app:" + secret + "@127.0.0.1:1/db?sslmode=disable&connect_timeout=3", // nothing listens
		"postgres://app:" + secret + "@127.0.0.1:notaport/db",                            // unparseable
		"host=127.0.0.1 port=1 user=app password=" + secret + " dbname=db connect_timeout=3",
	} {
		db, err := store.Open(ctx, u, "")
		if err == nil {
			db.Close()
			t.Fatalf("Open(%q) succeeded; want an error", strings.ReplaceAll(u, secret, "xxx"))
		}
		if strings.Contains(err.Error(), secret) {
			t.Fatalf("error leaks the password: %v", err)
		}
	}
	if _, err := store.Open(ctx, "", ""); err == nil || !strings.Contains(err.Error(), "neither a database URL nor a SQLite path") {
		t.Fatalf("Open with neither URL nor path = %v; want the missing-location refusal", err)
	}
	if _, err := store.Open(ctx, "", ":memory:"); err == nil || !strings.Contains(err.Error(), "must be a plain file path") {
		t.Fatalf("Open(:memory:) = %v; want the plain-path refusal (each pooled connection would get its own database)", err)
	}
}

func TestRebindNumbersPlaceholdersForPostgresOnly(t *testing.T) {
	t.Parallel()
	db := &store.DB{}
	if got := db.Rebind("SELECT ?"); got != "SELECT ?" {
		t.Fatalf("zero DB (no dialect) rebound %q", got)
	}
	dbs := map[store.Dialect]string{
		store.SQLite:   `SELECT '?', "a?b" FROM t WHERE a = ? AND b = ? -- c?` + "\n" + `AND c = /* ? */ ?`,
		store.Postgres: `SELECT '?', "a?b" FROM t WHERE a = $1 AND b = $2 -- c?` + "\n" + `AND c = /* ? */ $3`,
	}
	in := dbs[store.SQLite]
	for d, want := range dbs {
		if got := store.RebindFor(d, in); got != want {
			t.Errorf("%s: Rebind = %q; want %q", d, got, want)
		}
	}
	if got := store.RebindFor(store.Postgres, `SELECT 'it''s ?' , ?`); got != `SELECT 'it''s ?' , $1` {
		t.Errorf("doubled quote: %q", got)
	}
}

// Constraint kinds wantConstraint tells apart.
const (
	constraintCheck      = "check"
	constraintForeignKey = "foreign key"
)

// wantConstraint fails the test unless err is the database refusing a row
// for a constraint of kind: on PostgreSQL its SQLSTATE (23514 check, 23503
// foreign key), on SQLite the driver's "<KIND> constraint
// failed".
func wantConstraint(t *testing.T, err error, kind, msg string) {
	t.Helper()
	if err == nil {
		t.Fatal(msg)
	}
	codes := map[string]string{constraintCheck: "23514", constraintForeignKey: "23503"}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		if pgErr.Code != codes[kind] {
			t.Fatalf("%s: got SQLSTATE %s (%v), want %s (%s violation)", msg, pgErr.Code, err, codes[kind], kind)
		}
		return
	}
	if !strings.Contains(err.Error(), strings.ToUpper(kind)+" constraint failed") {
		t.Fatalf("%s: got %v, want a %s constraint failure", msg, err, kind)
	}
}
