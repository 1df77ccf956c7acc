package backupworker

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/insightops/insightops/shared/backupstore"
	"github.com/insightops/insightops/shared/bus"
	"github.com/insightops/insightops/shared/jobs"
	"github.com/insightops/insightops/shared/jobspec"
)

// TestBackupIntoFullNATSStore: with BACKUP_STORE=nats and the bucket
// BACKUPS limited (MaxBytes) so that one archive fits and the next does
// not, the second backup.create job fails at its first attempt with code
// backup_store_full naming the store, nothing of it is listed or left in
// the bucket's stream, and the first archive reads back unchanged. The
// limit is set on the existing bucket as an operator would: neither the
// worker's provisioning (bus.ensureObjectStore) nor backupstore.NewNATS
// change an existing bucket.
func TestBackupIntoFullNATSStore(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOpts{Vars: map[string]string{"BACKUP_STORE": "nats"}})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	first := e.create(jobspec.BackupCreateArgs{})

	s, err := e.bus.JS.Stream(ctx, "OBJ_"+bus.BucketBackups)
	if err != nil {
		t.Fatal(err)
	}
	si, err := s.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	limit := int64(si.State.Bytes) + 16<<10 // far less than another archive
	if _, err := e.bus.JS.UpdateObjectStore(ctx, jetstream.ObjectStoreConfig{
		Bucket: bus.BucketBackups, Description: "insightops backup archives",
		Storage: jetstream.FileStorage, MaxBytes: limit,
	}); err != nil {
		t.Fatal(err)
	}
	t.Logf("first archive %s: %d bytes; bucket limited to %d bytes", first.Archive, first.Bytes, limit)

	startReplica(t, e, "backup-a", Options{}, nil)
	id := e.submit(jobspec.BackupCreateArgs{})
	rec := e.waitFinal(id, 30*time.Second)
	switch {
	case rec.State != jobs.Failed:
		t.Fatalf("backup into a full store: state %s, attempt %d, error %+v; want failed", rec.State, rec.Attempt, rec.Error)
	case rec.Error == nil || rec.Error.Code != jobs.CodeBackupStoreFull:
		t.Fatalf("backup into a full store failed with %+v, want code backup_store_full", rec.Error)
	case rec.Attempt != 1:
		t.Fatalf("backup into a full store ran %d attempts, want 1 (permanent)", rec.Attempt)
	case !strings.Contains(rec.Error.Message, "is full") || !strings.Contains(rec.Error.Message, "NATS object store "+bus.BucketBackups):
		t.Fatalf("error message %q does not say that the NATS store is full", rec.Error.Message)
	}
	t.Logf("second backup: %s", rec.Error.Message)

	listed := e.listed()
	if len(listed) != 1 || listed[0].Name != first.Archive {
		t.Fatalf("listed %+v, want only %s", listed, first.Archive)
	}
	if got := archiveSHA256(ctx, t, e.st, first.Archive); got != first.SHA256 {
		t.Fatalf("first archive reads back with sha256 %s, written as %s", got, first.SHA256)
	}
	// Only the first archive's chunks (nats.go's 128 KiB each) remain.
	chunks, err := s.Info(ctx, jetstream.WithSubjectFilter("$O."+bus.BucketBackups+".C.>"))
	if err != nil {
		t.Fatal(err)
	}
	want := uint64((first.Bytes + 128<<10 - 1) / (128 << 10))
	for subj, n := range chunks.State.Subjects {
		if len(chunks.State.Subjects) != 1 || n != want {
			t.Fatalf("chunk subjects after the failed backup: %v, want only the first archive's %d chunks", chunks.State.Subjects, want)
		}
		t.Logf("left in the bucket: %s with %d chunks", subj, n)
	}
	if len(chunks.State.Subjects) == 0 {
		t.Fatal("the first archive's chunks are gone")
	}
}

// archiveSHA256 reads an archive through the store and returns its SHA-256.
func archiveSHA256(ctx context.Context, t *testing.T, st backupstore.Store, name string) string {
	t.Helper()
	rc, _, err := st.Open(ctx, name)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	h := sha256.New()
	if _, err := io.Copy(h, rc); err != nil {
		t.Fatalf("read %s: %v", name, err)
	}
	return hex.EncodeToString(h.Sum(nil))
}
