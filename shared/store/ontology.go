package store

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
)

// OntologyTerm is one entry of the business glossary.
type OntologyTerm struct {
	Term       string   `json:"term"`
	Definition string   `json:"definition"`
	Synonyms   []string `json:"synonyms"`
	Tables     []string `json:"tables"`
	SQLHint    string   `json:"sql_hint"`
}

// OntologyResult counts what [DB.UpsertOntology] did with each term.
type OntologyResult struct {
	Inserted  int // new terms
	Updated   int // existing terms whose content changed
	Unchanged int // existing terms with identical content
}

// normalized returns t with the term trimmed and nil slices made empty, so
// that nil and empty lists hash (and read back) the same.
func (t OntologyTerm) normalized() OntologyTerm {
	t.Term = strings.TrimSpace(t.Term)
	if t.Synonyms == nil {
		t.Synonyms = []string{}
	}
	if t.Tables == nil {
		t.Tables = []string{}
	}
	return t
}

// ContentSHA256 returns the hex SHA-256 of the term's canonical JSON
// encoding (fields in declaration order, lists in the given order); it is
// what business_ontologies.content_sha256 holds.
func (t OntologyTerm) ContentSHA256() string {
	b, _ := json.Marshal(t.normalized()) //nolint:errchkjson // cannot fail: strings and string slices only
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// UpsertOntology inserts or updates the given glossary terms in one
// transaction. A term whose stored content_sha256 equals the new content is
// left untouched (Unchanged), so a second call with the same input writes
// nothing. Terms are matched exactly (after trimming spaces); terms absent
// from the input are kept. An empty or repeated term is an error and nothing
// is written.
func (db *DB) UpsertOntology(ctx context.Context, terms []OntologyTerm) (OntologyResult, error) {
	var res OntologyResult
	seen := make(map[string]bool, len(terms))
	norm := make([]OntologyTerm, 0, len(terms))
	for i, t := range terms {
		t = t.normalized()
		if t.Term == "" {
			return res, fmt.Errorf("store: upsert ontology: term #%d is empty", i+1)
		}
		if seen[t.Term] {
			return res, fmt.Errorf("store: upsert ontology: term %q appears twice", t.Term)
		}
		seen[t.Term] = true
		norm = append(norm, t)
	}
	if len(norm) == 0 {
		return res, nil
	}
	err := db.inTx(ctx, func(tx *sql.Tx) error {
		lookup, err := tx.PrepareContext(ctx, db.Rebind(`SELECT content_sha256 FROM business_ontologies WHERE term = ?`))
		if err != nil {
			return err
		}
		defer lookup.Close()
		// ON CONFLICT covers a concurrent writer inserting the same term
		// between our lookup and our insert (PostgreSQL, READ COMMITTED).
		upsert, err := tx.PrepareContext(ctx, db.Rebind(
			`INSERT INTO business_ontologies (term, definition, synonyms, "tables", sql_hint, content_sha256, updated_at)
			 VALUES (?, ?, ?, ?, ?, ?, ?)
			 ON CONFLICT (term) DO UPDATE SET
			   definition = excluded.definition, synonyms = excluded.synonyms, "tables" = excluded."tables",
			   sql_hint = excluded.sql_hint, content_sha256 = excluded.content_sha256, updated_at = excluded.updated_at
			 WHERE business_ontologies.content_sha256 <> excluded.content_sha256`))
		if err != nil {
			return err
		}
		defer upsert.Close()
		now := db.timeArg(time.Now())
		for _, t := range norm {
			sum := t.ContentSHA256()
			var old string
			err := lookup.QueryRowContext(ctx, t.Term).Scan(&old)
			exists := err == nil
			if err != nil && !errors.Is(err, sql.ErrNoRows) {
				return fmt.Errorf("term %q: %w", t.Term, err)
			}
			if exists && old == sum {
				res.Unchanged++
				continue
			}
			syn, _ := json.Marshal(t.Synonyms)
			tbl, _ := json.Marshal(t.Tables)
			if _, err := upsert.ExecContext(ctx, t.Term, t.Definition, string(syn), string(tbl), t.SQLHint, sum, now); err != nil {
				return fmt.Errorf("term %q: %w", t.Term, err)
			}
			if exists {
				res.Updated++
			} else {
				res.Inserted++
			}
		}
		return nil
	})
	if err != nil {
		return OntologyResult{}, fmt.Errorf("store: upsert ontology: %w", err)
	}
	return res, nil
}

// OntologyTerms returns the whole glossary sorted by term
// (case-insensitively, then byte-wise, the same on both dialects). Synonyms
// and Tables are never nil.
func (db *DB) OntologyTerms(ctx context.Context) ([]OntologyTerm, error) {
	rows, err := db.SQL.QueryContext(ctx,
		`SELECT term, definition, synonyms, "tables", sql_hint FROM business_ontologies`)
	if err != nil {
		return nil, fmt.Errorf("store: list ontology: %w", err)
	}
	defer rows.Close()
	out := []OntologyTerm{}
	for rows.Next() {
		var (
			t        OntologyTerm
			syn, tbl []byte
		)
		if err := rows.Scan(&t.Term, &t.Definition, &syn, &tbl, &t.SQLHint); err != nil {
			return nil, fmt.Errorf("store: list ontology: %w", err)
		}
		if err := json.Unmarshal(syn, &t.Synonyms); err != nil {
			return nil, fmt.Errorf("store: list ontology: synonyms of %q: %w", t.Term, err)
		}
		if err := json.Unmarshal(tbl, &t.Tables); err != nil {
			return nil, fmt.Errorf("store: list ontology: tables of %q: %w", t.Term, err)
		}
		out = append(out, t.normalized())
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: list ontology: %w", err)
	}
	slices.SortFunc(out, func(a, b OntologyTerm) int {
		if c := strings.Compare(strings.ToLower(a.Term), strings.ToLower(b.Term)); c != 0 {
			return c
		}
		return strings.Compare(a.Term, b.Term)
	})
	return out, nil
}
