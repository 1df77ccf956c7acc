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
	ProviderLocal  = "local"
	ProviderOpenAI = "openai"
	ProviderOllama = "ollama"
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

// NewEmbedder returns the embedder cfg.Provider names ("" means local),
// built from the settings config.Load read and checked:
//
//   - openai: OPENAI_API_KEY (required), OPENAI_EMBEDDING_MODEL,
//     OPENAI_BASE_URL (or OPENAI_API_BASE; an http:// URL is allowed),
//     OPENAI_EMBEDDING_DIMENSIONS, OPENAI_ORG_ID;
//   - ollama: OLLAMA_HOST (host:port is accepted), OLLAMA_EMBEDDING_MODEL;
//   - local: nothing (LocalDimension, no network).
//
// No network call is made here; a bad value is an error naming the
// variable (never showing the key).
func NewEmbedder(cfg config.Embedding) (Embedder, error) {
	switch strings.ToLower(strings.TrimSpace(cfg.Provider)) {
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
		return &remoteEmbedder{provider: ProviderOpenAI, model: model, ef: ef, dim: cfg.OpenAIDimensions}, nil
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
		return &remoteEmbedder{provider: ProviderOllama, model: model, ef: ef}, nil
	default:
		return nil, fmt.Errorf("EMBEDDING_PROVIDER=%q: accepted values: local, openai, ollama", cfg.Provider)
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
