package backupworker

import (
	"context"
	"os"
	"slices"
	"testing"
	"time"

	"github.com/insightops/insightops/shared/archiver"
	"github.com/insightops/insightops/shared/jobs"
	"github.com/insightops/insightops/shared/jobspec"
)

// TestPruneKeepsNewestByCreatedAtAndTheNewestVerified: five archives whose
// creation times (Meta, i.e. the manifests') run opposite to their names;
// retention 2 keeps the two newest by creation time plus the newest
// verified archive, although it is older, and deletes the rest; an
// archive without Meta is ordered by its manifest, read back.
func TestPruneKeepsNewestByCreatedAtAndTheNewestVerified(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOpts{Vars: map[string]string{"BACKUP_RETENTION_COUNT": "2"}, NoTarget: true})
	ctx := context.Background()
	var names []string
	for range 5 {
		names = append(names, e.create(jobspec.BackupCreateArgs{}).Archive)
	}
	slices.Sort(names) // name order
	// Creation time opposite to the name order: names[0] is the newest.
	base := time.Now().UTC().Add(-time.Hour)
	created := map[string]time.Time{}
	for i, n := range names {
		meta, err := e.st.Meta(ctx, n)
		if err != nil {
			t.Fatal(err)
		}
		meta.CreatedAt = base.Add(time.Duration(len(names)-i) * time.Minute)
		created[n] = meta.CreatedAt
		if err := e.st.SetMeta(ctx, n, meta); err != nil {
			t.Fatal(err)
		}
	}
	// The oldest by creation time (names[4]) is the only verified one.
	if _, err := e.w.archiver.Verify(ctx, names[4], archiver.Run{JobID: jobs.NewID(), Log: e.deps.Log}); err != nil {
		t.Fatal(err)
	}
	if m, _ := e.st.Meta(ctx, names[4]); !m.Verified() || !m.CreatedAt.Equal(created[names[4]]) {
		t.Fatalf("verify changed the summary: %+v", m)
	}

	dry, err := e.w.prune(ctx, true, e.deps.Log)
	if err != nil {
		t.Fatal(err)
	}
	keptNames := func(as []jobspec.PrunedArchive) []string {
		var out []string
		for _, a := range as {
			out = append(out, a.Name)
		}
		return out
	}
	wantKept := []string{names[0], names[1], names[4]}
	wantGone := []string{names[2], names[3]}
	if !slices.Equal(keptNames(dry.Kept), wantKept) || !slices.Equal(keptNames(dry.WouldDelete), wantGone) || len(dry.Deleted) != 0 {
		t.Fatalf("dry run kept %v would delete %v, want %v and %v", keptNames(dry.Kept), keptNames(dry.WouldDelete), wantKept, wantGone)
	}
	if dry.Kept[2].Reason != jobspec.KeptNewestVerified || !dry.Kept[2].Verified {
		t.Errorf("the verified archive is kept for %q", dry.Kept[2].Reason)
	}
	if len(e.listed()) != 5 {
		t.Fatal("the dry run deleted something")
	}

	res, err := e.w.prune(ctx, false, e.deps.Log)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(keptNames(res.Deleted), wantGone) {
		t.Fatalf("deleted %v, want %v", keptNames(res.Deleted), wantGone)
	}
	var left []string
	for _, in := range e.listed() {
		left = append(left, in.Name)
	}
	slices.Sort(left)
	if !slices.Equal(left, []string{names[0], names[1], names[4]}) {
		t.Fatalf("left %v", left)
	}

	// Without Meta (a hand-copied archive) the manifest is read: the new
	// archive is the newest and pushes names[1] out.
	newest := e.create(jobspec.BackupCreateArgs{}).Archive
	if err := os.Remove(e.archivePath(newest) + ".meta.json"); err != nil {
		t.Fatal(err)
	}
	if m, _ := e.st.Meta(ctx, newest); !m.CreatedAt.IsZero() {
		t.Fatal("meta still there")
	}
	res, err = e.w.prune(ctx, false, e.deps.Log)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(keptNames(res.Kept), []string{newest, names[0], names[4]}) || !slices.Equal(keptNames(res.Deleted), []string{names[1]}) {
		t.Fatalf("kept %v deleted %v", keptNames(res.Kept), keptNames(res.Deleted))
	}
	if m, _ := e.st.Meta(ctx, newest); m.CreatedAt.IsZero() {
		t.Error("prune did not record the summary it read")
	}
}

// TestPruneWaitsForARestore: while a restore holds a lease nothing is
// deleted (the archive being restored may be among the oldest).
func TestPruneWaitsForARestore(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOpts{Vars: map[string]string{"BACKUP_RETENTION_COUNT": "1"}, NoTarget: true})
	ctx := context.Background()
	e.create(jobspec.BackupCreateArgs{})
	e.create(jobspec.BackupCreateArgs{})
	kv := e.bus.Locks
	restoreID := jobs.NewID()
	if _, err := kv.Create(ctx, "system", []byte(`{"owner":"`+restoreID+`","operation":"restore.run","since":"2026-01-01T00:00:00Z"}`)); err != nil {
		t.Fatal(err)
	}
	_, err := e.w.prune(ctx, false, e.deps.Log)
	if jobs.IsPermanent(err) || err == nil || len(e.listed()) != 2 {
		t.Fatalf("prune during a restore: %v, %d listed", err, len(e.listed()))
	}
	if dry, err := e.w.prune(ctx, true, e.deps.Log); err != nil || len(dry.WouldDelete) != 1 {
		t.Fatalf("dry run during a restore: %v %+v", err, dry)
	}
	_ = kv.Delete(ctx, "system")
	res, err := e.w.prune(ctx, false, e.deps.Log)
	if err != nil || len(res.Deleted) != 1 {
		t.Fatalf("prune after the restore: %v %+v", err, res)
	}
}
