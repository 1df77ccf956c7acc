package chromaworker

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/insightops/insightops/shared/jobs"
	"github.com/insightops/insightops/shared/store"
	"github.com/insightops/insightops/shared/vectors"
)

// Origins (vectors.MetaOrigin values) of the training entries.
const (
	OriginSQLiteMaster = "sqlite_master"
	OriginCatalog      = "pg_catalog"
	OriginOntology     = "ontology"
	OriginAssets       = "assets"
	OriginFeedback     = "feedback"
)

// TrainingAssetsDir is the directory of question/SQL pair files under
// ASSETS_DIR.
const TrainingAssetsDir = "training"

// maxTrainingAssetBytes bounds one training asset file.
const maxTrainingAssetBytes = 16 << 20

// Entry metadata keys of this worker (besides the vectors.Meta* ones).
const (
	metaTerm       = "term"
	metaTables     = "tables"
	metaObjectType = "object_type"
)

// QuestionSQL is a known-good question/SQL pair.
type QuestionSQL struct {
	Question string `json:"question"`
	SQL      string `json:"sql"`
}

// DDLDocs returns one ddl entry per table, view and index: its CREATE
// statement as the document.
func DDLDocs(s Schema) []vectors.Doc {
	origin := OriginSQLiteMaster
	if s.Dialect == "postgres" {
		origin = OriginCatalog
	}
	out := make([]vectors.Doc, 0, len(s.Objects))
	for _, o := range s.Objects {
		out = append(out, vectors.Doc{Content: o.DDL, Metadata: map[string]any{
			vectors.MetaSource: vectors.SourceInsightOps, vectors.MetaKind: vectors.KindTableDDL,
			vectors.MetaTable: o.Table, metaObjectType: o.Type, vectors.MetaOrigin: origin,
		}})
	}
	return out
}

// TableDoc is the documentation of one table or view in the spirit of
// Vanna's training plan: "The following columns are in the <table> table
// in the <database> database:" and a Markdown table of its columns with
// their types and constraints.
func TableDoc(database string, o SchemaObject) string {
	var b strings.Builder
	fmt.Fprintf(&b, "The following columns are in the %s %s in the %s database:\n\n", o.Name, o.Type, database)
	b.WriteString("| column | type | constraints |\n|---|---|---|\n")
	for _, c := range o.Columns {
		var cons []string
		if c.PrimaryKey > 0 {
			cons = append(cons, "primary key")
		}
		if c.NotNull && c.PrimaryKey == 0 {
			cons = append(cons, "not null")
		}
		if c.Default != "" {
			cons = append(cons, "default "+c.Default)
		}
		if c.References != "" {
			cons = append(cons, "references "+c.References)
		}
		typ := c.Type
		if typ == "" {
			typ = "(any)"
		}
		fmt.Fprintf(&b, "| %s | %s | %s |\n", mdCell(c.Name), mdCell(typ), mdCell(strings.Join(cons, ", ")))
	}
	return strings.TrimSuffix(b.String(), "\n")
}

// mdCell escapes a Markdown table cell.
func mdCell(s string) string { return mdCellReplacer.Replace(s) }

var mdCellReplacer = strings.NewReplacer("|", `\|`, "\n", " ", "\r", " ")

// TableDocs returns the documentation entry of every table and view.
func TableDocs(s Schema) []vectors.Doc {
	var out []vectors.Doc
	for _, o := range s.Objects {
		if o.Type == ObjectIndex {
			continue
		}
		out = append(out, vectors.Doc{Content: TableDoc(s.Database, o), Metadata: map[string]any{
			vectors.MetaSource: vectors.SourceInsightOps, vectors.MetaKind: vectors.KindTableDoc,
			vectors.MetaTable: o.Name, metaObjectType: o.Type, vectors.MetaOrigin: OriginSQLiteMaster,
		}})
		if s.Dialect == "postgres" {
			out[len(out)-1].Metadata[vectors.MetaOrigin] = OriginCatalog
		}
	}
	return out
}

// TermDoc is the documentation of one business glossary term: its name and
// synonyms, definition, tables and SQL hint.
func TermDoc(t store.OntologyTerm) string {
	var b strings.Builder
	b.WriteString(t.Term)
	if len(t.Synonyms) > 0 {
		b.WriteString(" (also: " + strings.Join(t.Synonyms, ", ") + ")")
	}
	b.WriteString(": " + strings.TrimSpace(t.Definition))
	if len(t.Tables) > 0 {
		b.WriteString("\nTables: " + strings.Join(t.Tables, ", "))
	}
	if h := strings.TrimSpace(t.SQLHint); h != "" {
		b.WriteString("\nSQL hint: " + h)
	}
	return b.String()
}

// TermDocs returns the documentation entry of every glossary term.
func TermDocs(terms []store.OntologyTerm) []vectors.Doc {
	out := make([]vectors.Doc, 0, len(terms))
	for _, t := range terms {
		out = append(out, vectors.Doc{Content: TermDoc(t), Metadata: map[string]any{
			vectors.MetaSource: vectors.SourceInsightOps, vectors.MetaKind: vectors.KindOntologyTerm,
			metaTerm: t.Term, metaTables: strings.Join(t.Tables, ","), vectors.MetaOrigin: OriginOntology,
		}})
	}
	return out
}

// PairDocs returns the sql entries of question/SQL pairs, each stored as
// Vanna stores it (vectors.QuestionSQLDocument).
func PairDocs(pairs []QuestionSQL, origin string) []vectors.Doc {
	out := make([]vectors.Doc, 0, len(pairs))
	for _, p := range pairs {
		out = append(out, vectors.Doc{Content: vectors.QuestionSQLDocument(p.Question, p.SQL), Metadata: map[string]any{
			vectors.MetaSource: vectors.SourceInsightOps, vectors.MetaKind: vectors.KindQuestionSQL, vectors.MetaOrigin: origin,
		}})
	}
	return out
}

// LoadTrainingPairs reads every *.json file directly in dir (sorted by
// name), each a JSON array of {"question", "sql"}. A missing directory
// gives no pairs and ok=false; a malformed file or an entry with an empty
// question or SQL is a permanent error naming the file and entry.
func LoadTrainingPairs(dir string) (pairs []QuestionSQL, ok bool, err error) {
	entries, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("read training assets %s: %w", dir, err)
	}
	var names []string
	for _, e := range entries {
		if !e.IsDir() && strings.EqualFold(filepath.Ext(e.Name()), ".json") {
			names = append(names, e.Name())
		}
	}
	sort.Strings(names)
	for _, name := range names {
		path := filepath.Join(dir, name)
		st, err := os.Stat(path)
		if err != nil {
			return nil, true, fmt.Errorf("read training asset: %w", err)
		}
		if st.Size() > maxTrainingAssetBytes {
			return nil, true, jobs.Permanent(jobs.CodeInvalidTrainingAsset, fmt.Errorf("training asset %s is larger than %d bytes", path, maxTrainingAssetBytes))
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return nil, true, fmt.Errorf("read training asset: %w", err)
		}
		var filePairs []QuestionSQL
		dec := json.NewDecoder(bytes.NewReader(bytes.TrimPrefix(data, []byte("\xef\xbb\xbf"))))
		if err := dec.Decode(&filePairs); err != nil {
			return nil, true, jobs.Permanent(jobs.CodeInvalidTrainingAsset, fmt.Errorf("training asset %s: want a JSON array of {\"question\", \"sql\"}: %w", path, err))
		}
		for i, p := range filePairs {
			p.Question, p.SQL = strings.TrimSpace(p.Question), strings.TrimSpace(p.SQL)
			if p.Question == "" || p.SQL == "" {
				return nil, true, jobs.Permanent(jobs.CodeInvalidTrainingAsset, fmt.Errorf("training asset %s: entry #%d has an empty question or sql", path, i+1))
			}
			pairs = append(pairs, p)
		}
	}
	return pairs, true, nil
}

// FeedbackPairs returns the question/SQL pairs of System DB queries that
// users marked good: a non-empty SQL and a positive sum of feedback ratings
// (+1 good, −1 bad), so a pair rated up once and down twice is left out.
// Oldest first.
func FeedbackPairs(ctx context.Context, db *store.DB) ([]QuestionSQL, error) {
	rows, err := db.SQL.QueryContext(ctx, `
		SELECT q.question, q.sql FROM queries q
		JOIN feedback f ON f.query_id = q.id
		WHERE trim(q.sql) <> '' AND trim(q.question) <> ''
		GROUP BY q.id, q.question, q.sql
		HAVING sum(f.rating) > 0
		ORDER BY q.id`)
	if err != nil {
		return nil, fmt.Errorf("read good queries from the system db: %w", err)
	}
	defer rows.Close()
	var out []QuestionSQL
	for rows.Next() {
		var p QuestionSQL
		if err := rows.Scan(&p.Question, &p.SQL); err != nil {
			return nil, fmt.Errorf("read good queries from the system db: %w", err)
		}
		p.Question, p.SQL = strings.TrimSpace(p.Question), strings.TrimSpace(p.SQL)
		out = append(out, p)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read good queries from the system db: %w", err)
	}
	return out, nil
}
