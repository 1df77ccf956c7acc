package vectors_test

import (
	"bytes"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/insightops/insightops/shared/vectors"
)

// vannaUUID computes Vanna's deterministic_uuid from its formula, without
// the code under test: RFC 4122 version 5 (SHA-1) in the nil namespace of
// the hex SHA-256 of the content.
func vannaUUID(content string) string {
	sum := sha256.Sum256([]byte(content))
	h := sha1.New()
	h.Write(make([]byte, 16)) // the nil namespace
	h.Write([]byte(hex.EncodeToString(sum[:])))
	b := h.Sum(nil)[:16]
	b[6] = b[6]&0x0f | 0x50 // version 5
	b[8] = b[8]&0x3f | 0x80 // RFC 4122 variant
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

func vannaID(collection, content string) string {
	return vannaUUID(content) + map[string]string{"sql": "-sql", "ddl": "-ddl", "documentation": "-doc"}[collection]
}

// pyDumps is Python's json.dumps({"question": q, "sql": s},
// ensure_ascii=False), derived from Go's encoder and the documented
// differences: Python writes U+2028/U+2029 and DEL raw, \b and \f short,
// and never escapes <, > or &.
func pyDumps(q, s string) string {
	enc := func(v string) string {
		var buf bytes.Buffer
		e := json.NewEncoder(&buf)
		e.SetEscapeHTML(false)
		if err := e.Encode(v); err != nil {
			panic(err)
		}
		out := strings.TrimSuffix(buf.String(), "\n")
		return strings.NewReplacer(`\u2028`, "\u2028", `\u2029`, "\u2029", `\u0008`, `\b`, `\u000c`, `\f`).Replace(out)
	}
	return `{"question": ` + enc(q) + `, "sql": ` + enc(s) + `}`
}

func TestVannaIDsFixture(t *testing.T) {
	t.Parallel()
	raw, err := os.ReadFile("testdata/vanna_ids.json")
	if err != nil {
		t.Fatal(err)
	}
	var fx struct {
		Cases []struct {
			Collection, Content, ID, Question, SQL string
		}
	}
	if err := json.Unmarshal(raw, &fx); err != nil {
		t.Fatal(err)
	}
	if len(fx.Cases) == 0 {
		t.Fatal("no cases")
	}
	for _, c := range fx.Cases {
		content := c.Content
		if c.Collection == vectors.CollectionSQL {
			if got := vectors.QuestionSQLDocument(c.Question, c.SQL); got != c.Content {
				t.Errorf("QuestionSQLDocument = %q, fixture %q", got, c.Content)
			}
			if got := pyDumps(c.Question, c.SQL); got != c.Content {
				t.Errorf("test oracle pyDumps = %q, fixture %q", got, c.Content)
			}
		}
		if got := vectors.ID(c.Collection, content); got != c.ID {
			t.Errorf("ID(%s, %.40q…) = %s, fixture %s", c.Collection, content, got, c.ID)
		}
		if got := vannaID(c.Collection, content); got != c.ID {
			t.Errorf("test oracle vannaID = %s, fixture %s", got, c.ID)
		}
	}
}

// TestQuestionSQLDocumentLikePython: documents and ids computed by Python
// 3.11 (json.dumps(…, ensure_ascii=False), uuid.uuid5, hashlib.sha256).
func TestQuestionSQLDocumentLikePython(t *testing.T) {
	t.Parallel()
	cases := []struct{ q, s, doc, id string }{
		{"Quel est le chiffre d'affaires ?", "SELECT 1", "{\"question\": \"Quel est le chiffre d'affaires ?\", \"sql\": \"SELECT 1\"}", "6b2dfbfa-c4f5-511d-83a4-cf0419459374-sql"},
		{"He said \"hi\"\\n", "SELECT '\\\\' AS x", "{\"question\": \"He said \\\"hi\\\"\\\\n\", \"sql\": \"SELECT '\\\\\\\\' AS x\"}", "df67a979-a9be-513a-8f24-3d0d8c3cdb07-sql"},
		{"tab\x09here\x0anew\x0dline\x08\x0c\x01\x1f\x7f", "SELECT '\u00e9', '\u0645\u0627 \u0647\u064a \u0627\u0644\u0625\u064a\u0631\u0627\u062f\u0627\u062a\u061f' \u2028 \u2029 \U0001f600", "{\"question\": \"tab\\there\\nnew\\rline\\b\\f\\u0001\\u001f\x7f\", \"sql\": \"SELECT '\u00e9', '\u0645\u0627 \u0647\u064a \u0627\u0644\u0625\u064a\u0631\u0627\u062f\u0627\u062a\u061f' \u2028 \u2029 \U0001f600\"}", "045d9514-fef1-52cf-9c15-0fda401d1ac2-sql"},
		{"<b>&amp;</b>", "", "{\"question\": \"<b>&amp;</b>\", \"sql\": \"\"}", "0e60f93e-9f3b-50d7-9745-9195a4a7000f-sql"},
	}
	for _, c := range cases {
		doc := vectors.QuestionSQLDocument(c.q, c.s)
		if doc != c.doc {
			t.Errorf("QuestionSQLDocument(%q, %q)\n got %q\nwant %q", c.q, c.s, doc, c.doc)
		}
		if o := pyDumps(c.q, c.s); o != c.doc {
			t.Errorf("oracle disagrees with Python: %q", o)
		}
		if id := vectors.ID(vectors.CollectionSQL, doc); id != c.id {
			t.Errorf("ID = %s, want %s", id, c.id)
		}
		// The document is valid JSON that reads back to the pair.
		var back struct{ Question, SQL string }
		if err := json.Unmarshal([]byte(doc), &back); err != nil || back.Question != c.q || back.SQL != c.s {
			t.Errorf("round trip of %q: %+v %v", doc, back, err)
		}
	}
	// Invalid UTF-8 becomes U+FFFD, as a Python str would hold it.
	if got := vectors.QuestionSQLDocument("a\xffb", "x"); got != "{\"question\": \"a\uFFFDb\", \"sql\": \"x\"}" {
		t.Errorf("invalid UTF-8: %q", got)
	}
}

func TestIDSuffixes(t *testing.T) {
	t.Parallel()
	for coll, suffix := range map[string]string{"sql": "-sql", "ddl": "-ddl", "documentation": "-doc"} {
		id := vectors.ID(coll, "x")
		if !strings.HasSuffix(id, suffix) || id != vannaID(coll, "x") {
			t.Errorf("%s: %s", coll, id)
		}
	}
	defer func() {
		if recover() == nil {
			t.Error("unknown collection did not panic")
		}
	}()
	vectors.ID("nope", "x")
}
