// Package vectors is insightops' access to the ChromaDB vector store that
// holds a Vanna-style text-to-SQL engine's retrieval training data, through
// github.com/amikos-tech/chroma-go (API v2).
//
// # Layout (compatible with Vanna's ChromaDB store)
//
// Three collections: CollectionSQL ("sql": question/SQL pairs stored as the
// JSON {"question": …, "sql": …}, see QuestionSQLDocument), CollectionDDL
// ("ddl") and CollectionDocumentation ("documentation"). Document ids are
// Vanna's deterministic ids (ID): uuid5(nil UUID, hex(sha256(content)))
// followed by "-sql", "-ddl" or "-doc", so the same content always has the
// same id, re-training is an upsert and never a duplicate, and a Vanna app
// pointed at the same Chroma reads the same training data.
//
// # Embeddings
//
// Vectors are computed here, never by Chroma, by an Embedder chosen with
// EMBEDDING_PROVIDER (NewEmbedder): "default" (Chroma's own default
// embedding function, all-MiniLM-L6-v2 on ONNX Runtime through chroma-go's
// default_ef: the vectors a Vanna app left at its defaults searches with;
// recommended for production), "local" (the development default: feature
// hashing of word and sub-word tokens, no network, no counterpart in any
// Chroma client), "openai" or "ollama" (through chroma-go's embedding
// functions, configured by their usual environment variables). Each
// collection records its embedder twice: in Chroma 1.x's collection
// configuration ("embedding_function": {"type": "known", "name", "config"},
// ChromaFunction), which Chroma's clients read — the Python client refuses
// to open the collection with another embedding function — and in its
// metadata (MetaProvider, MetaModel, MetaDimension), which insightops
// compares: using a non-empty collection with another embedder is
// ErrEmbedderMismatch, never a collection of mixed vectors. Every embedder
// returns unit-length vectors and collections use Chroma's default l2
// space ("hnsw:space": "l2", as Vanna's do): on unit vectors it ranks
// exactly as cosine similarity, its distance is 2·(1−cosine), and — unlike
// Chroma's cosine space, which rewrites stored vectors — it keeps them bit
// for bit, so a backup restores the very same vectors. docs/VANNA.md says
// how a Vanna app configures each provider.
//
// # Ownership
//
// Entries written by insightops carry the metadata MetaSource =
// SourceInsightOps. Stale-entry removal (Client.Sync) only ever deletes
// owned entries, so training data a Vanna app added itself is kept.
//
// # Backup
//
// Client.Export pages through a collection in id order with documents,
// metadatas and embeddings; Client.Import recreates a collection with its
// metadata and upserts saved records without re-embedding them. Record is
// the line format of an archive's chroma/<collection>.jsonl (WriteJSONL,
// ReadJSONL).
package vectors

import (
	"errors"

	"github.com/insightops/insightops/shared/layout"
)

// The three collections of the layout (package layout, which
// the job contract and the archive format use too).
const (
	CollectionSQL           = layout.CollectionSQL
	CollectionDDL           = layout.CollectionDDL
	CollectionDocumentation = layout.CollectionDocumentation
)

// Collections lists the collections in the order Vanna's get_training_data
// reads them.
var Collections = layout.Collections

// ValidCollection reports whether name is one of Collections.
func ValidCollection(name string) bool { return layout.ValidCollection(name) }

// Training data types as Vanna's get_training_data reports them.
const (
	TypeSQL           = "sql"
	TypeDDL           = "ddl"
	TypeDocumentation = "documentation"
)

// Collection metadata keys written by insightops.
const (
	// MetaProvider is the embedding provider that filled the collection.
	MetaProvider = "embedding_provider"
	// MetaModel is the provider's model (or the local algorithm's version).
	MetaModel = "embedding_model"
	// MetaDimension is the vectors' dimension.
	MetaDimension = "embedding_dimension"
	// MetaSpace is Chroma's distance function key; insightops uses l2 on
	// unit vectors (see the package documentation).
	MetaSpace = "hnsw:space"
	// MetaManagedBy names insightops as the collection's manager.
	MetaManagedBy = "managed_by"
)

// Entry metadata keys written by insightops.
const (
	// MetaSource marks an entry as written by insightops (SourceInsightOps).
	MetaSource = "source"
	// MetaKind says what the entry describes: KindTableDDL, KindTableDoc,
	// KindOntologyTerm, KindQuestionSQL.
	MetaKind = "kind"
	// MetaTable is the target table (or view, index) an entry is about.
	MetaTable = "table"
	// MetaOrigin says where the content came from (sqlite_master,
	// information_schema, ontology, assets, feedback).
	MetaOrigin = "origin"
)

// SourceInsightOps is the MetaSource value of entries insightops owns.
const SourceInsightOps = "insightops"

// Entry kinds (MetaKind values).
const (
	KindTableDDL     = "ddl"
	KindTableDoc     = "table_doc"
	KindOntologyTerm = "ontology_term"
	KindQuestionSQL  = "question_sql"
)

// Errors; test with errors.Is.
var (
	// ErrUnavailable wraps failures to reach Chroma (connection refused,
	// timeout, 5xx): a retry may succeed.
	ErrUnavailable = errors.New("chroma unavailable")
	// ErrNotFound means the collection does not exist.
	ErrNotFound = errors.New("collection not found")
	// ErrEmbedderMismatch means a non-empty collection holds vectors of
	// another provider, model or dimension than the configured embedder.
	ErrEmbedderMismatch = errors.New("embedder mismatch")
	// ErrInvalid wraps bad input (unknown collection, bad record).
	ErrInvalid = errors.New("invalid input")
)

// Doc is one training entry to store: its document and metadata; its id is
// ID(collection, Content).
type Doc struct {
	Content  string
	Metadata map[string]any
}

// Entry is a stored training entry, shaped like a row of Vanna's
// get_training_data (id, question, content, training_data_type) plus the
// collection, the metadata and, for similarity queries, the distance.
type Entry struct {
	ID               string         `json:"id"`
	Question         *string        `json:"question"`
	Content          string         `json:"content"`
	TrainingDataType string         `json:"training_data_type"`
	Collection       string         `json:"collection"`
	Metadata         map[string]any `json:"metadata,omitempty"`
	Distance         *float64       `json:"distance,omitempty"`
}

// Record is one stored vector with everything needed to restore it: the
// line format of an archive's chroma/<collection>.jsonl. Export yields
// records in id order.
type Record struct {
	ID        string         `json:"id"`
	Document  string         `json:"document"`
	Metadata  map[string]any `json:"metadata"`
	Embedding []float32      `json:"embedding"`
}

// CollectionInfo describes one collection.
type CollectionInfo struct {
	Name     string         `json:"name"`
	Count    int            `json:"count"`
	Metadata map[string]any `json:"metadata"`
}
