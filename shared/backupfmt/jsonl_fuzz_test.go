package backupfmt

import (
	"bytes"
	"context"
	"math"
	"reflect"
	"testing"

	"github.com/insightops/insightops/shared/vectors"
)

// FuzzCheckJSONL feeds JSON-lines content to CheckJSONL, the reader verify
// runs on chroma/<collection>.jsonl. Invariants: it never panics; what it
// accepts, written into an archive by the Writer (which counts the records
// as it streams), verifies with the same count; and when the restore's
// reader (vectors.ReadJSONL) accepts it too, its records written back by
// vectors.WriteJSONL are accepted again with the same count and read back
// equal.
func FuzzCheckJSONL(f *testing.F) {
	for _, s := range [][]byte{
		jsonl(3),
		[]byte(`{"id":"a"}`),
		[]byte("{\"id\":\"a\"}\r\n{\"id\":\"b\"}\r\n"),
		[]byte(`{"id":"5a0d8a52-1d4e-5c2f-9d1b-5b2f2b8e8f3e-sql","document":"{\"question\": \"How many customers?\", \"sql\": \"SELECT COUNT(*) FROM customers\"}","metadata":{"source":"insightops","n":3,"ok":true},"embedding":[0.1,-0.25,1e-7,0]}` + "\n"),
		[]byte("{\"id\":\"a\"}\n\n{\"id\":\"b\"}\n"),
		[]byte(`{"id":""}`),
		[]byte(`{"id":1}`),
		[]byte(`{"id":"a"} {"id":"b"}`),
		[]byte(`["id"]`),
		[]byte(`{"id":"a","embedding":[1e39]}`),
		[]byte(`{"id":"a","document":5}`),
		[]byte(`{"id":"a","id":"b"}`),
		[]byte("\xef\xbb\xbf{\"id\":\"a\"}"),
		{},
	} {
		f.Add(s)
	}
	ctx := context.Background()
	f.Fuzz(func(t *testing.T, data []byte) {
		n, err := CheckJSONL(ctx, File{}, bytes.NewReader(data))
		if err != nil {
			return
		}
		if lines := int64(bytes.Count(data, []byte{'\n'})) + 1; n > lines {
			t.Fatalf("counted %d records in %d lines", n, lines)
		}

		// Through the archive writer: verify recounts the same records.
		archive, _ := build(t, Gzip, testChunk, []input{{path: "chroma/sql.jsonl", data: data, stream: true}})
		rep, err := Verify(ctx, bytes.NewReader(archive), VerifyOptions{})
		if err != nil || !rep.OK() {
			t.Fatalf("accepted content does not verify in an archive: %v %v", err, rep.Problems)
		}
		for _, fr := range rep.Files {
			if fr.Path == "chroma/sql.jsonl" && fr.Count != n {
				t.Fatalf("verify counted %d records, CheckJSONL %d", fr.Count, n)
			}
		}

		// Through the restore's reader and the backup's writer.
		var recs []vectors.Record
		for r, err := range vectors.ReadJSONL(bytes.NewReader(data)) {
			if err != nil {
				// What verify accepts, the restore must read: an archive
				// that verifies cannot fail half-way through a restore.
				t.Fatalf("CheckJSONL accepted what the restore refuses: %v\n%q", err, data)
			}
			recs = append(recs, r)
		}
		if int64(len(recs)) != n {
			t.Fatalf("ReadJSONL read %d records, CheckJSONL counted %d", len(recs), n)
		}
		var out bytes.Buffer
		for _, r := range recs {
			if !finite(r.Embedding) {
				t.Fatalf("record %q read with a non-finite embedding", r.ID)
			}
			if err := vectors.WriteJSONL(&out, r); err != nil {
				t.Fatalf("record %q read but not written back: %v", r.ID, err)
			}
		}
		n2, err := CheckJSONL(ctx, File{}, bytes.NewReader(out.Bytes()))
		if err != nil || n2 != n {
			t.Fatalf("written back: %d records (%v), want %d:\n%s", n2, err, n, out.Bytes())
		}
		var again []vectors.Record
		for r, err := range vectors.ReadJSONL(bytes.NewReader(out.Bytes())) {
			if err != nil {
				t.Fatalf("written back does not read: %v", err)
			}
			again = append(again, r)
		}
		if !reflect.DeepEqual(recs, again) {
			t.Fatalf("round trip changed the records:\n%#v\n%#v", recs, again)
		}
	})
}

func finite(v []float32) bool {
	for _, x := range v {
		if math.IsInf(float64(x), 0) || math.IsNaN(float64(x)) {
			return false
		}
	}
	return true
}
