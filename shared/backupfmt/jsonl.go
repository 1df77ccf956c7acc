package backupfmt

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
)

// MaxJSONLLine bounds one JSONL record (a Chroma record with a large
// embedding and document is well below).
const MaxJSONLLine = 64 << 20

// CheckJSONL is the Checker of kind jsonl: every line is a JSON object with
// a non-empty string "id" (Chroma export: id, document, metadata,
// embedding); blank lines are errors; a last line without a newline counts.
// It returns the number of records.
func CheckJSONL(ctx context.Context, _ File, content io.Reader) (int64, error) {
	br := bufio.NewReaderSize(content, 1<<20)
	var (
		n    int64
		line []byte
	)
	for {
		if n%1024 == 0 {
			if err := ctx.Err(); err != nil {
				return n, err
			}
		}
		var err error
		line, err = readLine(br, line[:0])
		if errors.Is(err, io.EOF) && len(line) == 0 {
			return n, nil
		}
		if err != nil && !errors.Is(err, io.EOF) {
			return n, fmt.Errorf("record %d: %w", n+1, err)
		}
		if err := checkRecord(line); err != nil {
			return n, fmt.Errorf("record %d: %w", n+1, err)
		}
		n++
		if errors.Is(err, io.EOF) {
			return n, nil
		}
	}
}

var errLineTooLong = fmt.Errorf("line longer than %d bytes", MaxJSONLLine)

// readLine appends the next line (without its newline) to buf.
func readLine(br *bufio.Reader, buf []byte) ([]byte, error) {
	for {
		chunk, err := br.ReadSlice('\n')
		buf = append(buf, chunk...)
		if len(buf) > MaxJSONLLine+1 {
			return buf, errLineTooLong
		}
		switch {
		case err == nil:
			return buf[:len(buf)-1], nil
		case errors.Is(err, bufio.ErrBufferFull):
			continue
		default:
			return buf, err
		}
	}
}

// jsonSpace is the whitespace JSON allows around a value; bytes.TrimSpace
// would also drop Unicode spaces (U+00A0) that a JSON decoder refuses.
const jsonSpace = " \t\r\n"

// checkRecord accepts only what the restore reads back
// (vectors.ReadJSONL): it decodes the line into the same field types (so a
// repeated or differently cased key is judged the same way), and it also
// requires a non-empty id, one object per line and embedding numbers that
// fit a float32.
func checkRecord(line []byte) error {
	trimmed := bytes.Trim(line, jsonSpace)
	if len(trimmed) == 0 {
		return errors.New("blank line")
	}
	if trimmed[0] != '{' {
		return errors.New("not a JSON object")
	}
	var rec struct {
		ID        string         `json:"id"`
		Document  string         `json:"document"`
		Metadata  map[string]any `json:"metadata"`
		Embedding []json.Number  `json:"embedding"`
	}
	if err := json.Unmarshal(trimmed, &rec); err != nil {
		return fmt.Errorf("not valid JSON: %w", err)
	}
	if rec.ID == "" {
		return errors.New(`no non-empty string "id"`)
	}
	for i, x := range rec.Embedding {
		f, err := x.Float64()
		if err != nil || math.Abs(f) > math.MaxFloat32 {
			return fmt.Errorf("record %q: embedding[%d] = %s does not fit a float32", rec.ID, i, x)
		}
	}
	return nil
}
