package restoreworker_test

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"path/filepath"
	"slices"
	"sort"
	"testing"
	"time"

	"github.com/insightops/insightops/services/restore/restoreworker"
	"github.com/insightops/insightops/shared/app"
	"github.com/insightops/insightops/shared/archiver"
	"github.com/insightops/insightops/shared/audit"
	"github.com/insightops/insightops/shared/auditsink"
	"github.com/insightops/insightops/shared/backupstore"
	"github.com/insightops/insightops/shared/config"
	"github.com/insightops/insightops/shared/jobs"
	"github.com/insightops/insightops/shared/jobspec"
	"github.com/insightops/insightops/shared/store"
	"github.com/insightops/insightops/shared/testkit"
	"github.com/insightops/insightops/shared/vectors"
	"github.com/insightops/insightops/shared/worker"
)

// assetsDir is the repository's assets/ seen from this package's directory.
const assetsDir = "../../../assets"

// env is a restore worker over real parts: an embedded NATS, a System DB
// (SQLite or PostgreSQL), a golden source and its runtime copy, a Chroma
// server, the local backup store, the audit sink and a restore worker
// replica.
type env struct {
	t      *testing.T
	ctx    context.Context
	cfg    config.Config
	deps   app.Deps
	db     *store.DB
	vec    *vectors.Client
	store  backupstore.Store
	pub    *jobs.Publisher
	jobs   *jobs.Store
	golden string
	worker *restoreworker.Worker
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

func newEnv(t *testing.T, dialect testkit.Dialect) *env {
	t.Helper()
	return newEnvVars(t, dialect, nil)
}

// newEnvVars is newEnv with more configuration variables (vars override
// the defaults).
func newEnvVars(t *testing.T, dialect testkit.Dialect, vars map[string]string) *env {
	t.Helper()
	ctx := ctxT(t)
	dir := t.TempDir()
	golden := filepath.Join(dir, "golden", "vanna_db.db")
	testkit.CopyFile(t, filepath.Join(assetsDir, "databases", "vanna_db.db"), golden)
	te := testkit.NewEnv(t, testkit.WithDialect(dialect), testkit.WithChroma(), testkit.WithVars(map[string]string{
		"APP_ENV":            "development",
		"DATA_DIR":           filepath.Join(dir, "data"),
		"TARGET_DB_SOURCE":   golden,
		"ENABLE_TARGET_DB":   "true",
		"EMBEDDING_PROVIDER": "local",
		"BACKUP_STORE":       "local",
		"JOB_ACK_WAIT":       "10s", // see startWorker
		"JOB_MAX_ATTEMPTS":   "3",
		"WORKER_ID":          "test",
	}), testkit.WithVars(vars))
	cfg, db, b, log, deps, srv := te.Config, te.DB, te.Bus, te.Log, te.Deps(), te.Chroma
	testkit.CopyFile(t, golden, cfg.TargetDBPath)

	vec, err := vectors.New(srv.URL, vectors.NewLocal(0), vectors.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = vec.Close() })
	st, err := backupstore.NewLocal(cfg.BackupDir)
	if err != nil {
		t.Fatal(err)
	}

	// The audit sink, as the API process runs it.
	sinkCtx, stopSink := context.WithCancel(context.Background())
	sinkDone := make(chan struct{})
	go func() {
		defer close(sinkDone)
		if err := auditsink.Run(sinkCtx, b.JS, db, log); err != nil {
			t.Errorf("audit sink: %v", err)
		}
	}()
	t.Cleanup(func() { stopSink(); <-sinkDone })

	w := restoreworker.New(deps, restoreworker.Options{})
	w.Store = st
	w.LockPoll = 100 * time.Millisecond
	w.LockWait = 2 * time.Minute
	w.BatchSize = 7 // several batches per collection
	e := &env{t: t, ctx: ctx, cfg: cfg, deps: deps, db: db, vec: vec, store: st,
		pub: jobs.NewPublisher(b.JS, jobs.NewStore(b.Jobs), cfg.JobMaxAttempts), jobs: jobs.NewStore(b.Jobs),
		golden: golden, worker: w}
	e.startWorker()
	return e
}

// startWorker runs a restore worker replica until the test ends.
func (e *env) startWorker() {
	t := e.t
	opts := worker.OptionsFrom(e.cfg, restoreworker.Kind, e.worker.Handlers(), e.deps.Audit, e.deps.Log)
	// 10 s: tests assert a first-attempt finish; with a 2 s AckWait
	// (heartbeats every 0.7 s) one 1.3 s stall of a busy machine redelivered
	// the job. Retries after an error go through the backoff, not AckWait.
	opts.AckWait = 10 * time.Second
	opts.Backoff = func(int) time.Duration { return 200 * time.Millisecond }
	opts.FetchWait = 500 * time.Millisecond
	opts.ShutdownTimeout = 30 * time.Second
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := worker.Run(ctx, e.deps.Bus, opts); err != nil {
			t.Errorf("restore worker: %v", err)
		}
	}()
	t.Cleanup(func() { cancel(); <-done })
}

func (e *env) exec(q string, args ...any) {
	e.t.Helper()
	if _, err := e.db.SQL.ExecContext(e.ctx, e.db.Rebind(q), args...); err != nil {
		e.t.Fatalf("%s: %v", q, err)
	}
}

// publishAudit publishes n events and waits until the sink stored them.
func (e *env) publishAudit(prefix string, n int) []string {
	e.t.Helper()
	var ids []string
	for i := range n {
		ev := audit.Event{ID: jobs.NewID(), Actor: "tester@example.com", Role: "admin", Action: "test." + prefix,
			Resource: "test", Outcome: audit.Success, Detail: map[string]any{"i": i, "phase": prefix}}
		if err := e.deps.Audit.Publish(e.ctx, ev); err != nil {
			e.t.Fatal(err)
		}
		ids = append(ids, ev.ID)
	}
	e.waitAudit(ids)
	return ids
}

// waitAudit waits until every event id is in audit_logs.
func (e *env) waitAudit(ids []string) {
	e.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for _, id := range ids {
		for {
			ok, err := e.db.AuditEventExists(e.ctx, id)
			if err != nil {
				e.t.Fatal(err)
			}
			if ok {
				break
			}
			if time.Now().After(deadline) {
				e.t.Fatalf("audit event %s never reached audit_logs", id)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
}

// seed fills the three stores.
func (e *env) seed() {
	t := e.t
	ctx := e.ctx
	for i, role := range []string{store.RoleAdmin, store.RoleOperator, store.RoleViewer} {
		if _, err := e.db.CreateUserIfAbsent(ctx, fmt.Sprintf("user%d@example.com", i), "hash-"+role, role); err != nil {
			t.Fatal(err)
		}
	}
	for i := 1; i <= 20; i++ {
		e.exec(`INSERT INTO queries (user_id, question, sql, status) VALUES (?, ?, ?, ?)`, 1+i%3, fmt.Sprintf("question %d?", i), fmt.Sprintf("SELECT %d", i), "answered")
	}
	for i := 1; i <= 10; i++ {
		e.exec(`INSERT INTO feedback (query_id, user_id, rating, comment) VALUES (?, ?, ?, ?)`, i, 1, []int{1, -1}[i%2], fmt.Sprintf("comment %d", i))
	}
	for i := 1; i <= 3; i++ {
		if err := e.db.SetConfig(ctx, fmt.Sprintf("key%d", i), fmt.Sprintf("value %d", i)); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := e.db.UpsertOntology(ctx, []store.OntologyTerm{
		{Term: "revenue", Definition: "money in", Synonyms: []string{"income", "sales"}, Tables: []string{"invoices"}},
		{Term: "expense", Definition: "money out", Tables: []string{"bills"}, SQLHint: "amount < 0"},
	}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.db.SeedDemoTransactions(ctx, store.DemoTransactions(200, 7)); err != nil {
		t.Fatal(err)
	}

	tdb := e.openTarget(false)
	defer tdb.Close()
	for _, q := range []string{
		`CREATE TABLE restore_marker (id INTEGER PRIMARY KEY, note TEXT NOT NULL)`,
		`INSERT INTO restore_marker (note) VALUES ('seeded one'), ('seeded two')`,
	} {
		if _, err := tdb.ExecContext(ctx, q); err != nil {
			t.Fatalf("target: %s: %v", q, err)
		}
	}

	for _, coll := range vectors.Collections {
		var docs []vectors.Doc
		for i := range 23 {
			docs = append(docs, vectors.Doc{
				Content:  fmt.Sprintf("%s training entry %d about invoices, payments and customer %d", coll, i, i*7),
				Metadata: map[string]any{vectors.MetaSource: vectors.SourceInsightOps, vectors.MetaKind: "seed", "n": int64(i), "weight": 0.5 + float64(i)},
			})
		}
		if err := e.vec.Upsert(ctx, coll, docs, 10, nil); err != nil {
			t.Fatalf("seed chroma %s: %v", coll, err)
		}
	}
}

// mutate changes and deletes data in the three stores.
func (e *env) mutate() {
	t := e.t
	ctx := e.ctx
	e.exec(`UPDATE users SET role = 'viewer' WHERE role = 'admin'`)
	if _, err := e.db.CreateUserIfAbsent(ctx, "intruder@example.com", "x", store.RoleAdmin); err != nil {
		t.Fatal(err)
	}
	e.exec(`DELETE FROM feedback WHERE rating = 1`)
	e.exec(`DELETE FROM queries WHERE id > 15`)
	e.exec(`UPDATE queries SET sql = 'DROP TABLE x' WHERE id = 1`)
	e.exec(`DELETE FROM accounting_transactions WHERE id > 50`)
	e.exec(`DELETE FROM configurations WHERE key = 'key2'`)
	if err := e.db.SetConfig(ctx, "key1", "changed"); err != nil {
		t.Fatal(err)
	}

	tdb := e.openTarget(false)
	defer tdb.Close()
	for _, q := range []string{
		`DELETE FROM restore_marker WHERE note = 'seeded two'`,
		`UPDATE restore_marker SET note = 'changed'`,
		`DELETE FROM journal_entries WHERE rowid % 3 = 0`,
		`DROP TABLE vendors`,
		`CREATE TABLE intruder (x TEXT)`,
	} {
		if _, err := tdb.ExecContext(ctx, q); err != nil {
			t.Fatalf("target: %s: %v", q, err)
		}
	}

	ids, err := e.vec.IDs(ctx, vectors.CollectionSQL)
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(ids)
	if err := e.vec.Delete(ctx, vectors.CollectionSQL, ids[:9], 100); err != nil {
		t.Fatal(err)
	}
	if err := e.vec.Upsert(ctx, vectors.CollectionDDL, []vectors.Doc{{Content: "CREATE TABLE intruder (x TEXT)", Metadata: map[string]any{"kind": "mutated"}}}, 10, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := e.vec.Clear(ctx, vectors.CollectionDocumentation); err != nil {
		t.Fatal(err)
	}
}

// openTarget opens the Target DB's runtime copy (afresh: a restore
// replaces the file).
func (e *env) openTarget(readOnly bool) *sql.DB {
	e.t.Helper()
	dsn := "file:" + e.cfg.TargetDBPath
	if readOnly {
		dsn += "?mode=ro"
	}
	db, err := sql.Open("sqlite", dsn)
	if err != nil {
		e.t.Fatal(err)
	}
	db.SetMaxOpenConns(1)
	return db
}

// state is the content of the three stores, rendered for comparison.
type state struct {
	System map[string][]string // every System DB table but audit_logs
	Audit  map[string]bool     // audit event ids
	Target map[string][]string // every table of the runtime copy
	Chroma map[string]collectionState
}

type collectionState struct {
	Metadata map[string]any
	Records  []vectors.Record
}

func (e *env) state() state {
	e.t.Helper()
	s := state{System: map[string][]string{}, Audit: map[string]bool{}, Target: map[string][]string{}, Chroma: map[string]collectionState{}}
	for _, table := range store.TableNames() {
		if table == "audit_logs" {
			continue
		}
		s.System[table] = tableRows(e.t, e.ctx, e.db.SQL, table)
	}
	rows, err := e.db.SQL.QueryContext(e.ctx, `SELECT event_id FROM audit_logs`)
	if err != nil {
		e.t.Fatal(err)
	}
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			e.t.Fatal(err)
		}
		s.Audit[id] = true
	}
	rows.Close()

	tdb := e.openTarget(true)
	defer tdb.Close()
	var tables []string
	trows, err := tdb.QueryContext(e.ctx, `SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name`)
	if err != nil {
		e.t.Fatal(err)
	}
	for trows.Next() {
		var n string
		_ = trows.Scan(&n)
		tables = append(tables, n)
	}
	trows.Close()
	for _, table := range tables {
		s.Target[table] = tableRows(e.t, e.ctx, tdb, table)
	}

	for _, coll := range vectors.Collections {
		info, err := e.vec.Info(e.ctx, coll)
		if err != nil {
			e.t.Fatalf("chroma %s: %v", coll, err)
		}
		cs := collectionState{Metadata: info.Metadata}
		if err := e.vec.Export(e.ctx, coll, 50, func(r vectors.Record) error {
			cs.Records = append(cs.Records, r)
			return nil
		}); err != nil {
			e.t.Fatal(err)
		}
		s.Chroma[coll] = cs
	}
	return s
}

func tableRows(t *testing.T, ctx context.Context, db *sql.DB, table string) []string {
	t.Helper()
	return testkit.TableRows(ctx, t, db, table)
}

// sameStores fails the test where got differs from want (see diffStores).
func sameStores(t *testing.T, what string, got, want state) {
	t.Helper()
	for _, d := range diffStores(got, want) {
		t.Errorf("%s: %s", what, d)
	}
}

// diffStores lists where got differs from want: every System DB row
// (audit_logs aside), every Target DB row, every Chroma record with its
// document, metadata and embedding, and each collection's metadata.
// audit_logs must hold at least want's events.
func diffStores(got, want state) []string {
	var out []string
	for table, rows := range want.System {
		if !slices.Equal(got.System[table], rows) {
			out = append(out, fmt.Sprintf("system table %s differs:\n got  %d rows %.400v\n want %d rows %.400v", table, len(got.System[table]), got.System[table], len(rows), rows))
		}
	}
	for id := range want.Audit {
		if !got.Audit[id] {
			out = append(out, fmt.Sprintf("audit event %s is missing from audit_logs", id))
		}
	}
	if len(got.Target) != len(want.Target) {
		out = append(out, fmt.Sprintf("target tables %v, want %v", keys(got.Target), keys(want.Target)))
	}
	for table, rows := range want.Target {
		if !slices.Equal(got.Target[table], rows) {
			out = append(out, fmt.Sprintf("target table %s differs: got %d rows, want %d", table, len(got.Target[table]), len(rows)))
		}
	}
	for coll, w := range want.Chroma {
		g := got.Chroma[coll]
		if !jsonEqual(g.Metadata, w.Metadata) {
			out = append(out, fmt.Sprintf("chroma %s metadata %v, want %v", coll, g.Metadata, w.Metadata))
		}
		if len(g.Records) != len(w.Records) {
			out = append(out, fmt.Sprintf("chroma %s holds %d records, want %d", coll, len(g.Records), len(w.Records)))
			continue
		}
		for i := range w.Records {
			gr, wr := g.Records[i], w.Records[i]
			if gr.ID != wr.ID || gr.Document != wr.Document || !jsonEqual(gr.Metadata, wr.Metadata) || !slices.Equal(gr.Embedding, wr.Embedding) {
				out = append(out, fmt.Sprintf("chroma %s record %d differs:\n got  %s %q %v\n want %s %q %v", coll, i, gr.ID, gr.Document, gr.Metadata, wr.ID, wr.Document, wr.Metadata))
				break
			}
		}
	}
	return out
}

// jsonEqual compares two values by their JSON encoding (map key order and
// numeric Go types aside, which JSON does not keep).
func jsonEqual(a, b any) bool {
	ja, err1 := json.Marshal(a)
	jb, err2 := json.Marshal(b)
	return err1 == nil && err2 == nil && string(ja) == string(jb)
}

func keys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// backup takes an archive of every store through the backup worker.
func (e *env) backup() jobspec.ArchiveSummary {
	e.t.Helper()
	res, err := archiver.Create(e.ctx, e.deps, jobspec.BackupCreateArgs{Note: "test"}, archiver.Run{JobID: jobs.NewID()})
	if err != nil {
		e.t.Fatalf("backup: %v", err)
	}
	for _, c := range []string{"system", "target", "chroma"} {
		if res.Components[c].Status != "included" {
			e.t.Fatalf("backup: component %s is %s (%s)", c, res.Components[c].Status, res.Components[c].Reason)
		}
	}
	return res
}

// submit queues a restore job as an admin would (jobs.RawArgs, see
// unchecked, for params only the worker is to refuse).
func (e *env) submit(p jobs.Args) string {
	e.t.Helper()
	rec, _, err := e.pub.Submit(e.ctx, jobs.Submission{Args: p, SubmittedBy: "admin@example.com"})
	if err != nil {
		e.t.Fatal(err)
	}
	return rec.ID
}

// final waits up to 3 minutes for job id to end (testkit.WaitFinal).
func (e *env) final(id string) jobs.Record {
	e.t.Helper()
	return testkit.WaitFinal(e.t, e.jobs, id, 3*time.Minute)
}

func resultOf(t *testing.T, rec jobs.Record) jobspec.RestoreResult {
	t.Helper()
	var res jobspec.RestoreResult
	if err := json.Unmarshal(rec.Result, &res); err != nil {
		t.Fatalf("decode result %s: %v", rec.Result, err)
	}
	return res
}

// archives lists the store's archive names.
func (e *env) archives() []string {
	e.t.Helper()
	infos, err := e.store.List(e.ctx)
	if err != nil {
		e.t.Fatal(err)
	}
	var out []string
	for _, i := range infos {
		out = append(out, i.Name)
	}
	return out
}

// unchecked is p published as it is, without the publisher's validation,
// so that the worker's refusal of invalid params is what is tested.
func unchecked(t *testing.T, p jobspec.RestoreArgs) jobs.RawArgs {
	t.Helper()
	b, err := json.Marshal(p)
	if err != nil {
		t.Fatal(err)
	}
	return jobs.RawArgs{JobKind: p.Kind(), Params: b}
}
