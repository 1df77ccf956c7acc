package vectors

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"math"
	"strings"
	"sync"

	"github.com/amikos-tech/chroma-go/pkg/embeddings"
	"github.com/amikos-tech/chroma-go/pkg/embeddings/ollama"
	"github.com/amikos-tech/chroma-go/pkg/embeddings/openai"

	"github.com/insightops/insightops/shared/config"
)

// Embedding providers (EMBEDDING_PROVIDER values).
const (
	// ProviderDefault is Chroma's default embedding function (DefaultModel).
	ProviderDefault = "default"
	ProviderLocal   = "local"
	ProviderOpenAI  = "openai"
	ProviderOllama  = "ollama"
)

// Defaults of the remote providers (config's, repeated for readers of
// this package).
const (
	DefaultOpenAIModel = config.DefaultOpenAIModel
	DefaultOllamaModel = config.DefaultOllamaModel
	DefaultOllamaHost  = config.DefaultOllamaHost
)

// Embedder turns texts into vectors. Implementations are safe for
// concurrent use.
type Embedder interface {
	// Provider is the EMBEDDING_PROVIDER value: default, local, openai or
	// ollama.
	Provider() string
	// Model names the model (or the local algorithm and its version).
	Model() string
	// Dimension is the length of every vector this embedder returns; a
	// remote provider may embed a probe text once to learn it.
	Dimension(ctx context.Context) (int, error)
	// EmbedDocuments returns one vector per text, in order.
	EmbedDocuments(ctx context.Context, texts []string) ([][]float32, error)
	// EmbedQuery returns the vector of a search text.
	EmbedQuery(ctx context.Context, text string) ([]float32, error)
}

// NewEmbedder returns the embedder cfg.Provider names ("" means local),
// built from the settings config.Load read and checked:
//
//   - openai: OPENAI_API_KEY (required), OPENAI_EMBEDDING_MODEL,
//     OPENAI_BASE_URL (or OPENAI_API_BASE; an http:// URL is allowed),
//     OPENAI_EMBEDDING_DIMENSIONS, OPENAI_ORG_ID;
//   - ollama: OLLAMA_HOST (host:port is accepted), OLLAMA_EMBEDDING_MODEL;
//   - local: nothing (LocalDimension, no network);
//   - default: Chroma's default embedding function (DefaultModel on ONNX
//     Runtime, chroma-go's default_ef), loaded once per process (by Load,
//     or by its first embedding) from EMBEDDING_MODEL_DIR, or from
//     chroma-go's caches under $HOME, fetched there on first use when
//     EMBEDDING_MODEL_DIR is empty. What is missing and cannot be fetched
//     is ErrModelMissing, naming each file and where it was looked for;
//     there is no fallback to another embedder.
//
// No network call is made here; a bad value is an error naming the
// variable (never showing the key).
func NewEmbedder(cfg config.Embedding) (Embedder, error) {
	switch strings.ToLower(strings.TrimSpace(cfg.Provider)) {
	case ProviderDefault:
		return newDefaultEmbedder(strings.TrimSpace(cfg.ModelDir)), nil
	case "", ProviderLocal:
		return NewLocal(LocalDimension), nil
	case ProviderOpenAI:
		if cfg.OpenAIAPIKey == "" {
			return nil, errors.New("EMBEDDING_PROVIDER=openai needs OPENAI_API_KEY")
		}
		model := cmp.Or(cfg.OpenAIModel, DefaultOpenAIModel)
		opts := []openai.Option{openai.WithModel(openai.EmbeddingModel(model))}
		if base := cfg.OpenAIBaseURL; base != "" {
			opts = append(opts, openai.WithBaseURL(base))
			if strings.HasPrefix(strings.ToLower(base), "http://") {
				opts = append(opts, openai.WithInsecure())
			}
		}
		if n := cfg.OpenAIDimensions; n != 0 {
			if n < 1 || n > 65536 {
				return nil, fmt.Errorf("OPENAI_EMBEDDING_DIMENSIONS=%d: accepted values: an integer from 1 to 65536", n)
			}
			opts = append(opts, openai.WithDimensions(n))
		}
		if org := cfg.OpenAIOrgID; org != "" {
			opts = append(opts, openai.WithOpenAIOrganizationID(org))
		}
		ef, err := openai.NewOpenAIEmbeddingFunction(cfg.OpenAIAPIKey, opts...)
		if err != nil {
			// chroma-go's messages never contain the key.
			return nil, fmt.Errorf("openai embedder (OPENAI_EMBEDDING_MODEL, OPENAI_BASE_URL): %w", err)
		}
		// Chroma's OpenAIEmbeddingFunction reads its key from the
		// variable api_key_env_var names; Vanna apps set OPENAI_API_KEY.
		efc := map[string]any{"api_key_env_var": "OPENAI_API_KEY", "model_name": model}
		if base := cfg.OpenAIBaseURL; base != "" {
			efc["api_base"] = base
		}
		if n := cfg.OpenAIDimensions; n != 0 {
			efc["dimensions"] = n
		}
		if org := cfg.OpenAIOrgID; org != "" {
			efc["organization_id"] = org
		}
		return &remoteEmbedder{provider: ProviderOpenAI, model: model, ef: ef, dim: cfg.OpenAIDimensions, efName: "openai", efConfig: efc}, nil
	case ProviderOllama:
		host := cmp.Or(cfg.OllamaHost, DefaultOllamaHost)
		if !strings.Contains(host, "://") {
			host = "http://" + host
		}
		model := cmp.Or(cfg.OllamaModel, DefaultOllamaModel)
		ef, err := ollama.NewOllamaEmbeddingFunction(ollama.WithBaseURL(host), ollama.WithModel(embeddings.EmbeddingModel(model)))
		if err != nil {
			return nil, fmt.Errorf("ollama embedder (OLLAMA_HOST=%q, OLLAMA_EMBEDDING_MODEL=%q): %w", config.RedactURLs(host), model, err)
		}
		return &remoteEmbedder{provider: ProviderOllama, model: model, ef: ef, efName: "ollama",
			efConfig: map[string]any{"url": host, "model_name": model, "timeout": 60}}, nil
	default:
		return nil, fmt.Errorf("EMBEDDING_PROVIDER=%q: accepted values: default, local, openai, ollama", cfg.Provider)
	}
}

// remoteEmbedder is a chroma-go embedding function (openai, ollama).
type remoteEmbedder struct {
	provider, model string
	ef              embeddings.EmbeddingFunction
	// efName and efConfig are how Chroma's clients name and configure
	// the same embedding function (ChromaFunction).
	efName   string
	efConfig map[string]any

	mu  sync.Mutex
	dim int // 0 until known
}

func (r *remoteEmbedder) Provider() string { return r.provider }
func (r *remoteEmbedder) Model() string    { return r.model }

func (r *remoteEmbedder) ChromaFunction() (string, map[string]any) {
	return r.efName, r.efConfig
}

// dimensionProbe is the text embedded once to learn a remote model's dimension.
const dimensionProbe = "dimension probe"

func (r *remoteEmbedder) Dimension(ctx context.Context) (int, error) {
	r.mu.Lock()
	d := r.dim
	r.mu.Unlock()
	if d > 0 {
		return d, nil
	}
	v, err := r.EmbedQuery(ctx, dimensionProbe)
	if err != nil {
		return 0, err
	}
	return len(v), nil
}

func (r *remoteEmbedder) learn(n int) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	switch {
	case n == 0:
		return fmt.Errorf("%s embedder (%s) returned an empty vector", r.provider, r.model)
	case r.dim == 0:
		r.dim = n
	case r.dim != n:
		return fmt.Errorf("%s embedder (%s) returned a %d-dimensional vector after %d-dimensional ones", r.provider, r.model, n, r.dim)
	}
	return nil
}

func (r *remoteEmbedder) EmbedDocuments(ctx context.Context, texts []string) ([][]float32, error) {
	if len(texts) == 0 {
		return nil, nil
	}
	embs, err := r.ef.EmbedDocuments(ctx, texts)
	if err != nil {
		return nil, fmt.Errorf("%s embeddings (%s): %w", r.provider, r.model, err)
	}
	if len(embs) != len(texts) {
		return nil, fmt.Errorf("%s embeddings (%s): %d vectors for %d texts", r.provider, r.model, len(embs), len(texts))
	}
	out := make([][]float32, len(embs))
	for i, e := range embs {
		out[i] = normalize(e.ContentAsFloat32())
		if err := r.learn(len(out[i])); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// EmbedQuery embeds text as a one-document batch: chroma-go's OpenAI
// EmbedQuery ignores OPENAI_EMBEDDING_DIMENSIONS, which would give query
// vectors of another dimension than the stored ones.
func (r *remoteEmbedder) EmbedQuery(ctx context.Context, text string) ([]float32, error) {
	vs, err := r.EmbedDocuments(ctx, []string{text})
	if err != nil {
		return nil, err
	}
	return vs[0], nil
}

// normalize scales v to unit length in place (a zero vector stays zero):
// collections use Chroma's l2 space, which on unit vectors ranks exactly as
// cosine similarity does.
func normalize(v []float32) []float32 {
	var n float64
	for _, x := range v {
		n += float64(x) * float64(x)
	}
	if n == 0 {
		return v
	}
	n = math.Sqrt(n)
	for i, x := range v {
		v[i] = float32(float64(x) / n)
	}
	return v
}

// ChromaFunction returns the name and configuration of e's embedding
// function as Chroma 1.x clients record it in a collection's configuration
// and rebuild it from there: "default" with {} (Chroma's
// DefaultEmbeddingFunction, all-MiniLM-L6-v2), "openai" with
// api_key_env_var, model_name (and api_base, dimensions, organization_id
// when set), "ollama" with url, model_name and timeout. The local embedder
// has no counterpart in any Chroma client; it is recorded as
// "insightops_local" with its algorithm and dimension, a name no client
// knows, so none opens it with an embedding function of its own without
// being told.
func ChromaFunction(e Embedder) (string, map[string]any) {
	if f, ok := e.(interface {
		ChromaFunction() (string, map[string]any)
	}); ok {
		if name, cfg := f.ChromaFunction(); name != "" {
			if cfg == nil {
				cfg = map[string]any{}
			}
			return name, cfg
		}
	}
	return "insightops_" + e.Provider(), map[string]any{"model": e.Model()}
}

// chromaEF adapts an Embedder to chroma-go's EmbeddingFunction, which
// chroma-go requires when it creates or opens a collection (without one it
// would build its ONNX default and download a model). insightops always
// passes vectors it computed itself, so chroma-go never calls it to embed
// data; the adapter works anyway, for completeness.
type chromaEF struct{ e Embedder }

var _ embeddings.EmbeddingFunction = chromaEF{}

func (c chromaEF) EmbedDocuments(ctx context.Context, texts []string) ([]embeddings.Embedding, error) {
	vs, err := c.e.EmbedDocuments(ctx, texts)
	if err != nil {
		return nil, err
	}
	return embeddings.NewEmbeddingsFromFloat32(vs)
}

func (c chromaEF) EmbedQuery(ctx context.Context, text string) (embeddings.Embedding, error) {
	v, err := c.e.EmbedQuery(ctx, text)
	if err != nil {
		return nil, err
	}
	return embeddings.NewEmbeddingFromFloat32(v), nil
}

// Name is the embedding function's name as Chroma's clients register it
// (ChromaFunction): chroma-go writes it, with GetConfig, into a new
// collection's configuration ("embedding_function": {"type": "known",
// "name": …, "config": …}), where Chroma's Python client compares it with
// the embedding function an app opens the collection with.
func (c chromaEF) Name() string {
	name, _ := ChromaFunction(c.e)
	return name
}

func (c chromaEF) GetConfig() embeddings.EmbeddingFunctionConfig {
	_, cfg := ChromaFunction(c.e)
	return cfg
}

func (c chromaEF) DefaultSpace() embeddings.DistanceMetric { return embeddings.L2 }

func (c chromaEF) SupportedSpaces() []embeddings.DistanceMetric {
	return []embeddings.DistanceMetric{embeddings.COSINE, embeddings.L2, embeddings.IP}
}

// NewLocalChromaEF returns the local embedder as a chroma-go embedding
// function, for code that opens collections with chroma-go directly.
func NewLocalChromaEF() embeddings.EmbeddingFunction { return chromaEF{NewLocal(0)} }

// recordedEF describes, for a collection's configuration only, the
// embedding function of another embedder than the client's, known from a
// collection's metadata (a restored collection): it names it as
// ChromaFunction would and embeds nothing.
type recordedEF struct {
	name string
	cfg  map[string]any
}

// newRecordedEF returns the recordedEF of the embedder metadata names
// (MetaProvider, MetaModel, MetaDimension).
func newRecordedEF(metadata map[string]any) recordedEF {
	model := fmt.Sprint(metadata[MetaModel])
	switch p := fmt.Sprint(metadata[MetaProvider]); p {
	case ProviderDefault:
		return recordedEF{name: "default", cfg: map[string]any{}}
	case ProviderOpenAI:
		return recordedEF{name: "openai", cfg: map[string]any{"api_key_env_var": "OPENAI_API_KEY", "model_name": model}}
	case ProviderOllama:
		return recordedEF{name: "ollama", cfg: map[string]any{"url": DefaultOllamaHost, "model_name": model, "timeout": 60}}
	default:
		cfg := map[string]any{"model": model}
		if d, ok := metadata[MetaDimension]; ok {
			cfg["dimension"] = d
		}
		return recordedEF{name: "insightops_" + p, cfg: cfg}
	}
}

var _ embeddings.EmbeddingFunction = recordedEF{}

var errRecordedEF = errors.New("vectors: a recorded embedding function embeds nothing")

func (r recordedEF) EmbedDocuments(context.Context, []string) ([]embeddings.Embedding, error) {
	return nil, errRecordedEF
}

func (r recordedEF) EmbedQuery(context.Context, string) (embeddings.Embedding, error) {
	return nil, errRecordedEF
}

func (r recordedEF) Name() string                                  { return r.name }
func (r recordedEF) GetConfig() embeddings.EmbeddingFunctionConfig { return r.cfg }
func (r recordedEF) DefaultSpace() embeddings.DistanceMetric       { return embeddings.L2 }
func (r recordedEF) SupportedSpaces() []embeddings.DistanceMetric {
	return []embeddings.DistanceMetric{embeddings.COSINE, embeddings.L2, embeddings.IP}
}
