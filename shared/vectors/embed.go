package vectors

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"sync"

	"github.com/amikos-tech/chroma-go/pkg/embeddings"
	"github.com/amikos-tech/chroma-go/pkg/embeddings/ollama"
	"github.com/amikos-tech/chroma-go/pkg/embeddings/openai"
)

// Embedding providers (EMBEDDING_PROVIDER values).
const (
	ProviderLocal  = "local"
	ProviderOpenAI = "openai"
	ProviderOllama = "ollama"
)

// Defaults of the remote providers' models.
const (
	DefaultOpenAIModel = "text-embedding-3-small"
	DefaultOllamaModel = "nomic-embed-text"
	DefaultOllamaHost  = "http://localhost:11434"
)

// Embedder turns texts into vectors. Implementations are safe for
// concurrent use.
type Embedder interface {
	// Provider is the EMBEDDING_PROVIDER value: local, openai or ollama.
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

// NewEmbedder returns the embedder of provider ("" means local), configured
// from getenv (os.Getenv in production) with the providers' usual variables:
//
//   - openai: OPENAI_API_KEY (required), OPENAI_EMBEDDING_MODEL (default
//     text-embedding-3-small), OPENAI_BASE_URL (or OPENAI_API_BASE; an
//     http:// URL is allowed), OPENAI_EMBEDDING_DIMENSIONS, OPENAI_ORG_ID;
//   - ollama: OLLAMA_HOST (default http://localhost:11434; host:port is
//     accepted), OLLAMA_EMBEDDING_MODEL (default nomic-embed-text);
//   - local: nothing (LocalDimension, no network).
//
// No network call is made here; a bad value is an error naming the variable.
func NewEmbedder(provider string, getenv func(string) string) (Embedder, error) {
	env := func(k string) string { return strings.TrimSpace(getenv(k)) }
	switch strings.ToLower(strings.TrimSpace(provider)) {
	case "", ProviderLocal:
		return NewLocal(LocalDimension), nil
	case ProviderOpenAI:
		key := env("OPENAI_API_KEY")
		if key == "" {
			return nil, errors.New("EMBEDDING_PROVIDER=openai needs OPENAI_API_KEY")
		}
		model := env("OPENAI_EMBEDDING_MODEL")
		if model == "" {
			model = DefaultOpenAIModel
		}
		opts := []openai.Option{openai.WithModel(openai.EmbeddingModel(model))}
		base := env("OPENAI_BASE_URL")
		if base == "" {
			base = env("OPENAI_API_BASE")
		}
		if base != "" {
			opts = append(opts, openai.WithBaseURL(base))
			if strings.HasPrefix(strings.ToLower(base), "http://") {
				opts = append(opts, openai.WithInsecure())
			}
		}
		dim := 0
		if v := env("OPENAI_EMBEDDING_DIMENSIONS"); v != "" {
			n, err := strconv.Atoi(v)
			if err != nil || n < 1 || n > 65536 {
				return nil, fmt.Errorf("OPENAI_EMBEDDING_DIMENSIONS=%q: accepted values: an integer from 1 to 65536", v)
			}
			dim = n
			opts = append(opts, openai.WithDimensions(n))
		}
		if org := env("OPENAI_ORG_ID"); org != "" {
			opts = append(opts, openai.WithOpenAIOrganizationID(org))
		}
		ef, err := openai.NewOpenAIEmbeddingFunction(key, opts...)
		if err != nil {
			// chroma-go's messages never contain the key.
			return nil, fmt.Errorf("openai embedder (OPENAI_EMBEDDING_MODEL, OPENAI_BASE_URL): %w", err)
		}
		return &remoteEmbedder{provider: ProviderOpenAI, model: model, ef: ef, dim: dim}, nil
	case ProviderOllama:
		host := env("OLLAMA_HOST")
		if host == "" {
			host = DefaultOllamaHost
		}
		if !strings.Contains(host, "://") {
			host = "http://" + host
		}
		model := env("OLLAMA_EMBEDDING_MODEL")
		if model == "" {
			model = DefaultOllamaModel
		}
		ef, err := ollama.NewOllamaEmbeddingFunction(ollama.WithBaseURL(host), ollama.WithModel(embeddings.EmbeddingModel(model)))
		if err != nil {
			return nil, fmt.Errorf("ollama embedder (OLLAMA_HOST=%q, OLLAMA_EMBEDDING_MODEL=%q): %w", host, model, err)
		}
		return &remoteEmbedder{provider: ProviderOllama, model: model, ef: ef}, nil
	default:
		return nil, fmt.Errorf("EMBEDDING_PROVIDER=%q: accepted values: local, openai, ollama", provider)
	}
}

// remoteEmbedder is a chroma-go embedding function (openai, ollama).
type remoteEmbedder struct {
	provider, model string
	ef              embeddings.EmbeddingFunction

	mu  sync.Mutex
	dim int // 0 until known
}

func (r *remoteEmbedder) Provider() string { return r.provider }
func (r *remoteEmbedder) Model() string    { return r.model }

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

func (c chromaEF) Name() string { return "insightops_" + c.e.Provider() }

func (c chromaEF) GetConfig() embeddings.EmbeddingFunctionConfig {
	return embeddings.EmbeddingFunctionConfig{"provider": c.e.Provider(), "model": c.e.Model()}
}

func (c chromaEF) DefaultSpace() embeddings.DistanceMetric { return embeddings.L2 }

func (c chromaEF) SupportedSpaces() []embeddings.DistanceMetric {
	return []embeddings.DistanceMetric{embeddings.COSINE, embeddings.L2, embeddings.IP}
}
