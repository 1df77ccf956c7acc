package vectors

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/google/uuid"
)

// DeterministicUUID is Vanna's deterministic_uuid: the name-based (SHA-1,
// version 5) UUID in the nil namespace of the lower-case hex SHA-256 of
// content's UTF-8 bytes.
func DeterministicUUID(content string) string {
	sum := sha256.Sum256([]byte(content))
	return uuid.NewSHA1(uuid.Nil, []byte(hex.EncodeToString(sum[:]))).String()
}

// ID is the document id Vanna gives content in collection: its
// DeterministicUUID followed by "-sql", "-ddl" or "-doc". An unknown
// collection panics: the three names are constants of the layout.
func ID(collection, content string) string {
	suffix, ok := idSuffix[collection]
	if !ok {
		panic(fmt.Sprintf("vectors: no id suffix for collection %q", collection))
	}
	return DeterministicUUID(content) + suffix
}

var idSuffix = map[string]string{
	CollectionSQL:           "-sql",
	CollectionDDL:           "-ddl",
	CollectionDocumentation: "-doc",
}

// QuestionSQLDocument is the document Vanna stores for a question/SQL pair:
// Python's json.dumps({"question": q, "sql": s}, ensure_ascii=False), byte
// for byte — ", " and ": " separators, non-ASCII kept as is, and Python's
// escapes (\" \\ \n \r \t \b \f, other control characters as \u00xx).
// Invalid UTF-8 is replaced by U+FFFD first, as a Python str cannot hold it.
func QuestionSQLDocument(question, sql string) string {
	var b strings.Builder
	b.Grow(len(question) + len(sql) + 32)
	b.WriteString(`{"question": `)
	pyJSONString(&b, question)
	b.WriteString(`, "sql": `)
	pyJSONString(&b, sql)
	b.WriteByte('}')
	return b.String()
}

// pyJSONString writes s as Python's json encoder does with ensure_ascii=False.
func pyJSONString(b *strings.Builder, s string) {
	if !utf8.ValidString(s) {
		s = strings.ToValidUTF8(s, "\uFFFD")
	}
	const hexDigits = "0123456789abcdef"
	b.WriteByte('"')
	for i := range len(s) {
		c := s[i]
		switch c {
		case '"':
			b.WriteString(`\"`)
		case '\\':
			b.WriteString(`\\`)
		case '\n':
			b.WriteString(`\n`)
		case '\r':
			b.WriteString(`\r`)
		case '\t':
			b.WriteString(`\t`)
		case '\b':
			b.WriteString(`\b`)
		case '\f':
			b.WriteString(`\f`)
		default:
			if c < 0x20 {
				b.WriteString(`\u00`)
				b.WriteByte(hexDigits[c>>4])
				b.WriteByte(hexDigits[c&0xf])
				continue
			}
			b.WriteByte(c) // multi-byte UTF-8 sequences are copied byte by byte
		}
	}
	b.WriteByte('"')
}
