package backupworker

import (
	"context"
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/insightops/insightops/shared/backupstore"
	"github.com/insightops/insightops/shared/jobs"
	"github.com/insightops/insightops/shared/jobspec"
)

// TestPruneGFSPinAndDryRunPreview: four archives on fixed days under
// keep-last 1 and keep-daily 2; a prune job that pins the oldest shows in
// its dry run what would go and why, and the real prune deletes exactly
// that; unpinning lets the next prune take it; pinning an unknown archive
// fails the job with not_found and changes nothing.
func TestPruneGFSPinAndDryRunPreview(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOpts{Vars: map[string]string{"BACKUP_RETENTION_COUNT": "1", "BACKUP_RETENTION_DAILY": "2"}, NoTarget: true})
	ctx := context.Background()
	startReplica(t, e, "backup-pin", Options{}, nil)
	days := []time.Time{ // oldest first
		time.Date(2025, 10, 15, 2, 0, 0, 0, time.UTC),
		time.Date(2025, 11, 26, 2, 0, 0, 0, time.UTC),
		time.Date(2025, 11, 26, 14, 0, 0, 0, time.UTC),
		time.Date(2025, 11, 27, 2, 0, 0, 0, time.UTC),
	}
	names := make([]string, len(days))
	for i, d := range days {
		names[i] = e.create(jobspec.BackupCreateArgs{}).Archive
		m, err := e.st.Meta(ctx, names[i])
		if err != nil {
			t.Fatal(err)
		}
		m.CreatedAt = d
		if err := e.st.SetMeta(ctx, names[i], m); err != nil {
			t.Fatal(err)
		}
	}
	prune := func(args jobs.Args) (jobs.Record, jobspec.BackupPruneResult) {
		t.Helper()
		rec := e.waitFinal(e.submit(args), 30*time.Second)
		var res jobspec.BackupPruneResult
		if rec.State == jobs.Succeeded {
			if err := json.Unmarshal(rec.Result, &res); err != nil {
				t.Fatal(err)
			}
		}
		return rec, res
	}
	nameList := func(as []jobspec.PrunedArchive) []string {
		var out []string
		for _, a := range as {
			out = append(out, a.Name)
		}
		return out
	}

	rec, dry := prune(jobspec.BackupPruneArgs{DryRun: true, Pin: []string{names[0]}})
	if rec.State != jobs.Succeeded {
		t.Fatalf("dry run: %s %+v", rec.State, rec.Error)
	}
	if want := []string{names[3], names[2], names[0]}; !slices.Equal(nameList(dry.Kept), want) {
		t.Fatalf("dry run keeps %v, want %v", nameList(dry.Kept), want)
	}
	if !slices.Equal(nameList(dry.WouldDelete), []string{names[1]}) || len(dry.Deleted) != 0 || len(e.listed()) != 4 {
		t.Fatalf("dry run would delete %v, deleted %v", nameList(dry.WouldDelete), nameList(dry.Deleted))
	}
	if dry.Policy != "last 1, daily 2" || dry.WouldDelete[0].Reason != "no rule keeps it (last 1, daily 2)" {
		t.Fatalf("policy %q, reason %q", dry.Policy, dry.WouldDelete[0].Reason)
	}
	if k := dry.Kept[0]; k.Reason != jobspec.KeptNewest+"; newest of day 2025-11-27 (BACKUP_RETENTION_DAILY)" {
		t.Fatalf("reason of the newest: %q", k.Reason)
	}
	if k := dry.Kept[2]; !k.Pinned || k.Reason != jobspec.KeptPinned {
		t.Fatalf("the pinned archive: %+v", k)
	}

	rec, res := prune(jobspec.BackupPruneArgs{})
	if rec.State != jobs.Succeeded || !slices.Equal(nameList(res.Deleted), []string{names[1]}) {
		t.Fatalf("prune: %s %+v deleted %v", rec.State, rec.Error, nameList(res.Deleted))
	}

	// As the API would pass it, unchecked: the worker refuses it.
	rec, _ = prune(jobs.RawArgs{JobKind: jobs.KindBackupPrune, Params: json.RawMessage(`{"pin":["` + strings.Replace(names[1], ".tar.", ".x.", 1) + `"]}`)})
	if rec.State != jobs.Failed || rec.Error.Code != jobs.CodeInvalidParams {
		t.Fatalf("pin of a bad name: %s %+v", rec.State, rec.Error)
	}
	rec, _ = prune(jobspec.BackupPruneArgs{Pin: []string{names[1]}, Unpin: []string{names[0]}})
	if rec.State != jobs.Failed || rec.Error.Code != jobs.CodeNotFound {
		t.Fatalf("pin of a deleted archive: %s %+v", rec.State, rec.Error)
	}
	if m, _ := e.st.Meta(ctx, names[0]); !m.Pinned {
		t.Fatal("a failed pin job unpinned an archive")
	}

	rec, res = prune(jobspec.BackupPruneArgs{Unpin: []string{names[0]}})
	if rec.State != jobs.Succeeded || !slices.Equal(nameList(res.Deleted), []string{names[0]}) {
		t.Fatalf("prune after unpinning: %s %+v deleted %v", rec.State, rec.Error, nameList(res.Deleted))
	}
}

// TestPruneKeepsAPinnedArchiveWithoutASummary: an archive whose Meta holds
// only its pin (no summary: copied in by hand, or a summary write that
// failed) is read by prune, which records its summary; the pin survives
// that and keeps the archive under a keep-last 1 that would otherwise take
// it.
func TestPruneKeepsAPinnedArchiveWithoutASummary(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOpts{Vars: map[string]string{"BACKUP_RETENTION_COUNT": "1"}, NoTarget: true})
	ctx := context.Background()
	startReplica(t, e, "backup-pin-nosummary", Options{}, nil)
	old := e.create(jobspec.BackupCreateArgs{}).Archive
	e.create(jobspec.BackupCreateArgs{})
	if err := e.st.SetMeta(ctx, old, backupstore.Meta{Pinned: true}); err != nil {
		t.Fatal(err)
	}
	rec := e.waitFinal(e.submit(jobspec.BackupPruneArgs{}), 30*time.Second)
	if rec.State != jobs.Succeeded {
		t.Fatalf("prune: %s %+v", rec.State, rec.Error)
	}
	if !slices.ContainsFunc(e.listed(), func(i backupstore.Info) bool { return i.Name == old }) {
		t.Fatal("prune deleted a pinned archive that had no summary")
	}
	m, err := e.st.Meta(ctx, old)
	if err != nil {
		t.Fatal(err)
	}
	if !m.Pinned || m.CreatedAt.IsZero() {
		t.Fatalf("after prune the archive's Meta is %+v, want its summary recorded and still pinned", m)
	}
}
