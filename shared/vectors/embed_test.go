package vectors_test

import (
	"context"
	"math"
	"slices"
	"strings"
	"testing"

	"github.com/insightops/insightops/shared/config"
	"github.com/insightops/insightops/shared/vectors"
)

func cosine(a, b []float32) float64 {
	var dot, na, nb float64
	for i := range a {
		dot += float64(a[i]) * float64(b[i])
		na += float64(a[i]) * float64(a[i])
		nb += float64(b[i]) * float64(b[i])
	}
	return dot / math.Sqrt(na*nb)
}

func TestLocalEmbedder(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	l := vectors.NewLocal(0)
	if d, _ := l.Dimension(ctx); d != vectors.LocalDimension {
		t.Fatalf("dimension %d", d)
	}
	texts := []string{
		"CREATE TABLE customers (customer_id INTEGER PRIMARY KEY, credit_limit REAL NOT NULL, payment_terms_days INTEGER)",
		"CREATE TABLE bills (bill_id INTEGER PRIMARY KEY, due_date TEXT, paid_date TEXT, amount REAL)",
		"",
		"the of and",
		"الإيرادات والمبيعات",
	}
	vs, err := l.EmbedDocuments(ctx, texts)
	if err != nil {
		t.Fatal(err)
	}
	for i, v := range vs {
		if len(v) != vectors.LocalDimension {
			t.Fatalf("text %d: %d dims", i, len(v))
		}
		var n float64
		for _, x := range v {
			n += float64(x) * float64(x)
		}
		if math.Abs(n-1) > 1e-5 {
			t.Errorf("text %d: norm² %f", i, n)
		}
		if again := l.Vector(texts[i]); !slices.Equal(again, v) {
			t.Errorf("text %d: not deterministic", i)
		}
	}
	q, _ := l.EmbedQuery(ctx, "Which clients have the highest credit limits?")
	if a, b := cosine(q, vs[0]), cosine(q, vs[1]); a <= b || a < 0.2 {
		t.Errorf("credit limit question: customers %.3f, bills %.3f", a, b)
	}
	q, _ = l.EmbedQuery(ctx, "supplier charges paid after their due dates")
	if a, b := cosine(q, vs[1]), cosine(q, vs[0]); a <= b {
		t.Errorf("paid/due question: bills %.3f, customers %.3f", a, b)
	}
	// Sub-word features: an inflected form is still close.
	a, b := l.Vector("invoiced amounts"), l.Vector("invoice amount")
	if c := cosine(a, b); c < 0.6 {
		t.Errorf("inflections: cosine %.3f", c)
	}
	// Non-Latin scripts are tokenized too.
	q, _ = l.EmbedQuery(ctx, "ما هي الإيرادات")
	if c := cosine(q, vs[4]); c < 0.2 {
		t.Errorf("Arabic: cosine %.3f", c)
	}
}

func TestTokens(t *testing.T) {
	t.Parallel()
	got := vectors.Tokens("CREATE TABLE invoice_lines (lineTotal REAL NOT NULL, unit_price REAL) -- the price of a line")
	want := []string{"invoice", "lines", "line", "total", "unit", "price", "price", "line"}
	if !slices.Equal(got, want) {
		t.Errorf("Tokens = %v, want %v", got, want)
	}
}

func TestNewEmbedder(t *testing.T) {
	t.Parallel()
	// load reads the environment the way every binary does.
	load := func(m map[string]string) (config.Config, error) {
		m["DATA_DIR"] = t.TempDir()
		return config.Load(func(k string) string { return m[k] })
	}
	mustLoad := func(m map[string]string) config.Embedding {
		t.Helper()
		cfg, err := load(m)
		if err != nil {
			t.Fatal(err)
		}
		return cfg.Embedding
	}
	for _, p := range []string{"", "local", "LOCAL"} {
		e, err := vectors.NewEmbedder(config.Embedding{Provider: p})
		if err != nil || e.Provider() != vectors.ProviderLocal || e.Model() != vectors.LocalModel {
			t.Errorf("%q: %v %v", p, e, err)
		}
	}
	if _, err := load(map[string]string{"EMBEDDING_PROVIDER": "openai"}); err == nil || !strings.Contains(err.Error(), "OPENAI_API_KEY") {
		t.Errorf("openai without key, at start: %v", err)
	}
	if _, err := vectors.NewEmbedder(config.Embedding{Provider: "openai"}); err == nil || !strings.Contains(err.Error(), "OPENAI_API_KEY") {
		t.Errorf("openai without key: %v", err)
	}
	e, err := vectors.NewEmbedder(mustLoad(map[string]string{"EMBEDDING_PROVIDER": "openai", "OPENAI_API_KEY": "sk-test-not-real", "OPENAI_EMBEDDING_DIMENSIONS": "256"}))
	if err != nil || e.Provider() != "openai" || e.Model() != vectors.DefaultOpenAIModel {
		t.Fatalf("openai: %v %v", e, err)
	}
	if d, err := e.Dimension(context.Background()); err != nil || d != 256 {
		t.Errorf("openai configured dimension: %d %v", d, err)
	}
	if _, err := load(map[string]string{"EMBEDDING_PROVIDER": "openai", "OPENAI_API_KEY": "k", "OPENAI_EMBEDDING_DIMENSIONS": "x"}); err == nil || !strings.Contains(err.Error(), "OPENAI_EMBEDDING_DIMENSIONS") {
		t.Errorf("bad dimensions: %v", err)
	}
	if _, err := load(map[string]string{"EMBEDDING_PROVIDER": "openai", "OPENAI_API_KEY": "k", "OPENAI_BASE_URL": "ftp://x"}); err == nil || !strings.Contains(err.Error(), "OPENAI_BASE_URL") {
		t.Errorf("bad base url: %v", err)
	}
	if _, err := vectors.NewEmbedder(mustLoad(map[string]string{"EMBEDDING_PROVIDER": "openai", "OPENAI_API_KEY": "k", "OPENAI_EMBEDDING_MODEL": "nope"})); err == nil || strings.Contains(err.Error(), "\"k\"") {
		t.Errorf("bad model: %v", err)
	}
	if got := mustLoad(map[string]string{"OPENAI_API_BASE": "http://127.0.0.1:9"}).OpenAIBaseURL; got != "http://127.0.0.1:9" {
		t.Errorf("OPENAI_API_BASE is not read as the base URL: %q", got)
	}
	e, err = vectors.NewEmbedder(mustLoad(map[string]string{"EMBEDDING_PROVIDER": "ollama", "OLLAMA_HOST": "127.0.0.1:1"}))
	if err != nil || e.Provider() != "ollama" || e.Model() != vectors.DefaultOllamaModel {
		t.Fatalf("ollama: %v %v", e, err)
	}
	// Nothing listens on port 1: a clear error, no hang.
	if _, err := e.EmbedQuery(context.Background(), "x"); err == nil || !strings.Contains(err.Error(), "ollama") {
		t.Errorf("ollama down: %v", err)
	}
	if _, err := vectors.NewEmbedder(config.Embedding{Provider: "bert"}); err == nil || !strings.Contains(err.Error(), "EMBEDDING_PROVIDER") {
		t.Errorf("unknown provider: %v", err)
	}
}
