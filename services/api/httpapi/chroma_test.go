package httpapi

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/insightops/insightops/shared/auth"
	"github.com/insightops/insightops/shared/jobs"
	"github.com/insightops/insightops/shared/testkit"
	"github.com/insightops/insightops/shared/vectors"
)

// newChromaEnv is newEnv with CHROMA_URL set.
func newChromaEnv(t *testing.T, chromaURL string) *env {
	t.Helper()
	return newEnvWith(t, map[string]string{"CHROMA_URL": chromaURL})
}

func TestChromaContractRoutes(t *testing.T) {
	t.Parallel()
	idx := tableIndex()
	for k, want := range map[string]Route{
		"POST /admin/db/chroma/train":         {MinRole: auth.Operator},
		"GET /admin/db/chroma/knowledge-base": {MinRole: auth.Viewer},
		"DELETE /admin/db/chroma/clear":       {MinRole: auth.Admin, Confirm: true},
		"GET /admin/db/chroma/status/:id":     {MinRole: auth.Viewer},
	} {
		r, ok := idx[k]
		if !ok || r.MinRole != want.MinRole || r.Confirm != want.Confirm {
			t.Errorf("route %s: %+v (present %v), want role %s confirm %v", k, r, ok, want.MinRole, want.Confirm)
		}
	}
}

// TestChromaDisabled: without CHROMA_URL the vector-store routes answer 503
// with a clear message, and health shows chroma as disabled without
// changing the overall status.
func TestChromaDisabled(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	admin := e.token(auth.Admin)
	for _, r := range []req{
		{method: http.MethodGet, path: "/admin/db/chroma/knowledge-base", token: admin},
		{method: http.MethodPost, path: "/admin/db/chroma/train", token: admin},
		{method: http.MethodDelete, path: "/admin/db/chroma/clear?confirm=true", token: admin},
	} {
		res := e.do(r)
		code, msg := errorOf(t, res)
		if res.status != http.StatusServiceUnavailable || code != CodeUnavailable || !strings.Contains(msg, "CHROMA_URL") {
			t.Errorf("%s %s: %d %s", r.method, r.path, res.status, res.body)
		}
	}
	rep := decode[HealthReport](t, e.do(req{method: http.MethodGet, path: "/admin/db/health", token: admin}))
	if c := rep.Components["chroma"]; c.Status != StatusDisabled || !strings.Contains(c.Detail, "CHROMA_URL") {
		t.Errorf("chroma component %+v", c)
	}
	if rep.Status != StatusDegraded { // no workers, as without the chroma component
		t.Errorf("overall status %s", rep.Status)
	}
	list := decode[TaskList](t, e.do(req{method: http.MethodGet, path: "/admin/db/tasks", token: admin}))
	if list.Count != 0 {
		t.Errorf("refused requests queued %d jobs", list.Count)
	}
}

// seedKnowledgeBase writes entries in the three collections directly.
func seedKnowledgeBase(t *testing.T, chromaURL string) *vectors.Client {
	t.Helper()
	c, err := vectors.New(chromaURL, vectors.NewLocal(0), vectors.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	ctx := context.Background()
	own := map[string]any{vectors.MetaSource: vectors.SourceInsightOps}
	var ddl, docs []vectors.Doc
	for _, tb := range []string{"customers", "invoices", "payments", "vendors", "products"} {
		ddl = append(ddl, vectors.Doc{Content: fmt.Sprintf("CREATE TABLE %s (%s_id INTEGER PRIMARY KEY, %s_name TEXT)", tb, tb, tb), Metadata: own})
		docs = append(docs, vectors.Doc{Content: "The following columns are in the " + tb + " table in the main database:", Metadata: own})
	}
	sqls := []vectors.Doc{
		{Content: vectors.QuestionSQLDocument("How many customers per country?", "SELECT country, COUNT(*) FROM customers GROUP BY country"), Metadata: own},
		{Content: vectors.QuestionSQLDocument("Total paid?", "SELECT SUM(amount) FROM payments"), Metadata: own},
	}
	for coll, d := range map[string][]vectors.Doc{"ddl": ddl, "documentation": docs, "sql": sqls} {
		if err := c.Upsert(ctx, coll, d, 0, nil); err != nil {
			t.Fatal(err)
		}
	}
	return c
}

func TestKnowledgeBase(t *testing.T) {
	t.Parallel()
	chroma := testkit.Chroma(t)
	e := newChromaEnv(t, chroma.URL)
	viewer := e.token(auth.Viewer)
	get := func(query string) KnowledgeBase {
		t.Helper()
		res := e.do(req{method: http.MethodGet, path: "/admin/db/chroma/knowledge-base" + query, token: viewer})
		if res.status != http.StatusOK {
			t.Fatalf("%s: %d %s", query, res.status, res.body)
		}
		return decode[KnowledgeBase](t, res)
	}

	// Nothing trained yet: no collections, no entries.
	kb := get("")
	if kb.TotalCollections != 0 || len(kb.Collections) != 0 || len(kb.Entries) != 0 || kb.TotalEntries != 0 {
		t.Fatalf("empty store: %+v", kb)
	}

	seedKnowledgeBase(t, chroma.URL)
	kb = get("")
	if kb.TotalCollections != 3 || kb.TotalEntries != 12 || len(kb.Entries) != 12 || kb.Limit != KnowledgeBaseDefaultLimit || kb.Chroma != chroma.URL {
		t.Fatalf("kb %+v", kb)
	}
	names := []string{}
	for _, c := range kb.Collections {
		names = append(names, c.Name)
		if c.Metadata[vectors.MetaProvider] != "local" {
			t.Errorf("collection %s metadata %v", c.Name, c.Metadata)
		}
	}
	if strings.Join(names, ",") != "sql,ddl,documentation" {
		t.Errorf("collections %v", names)
	}
	// Vanna's get_training_data order and shape: sql first, question split out.
	first := kb.Entries[0]
	if first.TrainingDataType != "sql" || first.Question == nil || !strings.HasPrefix(first.Content, "SELECT") || first.ID != vectors.ID("sql", vectors.QuestionSQLDocument(*first.Question, first.Content)) {
		t.Errorf("first entry %+v", first)
	}
	if last := kb.Entries[11]; last.TrainingDataType != "documentation" || last.Question != nil {
		t.Errorf("last entry %+v", last)
	}
	var raw map[string]any
	res := e.do(req{method: http.MethodGet, path: "/admin/db/chroma/knowledge-base?limit=1", token: viewer})
	if err := json.Unmarshal(res.body, &raw); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"total_collections", "collections", "entries", "total_entries"} {
		if _, ok := raw[k]; !ok {
			t.Errorf("body lacks %q: %s", k, res.body)
		}
	}
	entry := raw["entries"].([]any)[0].(map[string]any)
	for _, k := range []string{"id", "question", "content", "training_data_type"} {
		if _, ok := entry[k]; !ok {
			t.Errorf("entry lacks %q: %v", k, entry)
		}
	}

	// Pages across collections: offset 1, limit 3 = sql[1], ddl[0], ddl[1].
	kb = get("?limit=3&offset=1")
	if len(kb.Entries) != 3 || kb.Entries[0].Collection != "sql" || kb.Entries[1].Collection != "ddl" || kb.Entries[2].Collection != "ddl" {
		t.Errorf("cross-collection page %+v", kb.Entries)
	}
	kb = get("?collection=ddl&limit=2&offset=4")
	if kb.TotalEntries != 5 || len(kb.Entries) != 1 || kb.Entries[0].TrainingDataType != "ddl" {
		t.Errorf("ddl page %+v", kb)
	}
	if kb = get("?offset=100"); len(kb.Entries) != 0 || kb.TotalEntries != 12 {
		t.Errorf("past the end %+v", kb)
	}

	// Similarity: nearest first, with distances.
	kb = get("?collection=ddl&q=" + url.QueryEscape("which vendors do we buy from") + "&limit=3")
	if len(kb.Entries) != 3 || !strings.Contains(kb.Entries[0].Content, "vendors") || kb.Entries[0].Distance == nil {
		t.Fatalf("q: %+v", kb.Entries)
	}
	for i := 1; i < len(kb.Entries); i++ {
		if *kb.Entries[i].Distance < *kb.Entries[i-1].Distance {
			t.Errorf("distances not ascending: %v", kb.Entries)
		}
	}
	kb = get("?q=" + url.QueryEscape("total paid amount") + "&limit=2")
	if len(kb.Entries) != 2 || kb.Query != "total paid amount" {
		t.Errorf("q over all: %+v", kb)
	}

	// Bad input: 400, never 500.
	for _, q := range []string{"?collection=nope", "?limit=0", "?limit=abc", "?limit=100000", "?offset=-1", "?q=", "?q=" + strings.Repeat("x", KnowledgeBaseMaxQuery+1)} {
		res := e.do(req{method: http.MethodGet, path: "/admin/db/chroma/knowledge-base" + q, token: viewer})
		if code, _ := errorOf(t, res); res.status != http.StatusBadRequest || code != CodeBadRequest {
			t.Errorf("%.40s: %d %s", q, res.status, res.body)
		}
	}

	// A collection filled by another embedder: q is a 409 saying what to do.
	other, err := vectors.New(chroma.URL, vectors.NewLocal(32), vectors.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := other.Clear(context.Background(), "sql"); err != nil {
		t.Fatal(err)
	}
	if err := other.Upsert(context.Background(), "sql", []vectors.Doc{{Content: "x"}}, 0, nil); err != nil {
		t.Fatal(err) // the emptied collection is adopted by the 32-dimension embedder
	}
	_ = other.Close()
	res = e.do(req{method: http.MethodGet, path: "/admin/db/chroma/knowledge-base?collection=sql&q=x", token: viewer})
	if code, msg := errorOf(t, res); res.status != http.StatusConflict || code != CodeEmbedderMismatch || !strings.Contains(msg, "clear") {
		t.Errorf("q on a mismatched collection: %d %s", res.status, res.body)
	}
	// Listing still works: it needs no embedding.
	if kb := get("?collection=sql"); kb.TotalEntries != 1 {
		t.Errorf("list mismatched collection: %+v", kb)
	}
}

func TestChromaTrainAndClearRoutes(t *testing.T) {
	t.Parallel()
	chroma := testkit.Chroma(t)
	e := newChromaEnv(t, chroma.URL)
	admin, operator := e.token(auth.Admin), e.token(auth.Operator)

	res := e.do(req{method: http.MethodPost, path: "/admin/db/chroma/train", token: operator})
	if res.status != http.StatusAccepted {
		t.Fatalf("train: %d %s", res.status, res.body)
	}
	acc := decode[Accepted](t, res)
	if acc.Status != "queued" || acc.Job.Kind != jobs.KindChromaTrain || res.header.Get("Location") != TaskURL(acc.TaskID) || acc.StatusURL != TaskURL(acc.TaskID) {
		t.Errorf("train accepted %+v location %q", acc, res.header.Get("Location"))
	}
	if res := e.do(req{method: http.MethodPost, path: "/admin/db/chroma/train", token: operator, body: `{"full":true}`}); res.status != http.StatusBadRequest || codeOf(t, res) != CodeInvalidJSON {
		t.Errorf("train with unknown field: %d (want CodeInvalidJSON; body %s)", res.status, res.body)
	}
	// The Insight Engine's status alias answers as the task route.
	if res := e.do(req{method: http.MethodGet, path: "/admin/db/chroma/status/" + acc.TaskID, token: e.token(auth.Viewer)}); res.status != http.StatusOK {
		t.Errorf("status alias: %d", res.status)
	}

	// Clear: confirmation required (400), admin only (403), a valid name.
	res = e.do(req{method: http.MethodDelete, path: "/admin/db/chroma/clear", token: admin})
	if code, _ := errorOf(t, res); res.status != http.StatusBadRequest || code != CodeConfirmationRequired {
		t.Errorf("clear without confirm: %d %s", res.status, res.body)
	}
	res = e.do(req{method: http.MethodDelete, path: "/admin/db/chroma/clear?confirm=false&collection_name=sql", token: admin})
	if res.status != http.StatusBadRequest || codeOf(t, res) != CodeConfirmationRequired {
		t.Errorf("clear confirm=false: %d %s, want 400 confirmation_required", res.status, res.body)
	}
	if res := e.do(req{method: http.MethodDelete, path: "/admin/db/chroma/clear?confirm=true", token: operator}); res.status != http.StatusForbidden || codeOf(t, res) != CodeForbidden {
		t.Errorf("clear as operator: %d %s, want 403 forbidden", res.status, res.body)
	}
	res = e.do(req{method: http.MethodDelete, path: "/admin/db/chroma/clear?confirm=true&collection_name=nope", token: admin})
	if code, msg := errorOf(t, res); res.status != http.StatusBadRequest || code != CodeBadRequest || !strings.Contains(msg, "collection_name") {
		t.Errorf("clear bad name: %d %s", res.status, res.body)
	}
	res = e.do(req{method: http.MethodDelete, path: "/admin/db/chroma/clear?confirm=true&collection_name=ddl", token: admin})
	if res.status != http.StatusAccepted {
		t.Fatalf("clear ddl: %d %s", res.status, res.body)
	}
	acc = decode[Accepted](t, res)
	if acc.Job.Kind != jobs.KindChromaClear || string(acc.Job.Params) != `{"collection_name":"ddl"}` || !strings.Contains(acc.Message, "ddl") {
		t.Errorf("clear ddl accepted %+v params %s", acc, acc.Job.Params)
	}
	res = e.do(req{method: http.MethodDelete, path: "/admin/db/chroma/clear?confirm=true", token: admin})
	if acc = decode[Accepted](t, res); res.status != http.StatusAccepted || len(acc.Job.Params) != 0 {
		t.Errorf("clear all: %d %s", res.status, res.body)
	}

	// Every request was audited as requested.
	evs, _ := e.auditEvents("audit.chroma.>")
	actions := map[string]int{}
	for _, ev := range evs {
		actions[ev.Action]++
	}
	if actions["chroma.train.requested"] != 1 || actions["chroma.clear.requested"] != 2 {
		t.Errorf("audited %v", actions)
	}
}

// TestChromaDownHealthAndRoutes: Chroma gone, the API stays up: health
// shows chroma down with the reason, knowledge-base answers 503, and the
// rest of the API works.
func TestChromaDownHealthAndRoutes(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := "http://" + ln.Addr().String()
	ln.Close()
	e := newChromaEnv(t, dead)
	viewer := e.token(auth.Viewer)

	res := e.do(req{method: http.MethodGet, path: "/admin/db/health", token: viewer})
	rep := decode[HealthReport](t, res)
	c := rep.Components["chroma"]
	if c.Status != StatusDown || !strings.Contains(c.Detail, dead) || !strings.Contains(c.Detail, "unreachable") {
		t.Errorf("chroma component %+v", c)
	}
	if rep.Status != StatusDown || res.status != http.StatusServiceUnavailable {
		t.Errorf("report %s (%d)", rep.Status, res.status)
	}
	if rep.Components["nats"].Status != StatusOK || rep.Components["system_db"].Status != StatusOK {
		t.Errorf("other components %+v", rep.Components)
	}

	res = e.do(req{method: http.MethodGet, path: "/admin/db/chroma/knowledge-base", token: viewer})
	if code, msg := errorOf(t, res); res.status != http.StatusServiceUnavailable || code != CodeUnavailable || !strings.Contains(msg, dead) {
		t.Errorf("knowledge-base: %d %s", res.status, res.body)
	}
	if res := e.do(req{method: http.MethodGet, path: "/health"}); res.status != http.StatusOK {
		t.Errorf("/health: %d", res.status)
	}
	if res := e.do(req{method: http.MethodGet, path: "/admin/db/tasks", token: viewer}); res.status != http.StatusOK {
		t.Errorf("tasks: %d", res.status)
	}
	// Training is still accepted: the job retries until Chroma is back.
	if res := e.do(req{method: http.MethodPost, path: "/admin/db/chroma/train", token: e.token(auth.Operator)}); res.status != http.StatusAccepted {
		t.Errorf("train while chroma is down: %d %s", res.status, res.body)
	}

	// A real server: ok with its version.
	chroma := testkit.Chroma(t)
	e2 := newChromaEnv(t, chroma.URL)
	rep = decode[HealthReport](t, e2.do(req{method: http.MethodGet, path: "/admin/db/health", token: e2.token(auth.Viewer)}))
	if c := rep.Components["chroma"]; c.Status != StatusOK || !strings.Contains(c.Detail, chroma.URL) || !strings.Contains(c.Detail, "Chroma 1.") {
		t.Errorf("chroma up: %+v", c)
	}
}

// TestKnowledgeBaseQueryWindow: a similarity query deep into the ranking
// is refused before anything is embedded or asked of Chroma (here there is
// none: a query within the window gets as far as the 503).
func TestKnowledgeBaseQueryWindow(t *testing.T) {
	t.Parallel()
	e := newEnv(t) // no CHROMA_URL
	viewer := e.token(auth.Viewer)
	for _, qs := range []string{"?q=x&offset=999&limit=2", "?q=x&offset=10000000", "?q=x&offset=600&limit=500"} {
		res := e.do(req{method: http.MethodGet, path: "/admin/db/chroma/knowledge-base" + qs, token: viewer})
		if code, _ := errorOf(t, res); res.status != http.StatusBadRequest || code != CodeQueryWindowTooLarge {
			t.Errorf("%s: %d %s, want 400 %s", qs, res.status, res.body, CodeQueryWindowTooLarge)
		}
	}
	for _, qs := range []string{"?q=x&offset=950&limit=50", "?offset=10000000"} {
		res := e.do(req{method: http.MethodGet, path: "/admin/db/chroma/knowledge-base" + qs, token: viewer})
		if res.status != http.StatusServiceUnavailable {
			t.Errorf("%s: %d %s, want 503 (no Chroma)", qs, res.status, res.body)
		}
	}
}
