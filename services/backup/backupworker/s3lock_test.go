package backupworker

import (
	"context"
	"strings"
	"testing"

	"github.com/insightops/insightops/shared/jobspec"
)

// TestPruneKeepsArchivesUnderObjectLock: on an S3 bucket with object lock
// (and no versioning, so a delete cannot hide a locked object), retention
// that would delete a locked archive keeps it, says why, and succeeds.
func TestPruneKeepsArchivesUnderObjectLock(t *testing.T) {
	t.Parallel()
	vars := s3Vars(t, true)
	vars["BACKUP_S3_LOCK_DAYS"] = "1"
	vars["BACKUP_RETENTION_COUNT"] = "1"
	e := newEnv(t, envOpts{Vars: vars, NoTarget: true})
	older := e.create(jobspec.BackupCreateArgs{}).Archive
	newest := e.create(jobspec.BackupCreateArgs{}).Archive
	res, err := e.w.prune(context.Background(), false, e.deps.Log)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Deleted) != 0 || len(res.Kept) != 2 || res.Kept[0].Name != newest || res.Kept[1].Name != older ||
		!strings.HasPrefix(res.Kept[1].Reason, jobspec.KeptLocked+" (no rule keeps it") {
		t.Fatalf("prune of locked archives: kept %+v, deleted %+v", res.Kept, res.Deleted)
	}
	if len(e.listed()) != 2 {
		t.Fatal("a locked archive is gone")
	}
}
