// Package ontology loads the business glossary (the "business ontology") the
// Insight Engine uses to map business vocabulary onto the Target DB: each
// Term names a concept, defines it, lists its synonyms (in any language) and
// the tables it lives in, and gives a SQL hint.
//
// The glossary is a directory of JSON files (assets/ontology/ by default),
// each holding an array of terms:
//
//	[{"term": "Revenue", "definition": "…", "synonyms": ["Sales"],
//	  "tables": ["invoices", "invoice_lines"], "sql_hint": "SELECT …"}]
package ontology

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"unicode/utf8"
)

// Term is one glossary entry.
type Term struct {
	// Term is the concept's name, unique (case-insensitively) across the glossary.
	Term string `json:"term"`
	// Definition explains the concept in business language.
	Definition string `json:"definition"`
	// Synonyms are other names users may use for it, in any language.
	Synonyms []string `json:"synonyms"`
	// Tables are the Target DB tables or views the concept is computed from.
	Tables []string `json:"tables"`
	// SQLHint shows how to compute it (a query or an expression).
	SQLHint string `json:"sql_hint"`
}

// Load reads every *.json file directly in dir (sorted by name, not
// recursing), each a JSON array of terms, and returns all terms sorted by
// term (case-insensitively). Unknown fields, trailing data, invalid UTF-8,
// empty or duplicate terms and empty definitions are errors naming the file.
// Surrounding whitespace is trimmed; nil Synonyms and Tables become empty
// slices. A directory without JSON files yields an empty, non-nil slice; a
// missing directory an error matching fs.ErrNotExist.
func Load(dir string) ([]Term, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("load ontology: %w", err)
	}
	terms := []Term{}
	seen := map[string]string{} // folded term -> file it came from
	for _, e := range entries {
		if e.IsDir() || !strings.EqualFold(filepath.Ext(e.Name()), ".json") {
			continue
		}
		path := filepath.Join(dir, e.Name())
		fileTerms, err := loadFile(path)
		if err != nil {
			return nil, fmt.Errorf("load ontology: %w", err)
		}
		for i, t := range fileTerms {
			key := strings.ToLower(t.Term)
			if prev, dup := seen[key]; dup {
				return nil, fmt.Errorf("load ontology: %s: term #%d %q duplicates a term in %s", path, i+1, t.Term, prev)
			}
			seen[key] = path
			terms = append(terms, t)
		}
	}
	sort.SliceStable(terms, func(i, j int) bool {
		a, b := strings.ToLower(terms[i].Term), strings.ToLower(terms[j].Term)
		if a != b {
			return a < b
		}
		return terms[i].Term < terms[j].Term
	})
	return terms, nil
}

func loadFile(path string) ([]Term, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	data = bytes.TrimPrefix(data, []byte("\xef\xbb\xbf")) // tolerate a UTF-8 BOM
	if !utf8.Valid(data) {
		return nil, fmt.Errorf("%s: not valid UTF-8", path)
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var terms []Term
	if err := dec.Decode(&terms); err != nil {
		return nil, fmt.Errorf("%s: %s", path, describeJSONError(data, err))
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("%s: unexpected data after the JSON array", path)
	}
	if terms == nil {
		return nil, fmt.Errorf("%s: expected a JSON array of terms, got null", path)
	}
	for i := range terms {
		t := &terms[i]
		t.Term = strings.TrimSpace(t.Term)
		t.Definition = strings.TrimSpace(t.Definition)
		t.SQLHint = strings.TrimSpace(t.SQLHint)
		if t.Term == "" {
			return nil, fmt.Errorf("%s: term #%d: empty \"term\"", path, i+1)
		}
		if t.Definition == "" {
			return nil, fmt.Errorf("%s: term #%d %q: empty \"definition\"", path, i+1, t.Term)
		}
		var err error
		if t.Synonyms, err = cleanList(t.Synonyms); err != nil {
			return nil, fmt.Errorf("%s: term #%d %q: synonyms: %w", path, i+1, t.Term, err)
		}
		if t.Tables, err = cleanList(t.Tables); err != nil {
			return nil, fmt.Errorf("%s: term #%d %q: tables: %w", path, i+1, t.Term, err)
		}
	}
	return terms, nil
}

// cleanList trims every entry, rejects empty ones and never returns nil.
func cleanList(in []string) ([]string, error) {
	out := make([]string, 0, len(in))
	for i, s := range in {
		s = strings.TrimSpace(s)
		if s == "" {
			return nil, fmt.Errorf("entry #%d is empty", i+1)
		}
		out = append(out, s)
	}
	return out, nil
}

// describeJSONError adds a line and column to the decoder's error where the
// error carries an offset.
func describeJSONError(data []byte, err error) string {
	var offset int64 = -1
	var syn *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.As(err, &syn):
		offset = syn.Offset
	case errors.As(err, &typ):
		offset = typ.Offset
	}
	if offset < 0 || offset > int64(len(data)) {
		return "invalid JSON: " + err.Error()
	}
	line := 1 + bytes.Count(data[:offset], []byte("\n"))
	col := int(offset) - bytes.LastIndexByte(data[:offset], '\n')
	return fmt.Sprintf("invalid JSON at line %d, column %d: %v", line, col, err)
}
