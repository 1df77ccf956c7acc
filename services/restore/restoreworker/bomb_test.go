package restoreworker_test

import (
	"io"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/insightops/insightops/shared/archiver/archivertest"
	"github.com/insightops/insightops/shared/backupfmt"
	"github.com/insightops/insightops/shared/backupfmt/backupfmttest"
	"github.com/insightops/insightops/shared/jobs"
	"github.com/insightops/insightops/shared/jobspec"
	"github.com/insightops/insightops/shared/testkit"
)

// TestRestoreRefusesADecompressionBomb plants an archive whose target
// entry declares 1 TiB (a zstd stream of a few kilobytes) and restores it
// with the default BACKUP_MAX_DECOMPRESSED: the job fails at once with
// decompression_limit before a byte of the entry is read, every store is
// as it was, no safety backup was taken, the scratch directory is empty
// and no lease is left held.
func TestRestoreRefusesADecompressionBomb(t *testing.T) {
	t.Parallel()
	e := newEnv(t, testkit.SQLite)
	e.seed()
	before := e.state()
	listedBefore := e.archives()

	name := backupfmt.ArchiveName(time.Now().UTC(), jobs.NewID(), backupfmt.Zstd)
	bomb := backupfmttest.Bomb{Compression: backupfmt.Zstd, Path: "target/vanna_db.db", Size: 1 << 40, DeclareOnly: true}
	// Signed with this deployment's key (an insider's bomb): an unsigned
	// one is refused before a byte is read (trust_test.go).
	n := archivertest.PlantSigned(t, e.ctx, e.cfg, e.store, name, func(w io.Writer) error {
		_, err := bomb.Write(w)
		return err
	}).Size
	t.Logf("planted %s: %d bytes declaring %d", name, n, bomb.Size)

	rec := e.final(e.submit(jobspec.RestoreArgs{Archive: name}))
	if rec.State != jobs.Failed || rec.Error == nil || rec.Error.Code != jobs.CodeDecompressionLimit || rec.Attempt != 1 {
		t.Fatalf("restore of a bomb: %s attempt %d %+v, want failed at once with %s", rec.State, rec.Attempt, rec.Error, jobs.CodeDecompressionLimit)
	}
	if !strings.Contains(rec.Error.Message, "nothing was changed") {
		t.Errorf("error message %q", rec.Error.Message)
	}
	sameStores(t, "after the refused restore", e.state(), before)
	if got := e.archives(); !slices.Equal(got, append(slices.Clone(listedBefore), name)) && !slices.Equal(got, append([]string{name}, listedBefore...)) {
		t.Errorf("archives %v after the refused restore, want %v and the bomb (no safety backup)", got, listedBefore)
	}
	left, err := os.ReadDir(e.worker.ScratchDir)
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	if len(left) != 0 {
		t.Errorf("the scratch directory holds %d entries", len(left))
	}
	e.noLocksHeld()
}
