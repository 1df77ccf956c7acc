package vectors_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"iter"
	"net"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/insightops/insightops/shared/testkit"
	"github.com/insightops/insightops/shared/vectors"
)

func newClient(t *testing.T, url string, emb vectors.Embedder) *vectors.Client {
	t.Helper()
	c, err := vectors.New(url, emb, vectors.Options{Timeout: 30 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

func owned(kind, table string) map[string]any {
	return map[string]any{vectors.MetaSource: vectors.SourceInsightOps, vectors.MetaKind: kind, vectors.MetaTable: table}
}

func ddlDocs(tables ...string) []vectors.Doc {
	var out []vectors.Doc
	for _, tb := range tables {
		out = append(out, vectors.Doc{Content: "CREATE TABLE " + tb + " (id INTEGER PRIMARY KEY, name TEXT)", Metadata: owned(vectors.KindTableDDL, tb)})
	}
	return out
}

func TestSyncAddsKeepsAndRemoves(t *testing.T) {
	t.Parallel()
	srv := testkit.Chroma(t)
	ctx := context.Background()
	c := newClient(t, srv.URL, vectors.NewLocal(0))
	if err := c.Heartbeat(ctx); err != nil {
		t.Fatal(err)
	}
	var batches []int
	progress := func(_ context.Context, done, total int) error { batches = append(batches, done); return nil }

	res, err := c.Sync(ctx, vectors.CollectionDDL, ddlDocs("alpha", "beta", "gamma", "alpha"), 2, progress)
	if err != nil {
		t.Fatal(err)
	}
	// Two batches (of 2 and 1) written in parallel: two reports, the last of all 3.
	if res != (vectors.SyncResult{Added: 3, Total: 3}) || len(batches) != 2 || batches[1] != 3 {
		t.Fatalf("first sync %+v, batches %v", res, batches)
	}
	// An entry a Vanna app added itself (no insightops metadata) is never removed.
	foreign := "CREATE TABLE vanna_added (x INT)"
	if err := c.Upsert(ctx, vectors.CollectionDDL, []vectors.Doc{{Content: foreign, Metadata: map[string]any{"note": "vanna"}}}, 0, nil); err != nil {
		t.Fatal(err)
	}

	res, err = c.Sync(ctx, vectors.CollectionDDL, ddlDocs("alpha", "beta", "gamma"), 2, nil)
	if err != nil || res != (vectors.SyncResult{Unchanged: 3, Total: 4}) {
		t.Fatalf("second sync %+v %v", res, err)
	}
	res, err = c.Sync(ctx, vectors.CollectionDDL, ddlDocs("alpha", "delta"), 2, nil)
	if err != nil || res != (vectors.SyncResult{Added: 1, Unchanged: 1, Removed: 2, Total: 3}) {
		t.Fatalf("third sync %+v %v", res, err)
	}
	ids, err := c.IDs(ctx, vectors.CollectionDDL)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{vannaID("ddl", ddlDocs("alpha")[0].Content), vannaID("ddl", ddlDocs("delta")[0].Content), vannaID("ddl", foreign)}
	slices.Sort(ids)
	slices.Sort(want)
	if !slices.Equal(ids, want) {
		t.Errorf("ids %v, want %v", ids, want)
	}

	// Collection metadata: the embedder and cosine distance.
	info, err := c.Info(ctx, vectors.CollectionDDL)
	if err != nil {
		t.Fatal(err)
	}
	if info.Count != 3 || info.Metadata[vectors.MetaProvider] != "local" || info.Metadata[vectors.MetaDimension] != int64(vectors.LocalDimension) ||
		info.Metadata[vectors.MetaModel] != vectors.LocalModel || info.Metadata[vectors.MetaSpace] != "l2" {
		t.Errorf("info %+v", info)
	}

	// Query: nearest first, distances ascending.
	hits, err := c.Query(ctx, vectors.CollectionDDL, "delta names", 5)
	if err != nil {
		t.Fatal(err)
	}
	if len(hits) != 3 || !strings.Contains(hits[0].Content, "delta") || hits[0].Distance == nil {
		t.Fatalf("hits %+v", hits)
	}
	for i := 1; i < len(hits); i++ {
		if *hits[i].Distance < *hits[i-1].Distance {
			t.Errorf("distances not ascending: %v then %v", *hits[i-1].Distance, *hits[i].Distance)
		}
	}
	// Page: Vanna's get_training_data rows.
	page, err := c.Page(ctx, vectors.CollectionDDL, 2, 1)
	if err != nil || len(page) != 2 || page[0].TrainingDataType != "ddl" || page[0].Question != nil {
		t.Errorf("page %+v %v", page, err)
	}
	if n, err := c.Count(ctx, vectors.CollectionSQL); err != nil || n != 0 {
		t.Errorf("missing collection count %d %v", n, err)
	}
	if _, err := c.Info(ctx, vectors.CollectionSQL); !errors.Is(err, vectors.ErrNotFound) {
		t.Errorf("missing collection info: %v", err)
	}
}

func TestQuestionSQLEntries(t *testing.T) {
	t.Parallel()
	srv := testkit.Chroma(t)
	ctx := context.Background()
	c := newClient(t, srv.URL, vectors.NewLocal(0))
	doc := vectors.QuestionSQLDocument("Combien de clients ?", "SELECT COUNT(*) FROM customers")
	if err := c.Upsert(ctx, vectors.CollectionSQL, []vectors.Doc{{Content: doc, Metadata: owned(vectors.KindQuestionSQL, "")}}, 0, nil); err != nil {
		t.Fatal(err)
	}
	page, err := c.Page(ctx, vectors.CollectionSQL, 10, 0)
	if err != nil || len(page) != 1 {
		t.Fatalf("page %+v %v", page, err)
	}
	e := page[0]
	if e.ID != vannaID("sql", doc) || e.Question == nil || *e.Question != "Combien de clients ?" || e.Content != "SELECT COUNT(*) FROM customers" || e.TrainingDataType != "sql" {
		t.Errorf("entry %+v", e)
	}
}

func TestExportImportRoundTrip(t *testing.T) {
	t.Parallel()
	srv := testkit.Chroma(t)
	ctx := context.Background()
	c := newClient(t, srv.URL, vectors.NewLocal(0))
	var docs []vectors.Doc
	for i := range 57 {
		docs = append(docs, vectors.Doc{
			Content:  fmt.Sprintf("The following columns are in the t%02d table: é, ما, \"quoted\" <tag>", i),
			Metadata: map[string]any{vectors.MetaSource: vectors.SourceInsightOps, "n": int64(i), "ratio": float64(i) + 0.5, "flag": i%2 == 0},
		})
	}
	if err := c.Upsert(ctx, vectors.CollectionDocumentation, docs, 10, nil); err != nil {
		t.Fatal(err)
	}
	info, err := c.Info(ctx, vectors.CollectionDocumentation)
	if err != nil {
		t.Fatal(err)
	}
	var first []vectors.Record
	if err := c.Export(ctx, vectors.CollectionDocumentation, 7, func(r vectors.Record) error { first = append(first, r); return nil }); err != nil {
		t.Fatal(err)
	}
	if len(first) != 57 {
		t.Fatalf("exported %d records", len(first))
	}
	local := vectors.NewLocal(0)
	for i, r := range first {
		if i > 0 && first[i-1].ID >= r.ID {
			t.Fatalf("not in id order at %d: %s then %s", i, first[i-1].ID, r.ID)
		}
		if r.ID != vannaID("documentation", r.Document) {
			t.Errorf("id %s is not the Vanna id of its document", r.ID)
		}
		if !slices.Equal(r.Embedding, local.Vector(r.Document)) {
			t.Errorf("%s: stored embedding differs from the computed one", r.ID)
		}
		if _, ok := r.Metadata["n"].(int64); !ok {
			t.Errorf("%s: metadata n is %T", r.ID, r.Metadata["n"])
		}
	}

	// JSONL out, then restore into a fresh Chroma.
	var buf bytes.Buffer
	n, err := c.ExportJSONL(ctx, vectors.CollectionDocumentation, 0, &buf)
	if err != nil || n != 57 || strings.Count(buf.String(), "\n") != 57 {
		t.Fatalf("jsonl: %d %v", n, err)
	}
	srv2 := testkit.Chroma(t)
	c2 := newClient(t, srv2.URL, vectors.NewLocal(0))
	n, err = c2.ImportJSONL(ctx, vectors.CollectionDocumentation, info.Metadata, bytes.NewReader(buf.Bytes()), 20)
	if err != nil || n != 57 {
		t.Fatalf("import: %d %v", n, err)
	}
	info2, err := c2.Info(ctx, vectors.CollectionDocumentation)
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(info2.Metadata) != fmt.Sprint(info.Metadata) || info2.Count != 57 {
		t.Errorf("restored info %+v, want %+v", info2, info)
	}
	var second []vectors.Record
	if err := c2.Export(ctx, vectors.CollectionDocumentation, 100, func(r vectors.Record) error { second = append(second, r); return nil }); err != nil {
		t.Fatal(err)
	}
	for i := range first {
		a, b := first[i], second[i]
		if a.ID != b.ID || a.Document != b.Document || fmt.Sprint(a.Metadata) != fmt.Sprint(b.Metadata) || !slices.Equal(a.Embedding, b.Embedding) {
			t.Fatalf("record %d differs after restore:\n%+v\n%+v", i, a, b)
		}
	}
	// A similarity query works on the restored vectors.
	hits, err := c2.Query(ctx, vectors.CollectionDocumentation, "columns of the t05 table", 1)
	if err != nil || len(hits) != 1 {
		t.Fatalf("query restored: %+v %v", hits, err)
	}

	// Import replaces: importing 2 records leaves exactly 2.
	// A record without metadata (as a Vanna app writes them) is restored too.
	bare := vectors.Record{ID: "bare-doc", Document: "bare", Embedding: local.Vector("bare")}
	if n, err := c2.Import(ctx, vectors.CollectionDocumentation, info.Metadata, records(append(first[:2:2], bare)), 0); err != nil || n != 3 {
		t.Fatalf("replace: %d %v", n, err)
	}
	if n, _ := c2.Count(ctx, vectors.CollectionDocumentation); n != 3 {
		t.Errorf("after replace: %d entries", n)
	}
	err = c2.Export(ctx, vectors.CollectionDocumentation, 0, func(r vectors.Record) error {
		if r.ID == "bare-doc" && (len(r.Metadata) != 0 || r.Document != "bare") {
			t.Errorf("bare record back as %+v", r)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}

	// Bad records are refused with ErrInvalid.
	bad := map[string][]vectors.Record{
		"duplicate id":    {first[0], first[0]},
		"wrong dimension": {{ID: "x", Document: "d", Embedding: []float32{1, 0}}},
		"no embedding":    {{ID: "x", Document: "d"}},
	}
	for name, recs := range bad {
		if _, err := c2.Import(ctx, vectors.CollectionDocumentation, info.Metadata, records(recs), 0); !errors.Is(err, vectors.ErrInvalid) {
			t.Errorf("%s: %v", name, err)
		}
	}
	if _, err := c2.ImportJSONL(ctx, vectors.CollectionDocumentation, nil, strings.NewReader("{\"id\": 1}\n"), 0); !errors.Is(err, vectors.ErrInvalid) {
		t.Errorf("malformed line: %v", err)
	}
	if err := c2.Export(ctx, vectors.CollectionSQL, 0, func(vectors.Record) error { return nil }); !errors.Is(err, vectors.ErrNotFound) {
		t.Errorf("export of a missing collection: %v", err)
	}
}

func TestEmbedderMismatchAndClear(t *testing.T) {
	t.Parallel()
	srv := testkit.Chroma(t)
	ctx := context.Background()
	c := newClient(t, srv.URL, vectors.NewLocal(0))
	if err := c.Upsert(ctx, vectors.CollectionDDL, ddlDocs("alpha"), 0, nil); err != nil {
		t.Fatal(err)
	}
	small := newClient(t, srv.URL, vectors.NewLocal(64))
	_, err := small.Ensure(ctx, vectors.CollectionDDL)
	if !errors.Is(err, vectors.ErrEmbedderMismatch) || !strings.Contains(err.Error(), "64 dimensions") || !strings.Contains(err.Error(), "clear") {
		t.Fatalf("mismatch: %v", err)
	}
	if _, err := small.Query(ctx, vectors.CollectionDDL, "alpha", 3); !errors.Is(err, vectors.ErrEmbedderMismatch) {
		t.Errorf("query mismatch: %v", err)
	}
	if err := small.Upsert(ctx, vectors.CollectionDDL, ddlDocs("beta"), 0, nil); !errors.Is(err, vectors.ErrEmbedderMismatch) {
		t.Errorf("upsert mismatch: %v", err)
	}
	// Clear empties the collection for the clearing client's embedder:
	// its other metadata is kept, the embedder keys and the configuration's
	// embedding function are the client's.
	before, _ := c.Info(ctx, vectors.CollectionDDL)
	info, err := small.Clear(ctx, vectors.CollectionDDL)
	if err != nil || info.Count != 0 || info.Metadata[vectors.MetaDimension] != int64(64) || info.Metadata[vectors.MetaSpace] != before.Metadata[vectors.MetaSpace] ||
		info.Metadata[vectors.MetaManagedBy] != before.Metadata[vectors.MetaManagedBy] || len(info.Metadata) != len(before.Metadata) {
		t.Fatalf("clear: %+v %v (before %+v)", info, err, before)
	}
	if ef := readEFWithChromaGo(t, srv.URL, vectors.CollectionDDL); ef.Name != "insightops_local" || ef.Config["dimension"] != float64(64) {
		t.Errorf("configuration after clear: %+v", ef)
	}
	info, err = small.Ensure(ctx, vectors.CollectionDDL)
	if err != nil || info.Metadata[vectors.MetaDimension] != int64(64) || info.Metadata[vectors.MetaSpace] != "l2" {
		t.Fatalf("adopt: %+v %v", info, err)
	}
	if err := small.Upsert(ctx, vectors.CollectionDDL, ddlDocs("beta"), 0, nil); err != nil {
		t.Fatal(err)
	}
	// Clearing a collection that does not exist creates it empty.
	if info, err := c.Clear(ctx, vectors.CollectionSQL); err != nil || info.Count != 0 || info.Metadata[vectors.MetaProvider] != "local" {
		t.Errorf("clear missing: %+v %v", info, err)
	}
}

func TestUnavailable(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	url := "http://" + ln.Addr().String()
	ln.Close() // nothing listens there now
	c := newClient(t, url, vectors.NewLocal(0))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for name, err := range map[string]error{
		"heartbeat": c.Heartbeat(ctx),
		"upsert":    c.Upsert(ctx, vectors.CollectionDDL, ddlDocs("a"), 0, nil),
		"count":     func() error { _, err := c.Count(ctx, vectors.CollectionDDL); return err }(),
	} {
		if !errors.Is(err, vectors.ErrUnavailable) || !strings.Contains(err.Error(), url) {
			t.Errorf("%s: %v", name, err)
		}
	}
	if _, err := vectors.New("ftp://x", vectors.NewLocal(0), vectors.Options{}); err == nil || !strings.Contains(err.Error(), "want http(s)://host:port") {
		t.Errorf("ftp URL: %v, want the http(s) refusal", err)
	}
	if _, err := vectors.New("http://user:secret@127.0.0.1:1/", vectors.NewLocal(0), vectors.Options{}); err != nil {
		t.Errorf("basic auth URL: %v", err)
	}
}

// records yields recs without errors.
func records(recs []vectors.Record) iter.Seq2[vectors.Record, error] {
	return func(yield func(vectors.Record, error) bool) {
		for _, r := range recs {
			if !yield(r, nil) {
				return
			}
		}
	}
}
