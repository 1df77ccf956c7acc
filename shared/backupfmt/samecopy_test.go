package backupfmt

import (
	"bytes"
	"context"
	"errors"
	"io"
	"testing"
)

// walkAll walks archive with opts and returns every file's content as the
// consumer read it, and the first error the consumer saw.
func walkAll(t *testing.T, archive []byte, opts ReadOptions) (map[string][]byte, error, error) {
	t.Helper()
	got := map[string][]byte{}
	var consumerErr error
	_, err := Walk(context.Background(), bytes.NewReader(archive), opts, func(_ context.Context, f File, content io.Reader) error {
		b, e := io.ReadAll(content)
		got[f.Path] = b
		if e != nil && consumerErr == nil {
			consumerErr = e
		}
		return e
	})
	return got, consumerErr, err
}

// With SameCopy a walk of the very copy Verify read returns its content
// without hashing it again, and still refuses what changed on the way
// from the disk (the decompressor's checksums) and an archive that is not
// the expected one. What it gives up is shown last: content changed under
// valid checksums and sizes (which needs write access to a private,
// unnamed copy) passes it, as it does not pass a walk without SameCopy.
func TestWalkSameCopy(t *testing.T) {
	t.Parallel()
	inputs := []input{
		{path: "system/system.dump", data: compressible(3, 8*testChunk), stream: true},
		{path: "target/vanna_db.db", data: compressible(4, testChunk/2), count: -1},
		{path: "chroma/sql.jsonl", data: jsonl(50), stream: true},
	}
	for _, c := range []Compression{Gzip, Zstd} {
		t.Run(string(c), func(t *testing.T) {
			t.Parallel()
			archive, _ := build(t, c, testChunk, inputs)
			rep, err := Verify(context.Background(), bytes.NewReader(archive), VerifyOptions{})
			if err != nil {
				t.Fatal(err)
			}
			same := ReadOptions{Expect: &rep.Manifest, SameCopy: true}

			got, cerr, err := walkAll(t, archive, same)
			if err != nil || cerr != nil {
				t.Fatalf("walk of the verified copy: %v (consumer: %v)", err, cerr)
			}
			for _, in := range inputs {
				if !bytes.Equal(got[in.path], in.data) {
					t.Errorf("%s: %d bytes read, want the %d added", in.path, len(got[in.path]), len(in.data))
				}
			}

			offsets := memberOffsets(t, archive, c)
			flipped := bytes.Clone(archive)
			flipped[(offsets[7]+offsets[8])/2] ^= 0x40 // in the data of part 4
			if _, cerr, err := walkAll(t, flipped, same); err == nil || cerr == nil || !errors.Is(cerr, ErrInvalidArchive) {
				t.Errorf("a compressed byte flipped: walk %v, consumer saw %v; want the consumer to see ErrInvalidArchive", err, cerr)
			}

			other, _ := build(t, c, testChunk, append(inputs[:2:2], input{path: "chroma/other.jsonl", data: jsonl(3), stream: true}))
			if _, _, err := walkAll(t, other, same); !errors.Is(err, ErrInvalidArchive) {
				t.Errorf("another archive than the expected one: %v, want ErrInvalidArchive", err)
			}

			changed := recompress(t, archive, c, func(raw []byte) []byte {
				raw[offsetOf(t, raw, "target/vanna_db.db")+17] ^= 0x01
				return raw
			})
			if _, _, err := walkAll(t, changed, ReadOptions{Expect: &rep.Manifest}); !errors.Is(err, ErrInvalidArchive) {
				t.Errorf("content changed under valid checksums, without SameCopy: %v, want a sha256 mismatch", err)
			}
			if _, _, err := walkAll(t, changed, same); err != nil {
				t.Errorf("content changed under valid checksums, with SameCopy: %v; SameCopy is documented not to hash again", err)
			}
		})
	}
}
