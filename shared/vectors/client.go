package vectors

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	chroma "github.com/amikos-tech/chroma-go/pkg/api/v2"
	chhttp "github.com/amikos-tech/chroma-go/pkg/commons/http"
	"github.com/amikos-tech/chroma-go/pkg/embeddings"

	"github.com/insightops/insightops/shared/config"
)

// DefaultTimeout bounds one request to Chroma when Options.Timeout is zero.
const DefaultTimeout = 60 * time.Second

// DefaultBatchSize is the number of entries per upsert, delete or get
// request when a caller passes a batch size below 1. Chroma 1.0 accepts up
// to its max_batch_size (5461) per request.
const DefaultBatchSize = 500

// DefaultParallel is the number of write requests Apply keeps in flight
// when Options.Parallel is zero.
const DefaultParallel = 4

// Options configure a Client.
type Options struct {
	// Timeout bounds each HTTP request (DefaultTimeout when zero).
	Timeout time.Duration
	// Parallel is the number of write requests Apply keeps in flight
	// (DefaultParallel when < 1; 1 writes batch after batch).
	Parallel int
}

// Client is insightops' handle on one Chroma server, with the embedder
// whose vectors it writes and compares. It is safe for concurrent use.
type Client struct {
	api      chroma.Client
	emb      Embedder
	display  string // the URL without credentials
	parallel int
}

// New returns a client of the Chroma server at rawURL (http:// or https://,
// optionally with user:password@ for basic auth) using emb. It does not
// connect: Heartbeat checks the server.
func New(rawURL string, emb Embedder, opts Options) (*Client, error) {
	if emb == nil {
		return nil, errors.New("vectors: new client: no embedder")
	}
	u, err := url.Parse(strings.TrimSpace(rawURL))
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("vectors: chroma URL %q: want http(s)://host:port", config.RedactURLs(strings.TrimSpace(rawURL)))
	}
	timeout := opts.Timeout
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	// Our own HTTP client: chroma-go v0.3.5's WithTimeout only records the
	// value (no request is bounded by it), and without WithHTTPClient it
	// sends through http.DefaultClient, which it also reconfigures.
	tr := http.DefaultTransport.(*http.Transport).Clone()
	copts := []chroma.ClientOption{chroma.WithHTTPClient(&http.Client{Timeout: timeout, Transport: tr}), chroma.WithTimeout(timeout)}
	if u.User != nil {
		pw, _ := u.User.Password()
		copts = append(copts, chroma.WithAuth(chroma.NewBasicAuthCredentialsProvider(u.User.Username(), pw)))
		u.User = nil
	}
	u.RawQuery, u.Fragment = "", ""
	base := strings.TrimSuffix(u.String(), "/")
	copts = append([]chroma.ClientOption{chroma.WithBaseURL(base)}, copts...)
	api, err := newChromaHTTPClient(copts...)
	if err != nil {
		return nil, fmt.Errorf("vectors: chroma client for %s: %w", base, err)
	}
	parallel := opts.Parallel
	if parallel < 1 {
		parallel = DefaultParallel
	}
	return &Client{api: api, emb: emb, display: base, parallel: parallel}, nil
}

// URL is the server's URL without credentials.
func (c *Client) URL() string { return c.display }

// Embedder is the client's embedder.
func (c *Client) Embedder() Embedder { return c.emb }

// Close releases the client's connections.
func (c *Client) Close() error {
	if err := c.api.Close(); err != nil {
		return fmt.Errorf("vectors: close client: %w", err)
	}
	return nil
}

// Heartbeat checks that the server answers; an error wraps ErrUnavailable.
func (c *Client) Heartbeat(ctx context.Context) error {
	if err := c.api.Heartbeat(ctx); err != nil {
		return c.classify(ctx, err, "heartbeat", "")
	}
	return nil
}

// Version returns the server's version.
func (c *Client) Version(ctx context.Context) (string, error) {
	v, err := c.api.GetVersion(ctx)
	if err != nil {
		return "", c.classify(ctx, err, "version", "")
	}
	return v, nil
}

// classify wraps a chroma-go error with what was done and where, and with
// ErrUnavailable (unreachable, 5xx, timeout) or ErrNotFound (404).
func (c *Client) classify(ctx context.Context, err error, op, collection string) error {
	what := op
	if collection != "" {
		what += " " + collection
	}
	var ce *chhttp.ChromaError
	var ne net.Error
	switch {
	case errors.As(err, &ce) && ce.ErrorCode == 404:
		return fmt.Errorf("vectors: %s at %s: %w: %s", what, c.display, ErrNotFound, ce.Message)
	case errors.As(err, &ce) && (ce.ErrorCode == 0 || ce.ErrorCode >= 500):
		msg := ce.Message
		if ce.ErrorCode != 0 {
			msg = fmt.Sprintf("HTTP %d %s: %s", ce.ErrorCode, ce.ErrorID, ce.Message)
		}
		return fmt.Errorf("vectors: %s: %w: Chroma at %s: %s", what, ErrUnavailable, c.display, msg)
	case errors.As(err, &ce):
		return fmt.Errorf("vectors: %s at %s: HTTP %d %s: %s", what, c.display, ce.ErrorCode, ce.ErrorID, ce.Message)
	case ctx.Err() != nil:
		return fmt.Errorf("vectors: %s at %s: %w", what, c.display, ctx.Err())
	case errors.Is(err, context.DeadlineExceeded), errors.As(err, &ne):
		// The transport error is shown, not wrapped: callers classify by
		// ErrUnavailable, and a wrapped context.DeadlineExceeded would read
		// as their own deadline.
		return fmt.Errorf("vectors: %s: %w: Chroma at %s: %v", what, ErrUnavailable, c.display, err) //nolint:errorlint // see above
	}
	return fmt.Errorf("vectors: %s at %s: %w", what, c.display, err)
}

// DesiredMetadata is the metadata insightops gives a collection it creates
// for the client's embedder.
func (c *Client) DesiredMetadata(ctx context.Context) (map[string]any, error) {
	dim, err := c.emb.Dimension(ctx)
	if err != nil {
		return nil, fmt.Errorf("vectors: embedding dimension: %w", err)
	}
	return map[string]any{
		MetaProvider:  c.emb.Provider(),
		MetaModel:     c.emb.Model(),
		MetaDimension: int64(dim),
		MetaSpace:     "l2",
		MetaManagedBy: SourceInsightOps,
	}, nil
}

// open gets an existing collection (ErrNotFound when it does not exist).
func (c *Client) open(ctx context.Context, name string) (chroma.Collection, error) {
	if !ValidCollection(name) {
		return nil, fmt.Errorf("vectors: %w: unknown collection %q (want one of %v)", ErrInvalid, name, Collections)
	}
	col, err := c.api.GetCollection(ctx, name, chroma.WithEmbeddingFunctionGet(chromaEF{c.emb}))
	if err != nil {
		return nil, c.classify(ctx, err, "open collection", name)
	}
	return col, nil
}

// create creates the collection with metadata, or returns it when another
// writer created it first.
func (c *Client) create(ctx context.Context, name string, metadata map[string]any) (chroma.Collection, error) {
	md, err := collectionMetadata(metadata)
	if err != nil {
		return nil, fmt.Errorf("vectors: create collection %s: %w", name, err)
	}
	// The configuration names the embedding function of the vectors the
	// metadata says the collection holds: the client's, or — when a
	// restore recreates a collection another embedder filled — that one's.
	var ef embeddings.EmbeddingFunction = chromaEF{c.emb}
	if p, ok := metadata[MetaProvider]; ok && (fmt.Sprint(p) != c.emb.Provider() || fmt.Sprint(metadata[MetaModel]) != c.emb.Model()) {
		ef = newRecordedEF(metadata)
	}
	col, err := c.api.CreateCollection(ctx, name,
		chroma.WithCollectionMetadataCreate(md),
		chroma.WithEmbeddingFunctionCreate(ef),
		chroma.WithIfNotExistsCreate())
	if err != nil {
		return nil, c.classify(ctx, err, "create collection", name)
	}
	return col, nil
}

// Info returns a collection's name, entry count and metadata
// (ErrNotFound when it does not exist).
func (c *Client) Info(ctx context.Context, name string) (CollectionInfo, error) {
	col, err := c.open(ctx, name)
	if err != nil {
		return CollectionInfo{}, err
	}
	return c.info(ctx, col)
}

func (c *Client) info(ctx context.Context, col chroma.Collection) (CollectionInfo, error) {
	n, err := col.Count(ctx)
	if err != nil {
		return CollectionInfo{}, c.classify(ctx, err, "count", col.Name())
	}
	return CollectionInfo{Name: col.Name(), Count: n, Metadata: metadataMap(col.Metadata())}, nil
}

// Count returns the number of entries of a collection; a collection that
// does not exist counts 0.
func (c *Client) Count(ctx context.Context, name string) (int, error) {
	col, err := c.open(ctx, name)
	if errors.Is(err, ErrNotFound) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	n, err := col.Count(ctx)
	if err != nil {
		return 0, c.classify(ctx, err, "count", name)
	}
	return n, nil
}

// Ensure opens the collection, creating it with DesiredMetadata when it is
// missing, and checks that its vectors are the embedder's: a non-empty
// collection filled by another provider, model or dimension (or without
// that metadata) is ErrEmbedderMismatch; an empty one is adopted (its
// metadata is updated to the embedder's).
func (c *Client) Ensure(ctx context.Context, name string) (CollectionInfo, error) {
	col, err := c.ensure(ctx, name)
	if err != nil {
		return CollectionInfo{}, err
	}
	return c.info(ctx, col)
}

func (c *Client) ensure(ctx context.Context, name string) (chroma.Collection, error) {
	want, err := c.DesiredMetadata(ctx)
	if err != nil {
		return nil, err
	}
	col, err := c.open(ctx, name)
	if errors.Is(err, ErrNotFound) {
		col, err = c.create(ctx, name, want)
	}
	if err != nil {
		return nil, err
	}
	have := metadataMap(col.Metadata())
	if sameEmbedder(have, want) {
		return col, c.recordEF(ctx, col)
	}
	n, err := col.Count(ctx)
	if err != nil {
		return nil, c.classify(ctx, err, "count", name)
	}
	if n > 0 {
		return nil, mismatchError(name, n, have, want)
	}
	// Empty: adopt it, recreated so that its collection configuration
	// names this embedder too (Chroma cannot change a configuration's
	// embedding function).
	return c.recreate(ctx, name, have, want)
}

// recordEF writes the client's embedding function into the configuration
// of a collection whose metadata already names the client's embedder but
// whose configuration does not (one created before insightops recorded
// it, with no embedding_function or Chroma's "legacy" marker): Chroma 1.x
// accepts an embedding_function in a collection's configuration update.
// A configuration naming another function is left alone.
func (c *Client) recordEF(ctx context.Context, col chroma.Collection) error {
	var info *chroma.EmbeddingFunctionInfo
	if impl, ok := col.Configuration().(*chroma.CollectionConfigurationImpl); ok && impl != nil {
		info, _ = impl.GetEmbeddingFunctionInfo()
	}
	if info != nil && info.Type == "known" {
		return nil
	}
	exec, ok := c.api.(interface {
		ExecuteRequest(ctx context.Context, method, path string, request any) ([]byte, error)
	})
	if !ok {
		return nil
	}
	name, cfg := ChromaFunction(c.emb)
	path, err := url.JoinPath("tenants", col.Tenant().Name(), "databases", col.Database().Name(), "collections", col.ID())
	if err != nil {
		return fmt.Errorf("vectors: record the embedding function of %s: %w", col.Name(), err)
	}
	body := map[string]any{"new_configuration": map[string]any{
		"embedding_function": map[string]any{"type": "known", "name": name, "config": cfg},
	}}
	if _, err := exec.ExecuteRequest(ctx, http.MethodPut, path, body); err != nil {
		return c.classify(ctx, err, "record the embedding function of", col.Name())
	}
	return nil
}

// recreate deletes the collection (if it exists) and creates it empty
// with have's metadata, its embedder keys replaced by want's, and the
// client's embedding function in its configuration.
func (c *Client) recreate(ctx context.Context, name string, have, want map[string]any) (chroma.Collection, error) {
	merged := map[string]any{}
	maps.Copy(merged, have)
	for _, k := range []string{MetaProvider, MetaModel, MetaDimension, MetaManagedBy} {
		merged[k] = want[k]
	}
	if _, ok := merged[MetaSpace]; !ok {
		merged[MetaSpace] = want[MetaSpace]
	}
	if err := c.api.DeleteCollection(ctx, name); err != nil {
		if err = c.classify(ctx, err, "delete collection", name); !errors.Is(err, ErrNotFound) {
			return nil, err
		}
	}
	return c.create(ctx, name, merged)
}

// CheckEmbedder returns ErrEmbedderMismatch when a non-empty collection
// was filled by another embedder than the client's (used before a
// similarity query), nil otherwise (a missing collection included).
func (c *Client) CheckEmbedder(ctx context.Context, info CollectionInfo) error {
	if info.Count == 0 {
		return nil
	}
	want, err := c.DesiredMetadata(ctx)
	if err != nil {
		return err
	}
	if sameEmbedder(info.Metadata, want) {
		return nil
	}
	return mismatchError(info.Name, info.Count, info.Metadata, want)
}

func sameEmbedder(have, want map[string]any) bool {
	return fmt.Sprint(have[MetaProvider]) == fmt.Sprint(want[MetaProvider]) &&
		fmt.Sprint(have[MetaModel]) == fmt.Sprint(want[MetaModel]) &&
		fmt.Sprint(have[MetaDimension]) == fmt.Sprint(want[MetaDimension])
}

func mismatchError(name string, count int, have, want map[string]any) error {
	desc := func(m map[string]any) string {
		if m[MetaProvider] == nil {
			return "an unknown embedder (no " + MetaProvider + " metadata)"
		}
		return fmt.Sprintf("%v/%v (%v dimensions)", m[MetaProvider], m[MetaModel], m[MetaDimension])
	}
	return fmt.Errorf("vectors: %w: collection %q holds %d entries embedded by %s, but EMBEDDING_PROVIDER gives %s; "+
		"clear the collection (DELETE /admin/db/chroma/clear?confirm=true&collection_name=%s) and retrain, or set EMBEDDING_PROVIDER back",
		ErrEmbedderMismatch, name, count, desc(have), desc(want), name)
}

// Clear empties a collection by deleting and recreating it with the
// metadata it had, its embedder keys (and its configuration's embedding
// function) the client's, so the next training fills it with the
// configured embedder; a collection that did not exist is created with
// DesiredMetadata.
func (c *Client) Clear(ctx context.Context, name string) (CollectionInfo, error) {
	want, err := c.DesiredMetadata(ctx)
	if err != nil {
		return CollectionInfo{}, err
	}
	var have map[string]any
	col, err := c.open(ctx, name)
	switch {
	case errors.Is(err, ErrNotFound):
	case err != nil:
		return CollectionInfo{}, err
	default:
		have = metadataMap(col.Metadata())
	}
	col, err = c.recreate(ctx, name, have, want)
	if err != nil {
		return CollectionInfo{}, err
	}
	return c.info(ctx, col)
}

// collectionMetadata converts a map to chroma-go collection metadata.
func collectionMetadata(m map[string]any) (chroma.CollectionMetadata, error) {
	md := chroma.NewMetadata()
	for k, v := range m {
		if err := setMeta(md, k, v); err != nil {
			return nil, err
		}
	}
	return md, nil
}

// documentMetadata converts a map to chroma-go document metadata.
func documentMetadata(m map[string]any) (chroma.DocumentMetadata, error) {
	md := chroma.NewDocumentMetadata()
	for k, v := range m {
		if err := setMeta(md, k, v); err != nil {
			return nil, err
		}
	}
	return md, nil
}

type metaSetter interface {
	SetString(key, value string)
	SetInt(key string, value int64)
	SetFloat(key string, value float64)
	SetBool(key string, value bool)
}

// setMeta sets one scalar metadata value. json.Number (as ReadJSONL
// decodes numbers) keeps integers integers.
func setMeta(md metaSetter, k string, v any) error {
	switch t := v.(type) {
	case string:
		md.SetString(k, t)
	case bool:
		md.SetBool(k, t)
	case int:
		md.SetInt(k, int64(t))
	case int32:
		md.SetInt(k, int64(t))
	case int64:
		md.SetInt(k, t)
	case float32:
		md.SetFloat(k, float64(t))
	case float64:
		md.SetFloat(k, t)
	case json.Number:
		if i, err := t.Int64(); err == nil && !strings.ContainsAny(t.String(), ".eE") {
			md.SetInt(k, i)
		} else if f, err := t.Float64(); err == nil {
			md.SetFloat(k, f)
		} else {
			return fmt.Errorf("%w: metadata %q: bad number %q", ErrInvalid, k, t)
		}
	default:
		return fmt.Errorf("%w: metadata %q: unsupported value type %T (strings, numbers and booleans only)", ErrInvalid, k, v)
	}
	return nil
}

// metadataMap converts chroma-go metadata (collection or document) to a
// plain map: integers as int64, other numbers as float64. nil gives nil.
func metadataMap(md any) map[string]any {
	if md == nil {
		return nil
	}
	raw, err := json.Marshal(md)
	if err != nil || string(raw) == "null" {
		return nil
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var m map[string]any
	if err := dec.Decode(&m); err != nil {
		return nil
	}
	for k, v := range m {
		if n, ok := v.(json.Number); ok {
			m[k] = plainNumber(n)
		}
	}
	return m
}

// plainNumber is n as int64 when it is written as an integer, else float64.
func plainNumber(n json.Number) any {
	if !strings.ContainsAny(n.String(), ".eE") {
		if i, err := n.Int64(); err == nil {
			return i
		}
	}
	f, _ := n.Float64()
	return f
}

// defaultClientMu serialises newChromaHTTPClient.
var defaultClientMu sync.Mutex

// newChromaHTTPClient is chroma.NewHTTPClient without its side effect on
// the process: chroma-go v0.3.5 sets http.DefaultClient.Transport to a bare
// transport of its own before it applies the options (no proxy from the
// environment, no dial timeouts for every other user of
// http.DefaultClient). The previous transport is put back at once; the
// mutex keeps two constructions from interleaving. Nothing in insightops
// sends through http.DefaultClient, so nothing reads it in between.
func newChromaHTTPClient(opts ...chroma.ClientOption) (chroma.Client, error) {
	defaultClientMu.Lock()
	defer defaultClientMu.Unlock()
	prev := http.DefaultClient.Transport
	defer func() { http.DefaultClient.Transport = prev }()
	return chroma.NewHTTPClient(opts...)
}
