package backupfmt

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"
)

var testCreated = time.Date(2025, 11, 27, 10, 15, 0, 0, time.UTC)

// input is one file to add to a test archive.
type input struct {
	path   string
	data   []byte
	stream bool  // AddStream (else AddFile)
	count  int64 // SetCount when >= 0 and kind is not jsonl
}

func (in input) component() string { return File{Path: in.path}.Component() }

func testManifest() Manifest {
	return Manifest{
		CreatedAt:  testCreated,
		JobID:      testJobID,
		AppVersion: "test",
		Note:       "unit test",
		Components: map[string]Component{
			ComponentSystem: {Source: "sqlite data/system.db", Meta: map[string]any{"tables": map[string]any{"users": 3}}},
			ComponentTarget: {Source: "sqlite data/target/vanna_db.db"},
			ComponentChroma: {Source: "chroma http://127.0.0.1:8001"},
		},
	}
}

// build writes an archive of inputs; components without input are skipped.
func build(t testing.TB, c Compression, chunk int, inputs []input, opts ...Option) ([]byte, Result) {
	t.Helper()
	var buf bytes.Buffer
	w, err := NewWriter(&buf, c, append([]Option{WithChunkSize(chunk), WithModTime(testCreated)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	used := map[string]bool{}
	for _, in := range inputs {
		used[in.component()] = true
		var f File
		if in.stream {
			f, err = w.AddStream(ctx, in.component(), in.path, KindOf(in.path), bytes.NewReader(in.data))
		} else {
			f, err = w.AddFile(ctx, in.component(), in.path, KindOf(in.path), bytes.NewReader(in.data), int64(len(in.data)))
		}
		if err != nil {
			t.Fatalf("add %s: %v", in.path, err)
		}
		if f.Size != int64(len(in.data)) {
			t.Fatalf("add %s: size %d, want %d", in.path, f.Size, len(in.data))
		}
		if in.count >= 0 && KindOf(in.path) != KindJSONL {
			if err := w.SetCount(in.path, in.count); err != nil {
				t.Fatal(err)
			}
		}
	}
	m := testManifest()
	for name, comp := range m.Components {
		if !used[name] {
			comp.Status, comp.Reason = StatusSkipped, "not configured"
			m.Components[name] = comp
		}
	}
	res, err := w.Close(m)
	if err != nil {
		t.Fatalf("close: %v", err)
	}
	if res.Size != int64(buf.Len()) {
		t.Fatalf("result size %d, wrote %d", res.Size, buf.Len())
	}
	return buf.Bytes(), res
}

// compressible returns n bytes of pseudo-random but compressible data.
func compressible(seed uint64, n int) []byte {
	rng := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	words := []string{"SELECT ", "FROM ", "accounting_transactions ", "WHERE ", "amount ", "> ", "GROUP BY ", "customer_id ", "\n", "2026-11-27 ", "INSERT INTO ", "VALUES ("}
	out := make([]byte, 0, n+32)
	for len(out) < n {
		if rng.IntN(4) == 0 {
			out = fmt.Appendf(out, "%d,", rng.Uint32())
		} else {
			out = append(out, words[rng.IntN(len(words))]...)
		}
	}
	return out[:n]
}

// jsonl returns n Chroma-like records.
func jsonl(n int) []byte {
	var b bytes.Buffer
	for i := range n {
		fmt.Fprintf(&b, `{"id":"rec-%05d-sql","document":"{\"question\": \"q%d\", \"sql\": \"SELECT %d\"}","metadata":{"kind":"sql"},"embedding":[0.%d,0.5,-0.25]}`+"\n", i, i, i, i)
	}
	return b.Bytes()
}
