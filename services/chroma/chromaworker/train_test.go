package chromaworker_test

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	_ "modernc.org/sqlite"

	"github.com/insightops/insightops/services/chroma/chromaworker"
	"github.com/insightops/insightops/shared/config"
	"github.com/insightops/insightops/shared/jobs"
	"github.com/insightops/insightops/shared/jobspec"
	"github.com/insightops/insightops/shared/locks"
	"github.com/insightops/insightops/shared/store"
	"github.com/insightops/insightops/shared/testkit"
	"github.com/insightops/insightops/shared/vectors"
)

// seedFeedback adds three queries: one rated good, one rated bad, one
// rated up once and down twice. Only the first is a known-good pair.
func seedFeedback(t *testing.T, db *store.DB) {
	t.Helper()
	ctx := context.Background()
	for _, q := range []struct {
		question, sql string
		ratings       []int
	}{
		{"Combien de clients par pays ?", "SELECT country, COUNT(*) FROM customers GROUP BY country", []int{1}},
		{"List every vendor", "SELECT * FROM vendor", []int{-1}},
		{"Top products", "SELECT name FROM products LIMIT 3", []int{1, -1, -1}},
	} {
		var id int64
		if err := db.SQL.QueryRowContext(ctx, db.Rebind(`INSERT INTO queries (question, sql, status) VALUES (?, ?, 'done') RETURNING id`), q.question, q.sql).Scan(&id); err != nil {
			t.Fatal(err)
		}
		for _, r := range q.ratings {
			if _, err := db.SQL.ExecContext(ctx, db.Rebind(`INSERT INTO feedback (query_id, rating) VALUES (?, ?)`), id, r); err != nil {
				t.Fatal(err)
			}
		}
	}
}

// sqliteMasterDDL reads the target's CREATE statements directly.
func sqliteMasterDDL(t *testing.T, path string) map[string]string {
	t.Helper()
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	rows, err := db.Query(`SELECT name, sql FROM sqlite_master WHERE sql IS NOT NULL AND type IN ('table', 'view', 'index') AND name NOT LIKE 'sqlite_%'`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	out := map[string]string{}
	for rows.Next() {
		var name, ddl string
		if err := rows.Scan(&name, &ddl); err != nil {
			t.Fatal(err)
		}
		out[name] = ddl
	}
	return out
}

// TestTrainOnTheDemoDatabase trains through the bus against a real Chroma:
// the ids are Vanna's (computed here from the formula), a second train
// changes nothing, and dropping a table removes its DDL.
func TestTrainOnTheDemoDatabase(t *testing.T) {
	t.Parallel()
	chroma := testkit.Chroma(t)
	target := targetCopy(t)
	cfg := newConfig(t, map[string]string{"CHROMA_URL": chroma.URL, "TARGET_DB_PATH": target})
	db := systemDB(t, cfg)
	seedFeedback(t, db)
	deps := busDeps(t, cfg, db)
	w := chromaworker.New(deps, chromaworker.Options{})
	if w.ConfigError != nil {
		t.Fatal(w.ConfigError)
	}
	startWorker(t, deps, w)
	ctx := context.Background()

	rec := waitFinal(t, deps.Bus, submit(t, deps.Bus, jobspec.ChromaTrainArgs{}, 3).ID)
	res := trainResult(t, rec)
	if rec.Attempt != 1 || rec.Progress != 100 {
		t.Errorf("record attempt %d progress %d", rec.Attempt, rec.Progress)
	}
	masterDDL := sqliteMasterDDL(t, target)
	var assetPairs []struct{ Question, SQL string }
	raw, err := os.ReadFile(filepath.Join(assetsDir, "training", "questions.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(raw, &assetPairs); err != nil {
		t.Fatal(err)
	}
	terms, err := db.OntologyTerms(ctx)
	if err != nil {
		t.Fatal(err)
	}
	nDDL, nDoc, nSQL := len(masterDDL), 13+len(terms), len(assetPairs)+1
	want := map[string]jobspec.CollectionSync{
		"ddl":           {Added: nDDL, Total: nDDL},
		"documentation": {Added: nDoc, Total: nDoc},
		"sql":           {Added: nSQL, Total: nSQL},
	}
	for name, w := range want {
		if got := res.Collections[name]; got != w {
			t.Errorf("first train %s: %s, want %s", name, counts(got), counts(w))
		}
	}
	if res.Target.Tables != 10 || res.Target.Views != 3 || res.Target.Indexes != 12 || res.Target.Dialect != "sqlite" {
		t.Errorf("target %+v", res.Target)
	}
	if res.Sources.FeedbackPairs != 1 || res.Sources.OntologyTerms != len(terms) || res.Embedding.Provider != "local" || res.Embedding.Dimension != vectors.LocalDimension {
		t.Errorf("sources %+v embedding %+v", res.Sources, res.Embedding)
	}
	t.Logf("first train: %s in %d ms", rec.Result, res.DurationMS)

	// Every id is Vanna's id of its document, computed from the formula.
	c := w.Vectors
	stored := map[string]map[string]vectors.Record{}
	for _, coll := range vectors.Collections {
		stored[coll] = export(t, c, coll)
		for id, r := range stored[coll] {
			if want := vannaID(coll, r.Document); id != want {
				t.Errorf("%s: id %s, Vanna's id of its document is %s", coll, id, want)
			}
			if r.Metadata[vectors.MetaSource] != vectors.SourceInsightOps {
				t.Errorf("%s %s: metadata %v", coll, id, r.Metadata)
			}
		}
	}
	// ddl holds exactly sqlite_master's statements.
	for name, ddl := range masterDDL {
		if _, ok := stored["ddl"][vannaID("ddl", ddl)]; !ok {
			t.Errorf("DDL of %s missing", name)
		}
	}
	// sql holds the shipped pairs as Vanna's JSON documents, and the good
	// rated query, not the others.
	for _, p := range assetPairs {
		if _, ok := stored["sql"][vannaID("sql", pyDumps(p.Question, p.SQL))]; !ok {
			t.Errorf("pair %q missing", p.Question)
		}
	}
	if _, ok := stored["sql"][vannaID("sql", pyDumps("Combien de clients par pays ?", "SELECT country, COUNT(*) FROM customers GROUP BY country"))]; !ok {
		t.Error("the well-rated query is missing")
	}
	// documentation: Vanna's training-plan wording per table, and glossary terms.
	var tableDocs, termDocs int
	for _, r := range stored["documentation"] {
		switch r.Metadata[vectors.MetaKind] {
		case vectors.KindTableDoc:
			tableDocs++
			if !strings.HasPrefix(r.Document, "The following columns are in the "+r.Metadata[vectors.MetaTable].(string)+" ") {
				t.Errorf("table doc %q", r.Document)
			}
		case vectors.KindOntologyTerm:
			termDocs++
		}
	}
	if tableDocs != 13 || termDocs != len(terms) {
		t.Errorf("%d table docs, %d term docs", tableDocs, termDocs)
	}
	for _, r := range stored["documentation"] {
		if r.Metadata[vectors.MetaTable] == "invoices" && !strings.Contains(r.Document, "| customer_id | INTEGER | not null, references customers(customer_id) |") {
			t.Errorf("invoices doc:\n%s", r.Document)
		}
	}

	// Collection metadata names the embedder.
	for _, coll := range vectors.Collections {
		info, err := c.Info(ctx, coll)
		if err != nil || info.Metadata[vectors.MetaProvider] != "local" || info.Metadata[vectors.MetaDimension] != int64(vectors.LocalDimension) {
			t.Errorf("%s info %+v %v", coll, info, err)
		}
	}

	// Second train: everything unchanged, nothing written.
	rec = waitFinal(t, deps.Bus, submit(t, deps.Bus, jobspec.ChromaTrainArgs{}, 3).ID)
	res = trainResult(t, rec)
	for name, n := range map[string]int{"ddl": nDDL, "documentation": nDoc, "sql": nSQL} {
		if got := res.Collections[name]; got != (jobspec.CollectionSync{Unchanged: n, Total: n}) {
			t.Errorf("second train %s: %s", name, counts(got))
		}
	}
	if res.Written != 0 {
		t.Errorf("second train wrote %d entries", res.Written)
	}

	// Drop a table (and so its indexes) in the target: its DDL and doc go.
	tdb, err := sql.Open("sqlite", target)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tdb.Exec(`DROP TABLE bills`); err != nil {
		t.Fatal(err)
	}
	tdb.Close()
	rec = waitFinal(t, deps.Bus, submit(t, deps.Bus, jobspec.ChromaTrainArgs{}, 3).ID)
	res = trainResult(t, rec)
	if got := res.Collections["ddl"]; got != (jobspec.CollectionSync{Unchanged: nDDL - 3, Removed: 3, Total: nDDL - 3}) {
		t.Errorf("after drop, ddl: %s", counts(got))
	}
	if got := res.Collections["documentation"]; got != (jobspec.CollectionSync{Unchanged: nDoc - 1, Removed: 1, Total: nDoc - 1}) {
		t.Errorf("after drop, documentation: %s", counts(got))
	}
	after := export(t, c, "ddl")
	for _, name := range []string{"bills", "idx_bills_vendor", "idx_bills_status_due"} {
		if _, ok := after[vannaID("ddl", masterDDL[name])]; ok {
			t.Errorf("DDL of %s still there", name)
		}
	}
	if len(after) != nDDL-3 {
		t.Errorf("%d DDL entries after the drop", len(after))
	}

	// The lease is free after every run.
	held, err := locks.Holders(ctx, deps.Bus.Locks, locks.Chroma)
	if err != nil || len(held) != 0 {
		t.Errorf("lock holders after the jobs: %v %v", held, err)
	}
}

// TestRetrievalHitRate: on the demo database, with the local embedding, a
// question naming a table's business terms finds that table's DDL in the
// top 3 for at least 80% of the questions.
func TestRetrievalHitRate(t *testing.T) {
	t.Parallel()
	chroma := testkit.Chroma(t)
	cfg := newConfig(t, map[string]string{"CHROMA_URL": chroma.URL, "TARGET_DB_PATH": targetCopy(t)})
	c, err := chromaworker.NewVectors(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if c.Embedder().Provider() != vectors.ProviderLocal {
		t.Fatalf("provider %s", c.Embedder().Provider())
	}
	w := &chromaworker.Worker{Config: cfg, Vectors: c}
	ctx := context.Background()
	if _, err := w.Sync(ctx, logProgress{t}, testkit.Logger(t)); err != nil {
		t.Fatal(err)
	}

	// The questions must not name tables: no table or view name, in its
	// plural or singular form, with underscores or spaces.
	schema, err := chromaworker.ReadSchema(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range schema.Objects {
		if o.Type == chromaworker.ObjectIndex {
			continue
		}
		name := strings.TrimPrefix(o.Name, "v_")
		for _, form := range []string{name, strings.TrimSuffix(name, "s"), strings.TrimSuffix(name, "ies") + "y"} {
			re := regexp.MustCompile(`(?i)\b` + strings.ReplaceAll(regexp.QuoteMeta(form), "_", "[ _]") + `\b`)
			for _, q := range chromaworker.RetrievalQuestions {
				if re.MatchString(q.Question) {
					t.Fatalf("question %q names table %s", q.Question, o.Name)
				}
			}
		}
	}

	results, hits, err := chromaworker.HitRate(ctx, c, chromaworker.RetrievalQuestions, 3)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range results {
		t.Logf("hit=%-5v want %-18s top3 %v  %q", r.Hit, r.Table, r.Top, r.Question)
	}
	n := len(chromaworker.RetrievalQuestions)
	rate := float64(hits) / float64(n)
	t.Logf("retrieval hit rate (right table's DDL in the top 3, local embedding): %d/%d = %.0f%%", hits, n, 100*rate)
	if n < 10 || rate < 0.8 {
		t.Errorf("hit rate %.0f%% over %d questions, want at least 80%% over at least 10", 100*rate, n)
	}
}

// TestClearJob: clear one collection, then all; counts go to zero and the
// collections stay, with their metadata. A bad collection name fails at once.
func TestClearJob(t *testing.T) {
	t.Parallel()
	chroma := testkit.Chroma(t)
	cfg := newConfig(t, map[string]string{"CHROMA_URL": chroma.URL, "TARGET_DB_PATH": targetCopy(t)})
	db := systemDB(t, cfg)
	deps := busDeps(t, cfg, db)
	w := chromaworker.New(deps, chromaworker.Options{})
	startWorker(t, deps, w)
	ctx := context.Background()
	trainResult(t, waitFinal(t, deps.Bus, submit(t, deps.Bus, jobspec.ChromaTrainArgs{}, 3).ID))
	before := map[string]vectors.CollectionInfo{}
	for _, coll := range vectors.Collections {
		info, err := w.Vectors.Info(ctx, coll)
		if err != nil || info.Count == 0 {
			t.Fatalf("%s before clear: %+v %v", coll, info, err)
		}
		before[coll] = info
	}

	rec := waitFinal(t, deps.Bus, submit(t, deps.Bus, jobspec.ChromaClearArgs{CollectionName: "sql"}, 3).ID)
	if rec.State != jobs.Succeeded {
		t.Fatalf("clear sql: %s %+v", rec.State, rec.Error)
	}
	var cr jobspec.ChromaClearResult
	if err := json.Unmarshal(rec.Result, &cr); err != nil || len(cr.Collections) != 1 || cr.Collections[0].Removed != before["sql"].Count || cr.Collections[0].Count != 0 {
		t.Errorf("clear result %s %v", rec.Result, err)
	}
	if n, _ := w.Vectors.Count(ctx, "sql"); n != 0 {
		t.Errorf("sql has %d entries after clear", n)
	}
	if n, _ := w.Vectors.Count(ctx, "ddl"); n != before["ddl"].Count {
		t.Errorf("ddl has %d entries after clearing sql only", n)
	}

	rec = waitFinal(t, deps.Bus, submit(t, deps.Bus, jobspec.ChromaClearArgs{}, 3).ID)
	if rec.State != jobs.Succeeded {
		t.Fatalf("clear all: %s %+v", rec.State, rec.Error)
	}
	for _, coll := range vectors.Collections {
		info, err := w.Vectors.Info(ctx, coll)
		if err != nil || info.Count != 0 {
			t.Errorf("%s after clear: %+v %v", coll, info, err)
		}
		if b, _ := json.Marshal(info.Metadata); string(b) != mustJSON(t, before[coll].Metadata) {
			t.Errorf("%s metadata %s, before %s", coll, b, mustJSON(t, before[coll].Metadata))
		}
	}

	rec = waitFinal(t, deps.Bus, submit(t, deps.Bus, jobs.RawArgs{JobKind: jobs.KindChromaClear, Params: json.RawMessage(`{"collection_name": "nope"}`)}, 3).ID)
	if rec.State != jobs.Failed || rec.Attempt != 1 || rec.Error.Code != jobs.CodeInvalidParams || !strings.Contains(rec.Error.Message, "nope") {
		t.Errorf("bad collection: %s attempt %d %+v", rec.State, rec.Attempt, rec.Error)
	}
}

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestChromaDown: with Chroma unreachable, a train job is retried, then
// failed and dead-lettered with a clear error naming the URL; the lease is
// released after every attempt.
func TestChromaDown(t *testing.T) {
	t.Parallel()
	chroma := testkit.Chroma(t)
	chroma.Stop() // a real server, now gone
	cfg := newConfig(t, map[string]string{"CHROMA_URL": chroma.URL, "TARGET_DB_PATH": targetCopy(t)})
	deps := busDeps(t, cfg, systemDB(t, cfg))
	w := chromaworker.New(deps, chromaworker.Options{})
	startWorker(t, deps, w)
	rec := waitFinal(t, deps.Bus, submit(t, deps.Bus, jobspec.ChromaTrainArgs{}, 3).ID)
	if rec.State != jobs.Failed || rec.Attempt != 3 || rec.Error == nil || rec.Error.Code != jobs.CodeChromaUnavailable {
		t.Fatalf("record %s attempt %d error %+v", rec.State, rec.Attempt, rec.Error)
	}
	if !strings.Contains(rec.Error.Message, "unreachable") || !strings.Contains(rec.Error.Message, chroma.URL) {
		t.Errorf("error message %q does not say Chroma at %s is unreachable", rec.Error.Message, chroma.URL)
	}
	t.Logf("error: %s", rec.Error.Message)
	held, err := locks.Holders(context.Background(), deps.Bus.Locks, locks.Chroma)
	if err != nil || len(held) != 0 {
		t.Errorf("lease after failure: %v %v", held, err)
	}
}

// TestLockHeldThenFree: a train waits (retries) while another operation
// holds the chroma lease, then runs once it is released.
func TestLockHeldThenFree(t *testing.T) {
	t.Parallel()
	chroma := testkit.Chroma(t)
	cfg := newConfig(t, map[string]string{"CHROMA_URL": chroma.URL, "TARGET_DB_PATH": targetCopy(t)})
	deps := busDeps(t, cfg, systemDB(t, cfg))
	ctx := context.Background()
	lease, err := locks.Acquire(ctx, deps.Bus.Locks, locks.Chroma, locks.Holder{Owner: "01RESTORE", Operation: jobs.KindRestore}, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	w := chromaworker.New(deps, chromaworker.Options{})
	startWorker(t, deps, w)
	id := submit(t, deps.Bus, jobspec.ChromaTrainArgs{}, 20).ID
	st := jobs.NewStore(deps.Bus.Jobs)
	deadline := time.Now().Add(30 * time.Second)
	for {
		r, _, err := st.Get(ctx, id)
		if err == nil && r.Error != nil && r.Error.Code == "lock_held" {
			if !strings.Contains(r.Error.Message, "restore.run 01RESTORE") {
				t.Errorf("lock_held message %q", r.Error.Message)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no lock_held attempt: %+v %v", r, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err := lease.Release(ctx); err != nil {
		t.Fatal(err)
	}
	rec := waitFinal(t, deps.Bus, id)
	if res := trainResult(t, rec); rec.Attempt < 2 || res.Collections["ddl"].Added == 0 {
		t.Errorf("attempt %d result %s", rec.Attempt, rec.Result)
	}
}

// TestEmbedderMismatchFailsAtOnce: a collection filled by another embedder
// is a permanent, explained failure.
func TestEmbedderMismatchFailsAtOnce(t *testing.T) {
	t.Parallel()
	chroma := testkit.Chroma(t)
	cfg := newConfig(t, map[string]string{"CHROMA_URL": chroma.URL, "TARGET_DB_PATH": targetCopy(t)})
	other, err := vectors.New(chroma.URL, vectors.NewLocal(64), vectors.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := other.Upsert(context.Background(), "ddl", []vectors.Doc{{Content: "CREATE TABLE x (a INT)"}}, 0, nil); err != nil {
		t.Fatal(err)
	}
	deps := busDeps(t, cfg, systemDB(t, cfg))
	w := chromaworker.New(deps, chromaworker.Options{})
	startWorker(t, deps, w)
	rec := waitFinal(t, deps.Bus, submit(t, deps.Bus, jobspec.ChromaTrainArgs{}, 3).ID)
	if rec.State != jobs.Failed || rec.Attempt != 1 || rec.Error.Code != jobs.CodeEmbedderMismatch || !strings.Contains(rec.Error.Message, "64 dimensions") {
		t.Errorf("record %s attempt %d %+v", rec.State, rec.Attempt, rec.Error)
	}
}

// TestDisabledAndMissingTarget: no CHROMA_URL, or no target database, is a
// permanent failure with a clear message.
func TestDisabledAndMissingTarget(t *testing.T) {
	t.Parallel()
	chroma := testkit.Chroma(t)
	for name, c := range map[string]struct {
		env  map[string]string
		code jobs.Code
		text string
	}{
		"no chroma url":  {map[string]string{"TARGET_DB_PATH": "x.db"}, jobs.CodeChromaDisabled, "CHROMA_URL"},
		"missing target": {map[string]string{"CHROMA_URL": chroma.URL, "TARGET_DB_PATH": filepath.Join(t.TempDir(), "none.db")}, jobs.CodeTargetMissing, "run init first"},
		// config.Load refuses openai without a key at start; a model the
		// embedder library does not know is found when the worker builds
		// its embedder.
		"bad embedder": {map[string]string{"CHROMA_URL": chroma.URL, "EMBEDDING_PROVIDER": "openai", "OPENAI_API_KEY": "sk-test-not-real", "OPENAI_EMBEDDING_MODEL": "nope"}, jobs.CodeInvalidConfig, "OPENAI_EMBEDDING_MODEL"},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			cfg := newConfig(t, c.env)
			deps := busDeps(t, cfg, systemDB(t, cfg))
			w := chromaworker.New(deps, chromaworker.Options{})
			startWorker(t, deps, w)
			rec := waitFinal(t, deps.Bus, submit(t, deps.Bus, jobspec.ChromaTrainArgs{}, 3).ID)
			if rec.State != jobs.Failed || rec.Attempt != 1 || rec.Error.Code != c.code || !strings.Contains(rec.Error.Message, c.text) {
				t.Errorf("record %s attempt %d %+v", rec.State, rec.Attempt, rec.Error)
			}
		})
	}
}

// TestPostgresTarget trains from a PostgreSQL target: DDL rebuilt from the
// catalogs with types, keys and constraints; a dropped table's DDL goes.
func TestPostgresTarget(t *testing.T) {
	t.Parallel()
	chroma := testkit.Chroma(t)
	url := testkit.Postgres(t)
	ctx := context.Background()
	pg, err := sql.Open("pgx", url)
	if err != nil {
		t.Fatal(err)
	}
	defer pg.Close()
	if _, err := pg.ExecContext(ctx, `
		CREATE TABLE customers (id serial PRIMARY KEY, name varchar(80) NOT NULL UNIQUE, credit_limit numeric(12,2) DEFAULT 0);
		CREATE TABLE orders (
			order_id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
			customer_id integer NOT NULL REFERENCES customers (id),
			status text NOT NULL CHECK (status IN ('open', 'paid')),
			placed_at timestamptz NOT NULL DEFAULT now());
		CREATE INDEX orders_placed_at_idx ON orders (placed_at);
		CREATE VIEW open_orders AS SELECT o.order_id, c.name FROM orders o JOIN customers c ON c.id = o.customer_id WHERE o.status = 'open';
		CREATE SCHEMA sales;
		CREATE TABLE sales."Order Lines" (order_id bigint REFERENCES orders (order_id), "user" text, qty int);
		CREATE TABLE scratch (x int);`); err != nil {
		t.Fatal(err)
	}
	cfg := newConfig(t, map[string]string{"CHROMA_URL": chroma.URL, "TARGET_DATABASE_URL": url})
	c, err := chromaworker.NewVectors(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	w := &chromaworker.Worker{Config: cfg, Vectors: c}
	res, err := w.Sync(ctx, logProgress{t}, testkit.Logger(t))
	if err != nil {
		t.Fatal(err)
	}
	if res.Target.Dialect != "postgres" || res.Target.Tables != 4 || res.Target.Views != 1 || res.Target.Indexes != 1 || strings.Contains(res.Target.Source, "postgres@") {
		t.Errorf("target %+v", res.Target)
	}
	ddl := map[string]string{}
	for _, r := range export(t, c, "ddl") {
		ddl[r.Metadata[vectors.MetaTable].(string)+"/"+r.Metadata["object_type"].(string)] = r.Document
		if r.ID != vannaID("ddl", r.Document) {
			t.Errorf("id %s", r.ID)
		}
	}
	for key, parts := range map[string][]string{
		"customers/table":           {"CREATE TABLE customers (", "id integer NOT NULL DEFAULT nextval(", "name character varying(80) NOT NULL", "credit_limit numeric(12,2) DEFAULT 0", "PRIMARY KEY (id)", "UNIQUE (name)"},
		"orders/table":              {"order_id bigint NOT NULL", "FOREIGN KEY (customer_id) REFERENCES customers(id)", "CHECK (status = ANY (ARRAY['open'::text, 'paid'::text]))", "placed_at timestamp with time zone NOT NULL DEFAULT now()"},
		"orders/index":              {"CREATE INDEX orders_placed_at_idx ON public.orders USING btree (placed_at)"},
		"open_orders/view":          {"CREATE VIEW open_orders AS", "WHERE o.status = 'open'"},
		`sales."Order Lines"/table`: {`CREATE TABLE sales."Order Lines" (`, `"user" text`, "FOREIGN KEY (order_id) REFERENCES orders(order_id)"},
		"scratch/table":             {"CREATE TABLE scratch (\n    x integer\n)"},
	} {
		got, ok := ddl[key]
		if !ok {
			t.Errorf("no DDL for %s (have %v)", key, slices.Sorted(maps.Keys(ddl)))
			continue
		}
		for _, p := range parts {
			if !strings.Contains(got, p) {
				t.Errorf("%s DDL lacks %q:\n%s", key, p, got)
			}
		}
	}
	found := false
	for _, r := range export(t, c, "documentation") {
		if r.Metadata[vectors.MetaTable] == "orders" {
			found = strings.HasPrefix(r.Document, "The following columns are in the orders table in the "+res.Target.Database+" database:") &&
				strings.Contains(r.Document, "| customer_id | integer | not null, references customers(id) |")
			if !found {
				t.Errorf("orders doc:\n%s", r.Document)
			}
		}
	}
	if !found {
		t.Error("no documentation of orders")
	}

	// Drop a table: its DDL and documentation go; nothing else changes.
	if _, err := pg.ExecContext(ctx, `DROP TABLE scratch`); err != nil {
		t.Fatal(err)
	}
	res, err = w.Sync(ctx, logProgress{t}, testkit.Logger(t))
	if err != nil {
		t.Fatal(err)
	}
	if got := res.Collections["ddl"]; got.Removed != 1 || got.Added != 0 || got.Unchanged != 5 {
		t.Errorf("ddl after drop: %s", counts(got))
	}
	if got := res.Collections["documentation"]; got.Removed != 1 || got.Added != 0 {
		t.Errorf("documentation after drop: %s", counts(got))
	}
	if _, ok := export(t, c, "ddl")[vannaID("ddl", ddl["scratch/table"])]; ok {
		t.Error("scratch DDL still there")
	}
}

// EMBEDDING_PROVIDER=default whose provisioned directory lacks the model
// stops the worker at start, naming what is missing; it never runs with
// another embedder.
func TestRunStopsAtStartWithoutTheDefaultModel(t *testing.T) {
	t.Parallel()
	cfg := newConfig(t, map[string]string{"CHROMA_URL": "http://127.0.0.1:1"})
	dir := t.TempDir()
	cfg.Embedding = config.Embedding{Provider: vectors.ProviderDefault, ModelDir: dir}
	deps := busDeps(t, cfg, systemDB(t, cfg))
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	err := chromaworker.Run(ctx, deps)
	if !errors.Is(err, vectors.ErrModelMissing) || !strings.Contains(err.Error(), filepath.Join(dir, config.ModelCacheDir, "model.onnx")) {
		t.Fatalf("Run: %v", err)
	}
}
