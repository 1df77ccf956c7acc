package backupworker

import (
	"context"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/insightops/insightops/shared/archiver/archivertest"
	"github.com/insightops/insightops/shared/backupfmt"
	"github.com/insightops/insightops/shared/backupfmt/backupfmttest"
	"github.com/insightops/insightops/shared/backupstore"
	"github.com/insightops/insightops/shared/jobs"
	"github.com/insightops/insightops/shared/jobspec"
)

// dirBytes is the total size of the regular files under dir.
func dirBytes(t *testing.T, dir string) int64 {
	t.Helper()
	var n int64
	err := filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.Type().IsRegular() {
			fi, err := d.Info()
			if err != nil {
				return err
			}
			n += fi.Size()
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// TestVerifyJobStopsADecompressionBomb plants, in BACKUP_DIR, a zstd
// archive of a few kilobytes that decompresses to 1 GiB of zeros as the
// parts of a target SQLite copy (written to disk by the verify's SQLite
// check as it streams), and runs a backup.verify job on it through the
// worker runtime on embedded NATS with BACKUP_MAX_DECOMPRESSED=40MiB. The
// job fails at once with decompression_limit, and the data volume is as it
// was: the scratch directory is empty and, but for the recorded outcome,
// no byte was added under DATA_DIR.
func TestVerifyJobStopsADecompressionBomb(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOpts{Vars: map[string]string{"BACKUP_MAX_DECOMPRESSED": "40MiB"}})
	if e.cfg.BackupMaxDecompressed != 40<<20 {
		t.Fatalf("BACKUP_MAX_DECOMPRESSED = %d", e.cfg.BackupMaxDecompressed)
	}
	name := backupfmt.ArchiveName(time.Now().UTC(), jobs.NewID(), backupfmt.Zstd)
	bomb := backupfmttest.Bomb{Compression: backupfmt.Zstd, Path: "target/vanna_db.db", Size: 1 << 30, PartSize: 16 << 20}
	// Signed with this deployment's key (an insider's bomb): an unsigned
	// one is refused before a byte is read.
	compressed := archivertest.PlantSigned(t, context.Background(), e.cfg, e.st, name, func(w io.Writer) error {
		_, err := bomb.Write(w)
		return err
	}).Size
	t.Logf("planted %s: %d bytes decompressing to %d", name, compressed, bomb.Size)
	before := dirBytes(t, e.cfg.DataDir)

	startReplica(t, e, "backup-bomb", Options{}, nil)
	rec := e.waitFinal(e.submit(jobspec.BackupVerifyArgs{Name: name}), 60*time.Second)
	if rec.State != jobs.Failed || rec.Error == nil || rec.Error.Code != jobs.CodeDecompressionLimit || rec.Attempt != 1 {
		t.Fatalf("verify of a bomb: %s attempt %d %+v, want failed at once with %s", rec.State, rec.Attempt, rec.Error, jobs.CodeDecompressionLimit)
	}
	if !strings.Contains(rec.Error.Message, "BACKUP_MAX_DECOMPRESSED") {
		t.Errorf("error message %q does not name the setting", rec.Error.Message)
	}
	scratch := filepath.Join(e.cfg.DataDir, "scratch")
	left, err := os.ReadDir(scratch)
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	if len(left) != 0 {
		t.Errorf("the scratch directory holds %d entries after the job", len(left))
	}
	// The outcome is recorded next to the archive (a small sidecar) and
	// the bus's files grow a little; the 16 MiB parts the check copied
	// before the cap must be gone.
	if grown := dirBytes(t, e.cfg.DataDir) - before; grown > 4<<20 {
		t.Errorf("DATA_DIR grew by %d bytes", grown)
	}
	meta, err := e.st.Meta(t.Context(), name)
	if err != nil {
		t.Fatal(err)
	}
	if meta.Verification == nil || meta.Verification.Outcome != backupstore.OutcomeFailed {
		t.Errorf("recorded verification: %+v", meta.Verification)
	}
}
