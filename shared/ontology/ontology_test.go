package ontology

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func writeFiles(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, body := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func TestLoad(t *testing.T) {
	dir := writeFiles(t, map[string]string{
		"b.json": `[
		  {"term": "revenue", "definition": "Sales.", "synonyms": ["Sales", "الإيرادات"], "tables": ["invoices"], "sql_hint": "SELECT 1"},
		  {"term": "  Accounts Receivable ", "definition": " Owed to us. ", "tables": ["v_invoice_balances"]}
		]`,
		"a.JSON":          "\xef\xbb\xbf" + `[{"term": "Days Sales Outstanding", "definition": "DSO.", "synonyms": [], "tables": [], "sql_hint": ""}]`,
		"notes.txt":       "not json, ignored",
		"sub/nested.json": `[{"term": "Ignored", "definition": "subdirectories are not read"}]`,
		"empty.json":      `[]`,
	})
	got, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	want := []Term{
		{Term: "Accounts Receivable", Definition: "Owed to us.", Synonyms: []string{}, Tables: []string{"v_invoice_balances"}},
		{Term: "Days Sales Outstanding", Definition: "DSO.", Synonyms: []string{}, Tables: []string{}},
		{Term: "revenue", Definition: "Sales.", Synonyms: []string{"Sales", "الإيرادات"}, Tables: []string{"invoices"}, SQLHint: "SELECT 1"},
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("Load =\n%#v\nwant\n%#v", got, want)
	}
}

func TestLoadEmptyDir(t *testing.T) {
	got, err := Load(t.TempDir())
	if err != nil || got == nil || len(got) != 0 {
		t.Fatalf("Load(empty) = %#v, %v; want empty non-nil slice", got, err)
	}
}

func TestLoadMissingDir(t *testing.T) {
	_, err := Load(filepath.Join(t.TempDir(), "nope"))
	if !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("err = %v, want fs.ErrNotExist", err)
	}
}

func TestLoadErrors(t *testing.T) {
	good := `[{"term": "Revenue", "definition": "Sales."}]`
	tests := []struct {
		name   string
		files  map[string]string
		wantIn []string // substrings of the error
	}{
		{"syntax error", map[string]string{"bad.json": "[\n  {\"term\": \"x\",}\n]"}, []string{"bad.json", "line 2"}},
		{"unknown field", map[string]string{"extra.json": `[{"term": "x", "definition": "y", "owner": "me"}]`}, []string{"extra.json", `unknown field "owner"`}},
		{"misspelled sql_hint", map[string]string{"hint.json": `[{"term": "x", "definition": "y", "sqlHint": "SELECT 1"}]`}, []string{"hint.json", "sqlHint"}},
		{"wrong type", map[string]string{"type.json": `[{"term": "x", "definition": "y", "tables": "invoices"}]`}, []string{"type.json", "line 1"}},
		{"object not array", map[string]string{"obj.json": `{"term": "x", "definition": "y"}`}, []string{"obj.json"}},
		{"null", map[string]string{"null.json": `null`}, []string{"null.json", "null"}},
		{"trailing data", map[string]string{"trail.json": good + ` []`}, []string{"trail.json", "after the JSON array"}},
		{"empty file", map[string]string{"zero.json": ``}, []string{"zero.json"}},
		{"empty term", map[string]string{"e.json": `[{"term": "  ", "definition": "y"}]`}, []string{"e.json", "term #1", "empty \"term\""}},
		{"empty definition", map[string]string{"d.json": `[{"term": "Gross Margin", "definition": ""}]`}, []string{"d.json", "Gross Margin", "definition"}},
		{"empty synonym", map[string]string{"s.json": `[{"term": "x", "definition": "y", "synonyms": ["a", " "]}]`}, []string{"s.json", "synonyms", "#2"}},
		{"duplicate in file", map[string]string{"dup.json": `[{"term": "Revenue", "definition": "a"}, {"term": "Revenue", "definition": "b"}]`}, []string{"dup.json", "Revenue", "duplicates"}},
		{"duplicate across files, case-insensitive", map[string]string{"a.json": good, "b.json": `[{"term": "REVENUE", "definition": "b"}]`}, []string{"b.json", "a.json", "REVENUE"}},
		{"invalid utf-8", map[string]string{"latin1.json": "[{\"term\": \"caf\xe9\", \"definition\": \"y\"}]"}, []string{"latin1.json", "UTF-8"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Load(writeFiles(t, tc.files))
			if err == nil {
				t.Fatal("Load succeeded")
			}
			for _, s := range tc.wantIn {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("error %q does not contain %q", err, s)
				}
			}
		})
	}
}

// The shipped glossary must load and meet the size and language promises.
func TestShippedOntology(t *testing.T) {
	terms, err := Load(filepath.Join("..", "..", "assets", "ontology"))
	if err != nil {
		t.Fatal(err)
	}
	if n := len(terms); n < 12 || n > 20 {
		t.Errorf("shipped ontology has %d terms, want 12-20", n)
	}
	nonASCII := false
	for _, term := range terms {
		if len(term.Tables) == 0 {
			t.Errorf("%q lists no tables", term.Term)
		}
		if term.SQLHint == "" {
			t.Errorf("%q has no sql_hint", term.Term)
		}
		for _, r := range term.Definition {
			if r > 0x7f {
				nonASCII = true
			}
		}
	}
	if !nonASCII {
		t.Error("no term's definition carries non-ASCII (e.g. Arabic) text")
	}
}
