package archivertest

import (
	"bytes"
	"context"
	"io"
	"testing"
	"time"

	"github.com/insightops/insightops/shared/backupfmt"
)

// Rebuild rewrites the gzip archive src file by file, replacing the
// content of the files named in replace, under the job id and creation
// time given: a structurally valid archive (every digest in its manifest
// right) that only a signature can tell from the original — what someone
// who can write into a backup store can plant.
func Rebuild(t testing.TB, src []byte, jobID string, created time.Time, replace map[string][]byte) []byte {
	t.Helper()
	ctx := context.Background()
	var out bytes.Buffer
	w, err := backupfmt.NewWriter(&out, backupfmt.Gzip)
	if err != nil {
		t.Fatal(err)
	}
	m, err := backupfmt.Walk(ctx, bytes.NewReader(src), backupfmt.ReadOptions{}, func(ctx context.Context, f backupfmt.File, content io.Reader) error {
		if r, ok := replace[f.Path]; ok {
			if _, err := io.Copy(io.Discard, content); err != nil {
				return err
			}
			content = bytes.NewReader(r)
		}
		_, err := w.AddStream(ctx, f.Component(), f.Path, f.Kind, content)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	comps := map[string]backupfmt.Component{}
	for name, c := range m.Components {
		c.Files = nil
		comps[name] = c
	}
	if _, err := w.Close(backupfmt.Manifest{CreatedAt: created, JobID: jobID, AppVersion: m.AppVersion, Note: m.Note, Components: comps}); err != nil {
		t.Fatal(err)
	}
	return out.Bytes()
}
