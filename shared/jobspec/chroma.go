package jobspec

import (
	"github.com/insightops/insightops/shared/jobs"
	"github.com/insightops/insightops/shared/layout"
)

// ChromaTrainArgs are the params of chroma.train: none (unknown fields are
// refused).
type ChromaTrainArgs struct{}

// Kind is jobs.KindChromaTrain.
func (ChromaTrainArgs) Kind() string { return jobs.KindChromaTrain }

// Validate accepts the only value.
func (ChromaTrainArgs) Validate() error { return nil }

// ChromaClearArgs are the params of chroma.clear.
type ChromaClearArgs struct {
	// CollectionName is one of sql, ddl, documentation; empty clears all three.
	CollectionName string `json:"collection_name,omitempty"`
}

// Kind is jobs.KindChromaClear.
func (ChromaClearArgs) Kind() string { return jobs.KindChromaClear }

// Validate checks the collection name.
func (a ChromaClearArgs) Validate() error {
	if a.CollectionName != "" && !layout.ValidCollection(a.CollectionName) {
		return jobs.Invalid("collection_name %q: accepted values: %s (or none for all three)", truncate(a.CollectionName, 40), joinQuoted(layout.Collections))
	}
	return nil
}

// ChromaTrainResult is the result of chroma.train.
type ChromaTrainResult struct {
	// Chroma is the server's URL (no credentials).
	Chroma string `json:"chroma"`
	// Embedding is the embedder the vectors come from.
	Embedding EmbeddingInfo `json:"embedding"`
	// Target describes the schema read.
	Target TargetInfo `json:"target"`
	// Sources counts the entries each source gave.
	Sources SourceCounts `json:"sources"`
	// Collections has added, unchanged and removed counts per collection.
	Collections map[string]CollectionSync `json:"collections"`
	// Written is the number of entries upserted plus deleted.
	Written int `json:"written"`
	// Warnings are sources skipped (no System DB, no training assets) or
	// read in part (a view over a dropped table).
	Warnings   []string `json:"warnings"`
	DurationMS int64    `json:"duration_ms"`
}

// EmbeddingInfo names an embedder.
type EmbeddingInfo struct {
	Provider  string `json:"provider"`
	Model     string `json:"model"`
	Dimension int    `json:"dimension"`
}

// TargetInfo describes the target schema read.
type TargetInfo struct {
	Dialect  string `json:"dialect"`
	Source   string `json:"source"`
	Database string `json:"database"`
	Tables   int    `json:"tables"`
	Views    int    `json:"views"`
	Indexes  int    `json:"indexes"`
}

// SourceCounts counts the training entries by source (before duplicates
// are merged).
type SourceCounts struct {
	DDL              int `json:"ddl"`
	TableDocs        int `json:"table_docs"`
	OntologyTerms    int `json:"ontology_terms"`
	AssetPairs       int `json:"question_sql_assets"`
	FeedbackPairs    int `json:"question_sql_feedback"`
	QuestionSQLTotal int `json:"question_sql"`
}

// CollectionSync counts what a training run did to one collection.
type CollectionSync struct {
	// Added entries were not in the collection and were upserted.
	Added int `json:"added"`
	// Unchanged entries were already there (same id, so same content).
	Unchanged int `json:"unchanged"`
	// Removed entries were owned by insightops and are no longer wanted.
	Removed int `json:"removed"`
	// Total is the number of entries in the collection afterwards.
	Total int `json:"total"`
}

// ChromaClearResult is the result of chroma.clear.
type ChromaClearResult struct {
	Chroma      string         `json:"chroma"`
	Collections []ClearedEntry `json:"collections"`
}

// ClearedEntry is one cleared collection.
type ClearedEntry struct {
	Name     string         `json:"name"`
	Removed  int            `json:"removed"`
	Count    int            `json:"count"`
	Metadata map[string]any `json:"metadata"`
}
