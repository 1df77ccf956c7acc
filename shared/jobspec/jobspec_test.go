package jobspec_test

import (
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/insightops/insightops/shared/jobs"
	"github.com/insightops/insightops/shared/jobspec"
)

const archive = "backup-20261127T101500Z-01JD0000000000000000000000.tar.gz"

// TestValidate checks each kind's Args: valid values pass, invalid ones
// fail with the permanent invalid_params code and a message naming what
// is wrong.
func TestValidate(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		args jobs.Args
		want string // "" when valid, else a part of the message
	}{
		{"init", jobspec.InitArgs{}, ""},
		{"backup: every enabled component", jobspec.BackupCreateArgs{}, ""},
		{"backup: components and a note", jobspec.BackupCreateArgs{Components: []string{"system", "chroma"}, Note: "before v2\n\tby ops"}, ""},
		{"backup: empty components", jobspec.BackupCreateArgs{Components: []string{}}, "components is empty"},
		{"backup: unknown component", jobspec.BackupCreateArgs{Components: []string{"vectors"}}, `component "vectors"`},
		{"backup: repeated component", jobspec.BackupCreateArgs{Components: []string{"system", "system"}}, "listed twice"},
		{"backup: long note", jobspec.BackupCreateArgs{Note: strings.Repeat("n", jobspec.MaxBackupNote+1)}, "at most 1024"},
		{"backup: control character", jobspec.BackupCreateArgs{Note: "a\x00b"}, "control character"},
		{"backup: invalid UTF-8", jobspec.BackupCreateArgs{Note: "\xff"}, "UTF-8"},
		{"verify", jobspec.BackupVerifyArgs{Name: archive}, ""},
		{"verify: no name", jobspec.BackupVerifyArgs{}, "not a backup archive name"},
		{"verify: traversal", jobspec.BackupVerifyArgs{Name: "../" + archive}, "not a backup archive name"},
		{"verify: a drill of the newest archive", jobspec.BackupVerifyArgs{Drill: &jobspec.ScheduleTrigger{Schedule: "@daily"}}, ""},
		{"verify: a drill of a bad name", jobspec.BackupVerifyArgs{Name: "x", Drill: &jobspec.ScheduleTrigger{Schedule: "@daily"}}, "not a backup archive name"},
		{"prune", jobspec.BackupPruneArgs{DryRun: true}, ""},
		{"prune: pin and unpin", jobspec.BackupPruneArgs{Pin: []string{archive}, Unpin: []string{strings.Replace(archive, ".tar.gz", ".tar.zst", 1)}}, ""},
		{"prune: pin a bad name", jobspec.BackupPruneArgs{Pin: []string{"../x"}}, "pin: archive name"},
		{"prune: unpin a bad name", jobspec.BackupPruneArgs{Unpin: []string{""}}, "unpin: archive name"},
		{"prune: pin and unpin the same", jobspec.BackupPruneArgs{Pin: []string{archive}, Unpin: []string{archive}}, "both in pin and in unpin"},
		{"prune: too many", jobspec.BackupPruneArgs{Pin: slices.Repeat([]string{archive}, jobspec.MaxPinNames+1)}, "more than 100"},
		{"restore", jobspec.RestoreArgs{Archive: archive}, ""},
		{"restore: repeated components are merged", jobspec.RestoreArgs{Archive: archive, Components: []string{"target", "system", "target"}}, ""},
		{"restore: bad archive", jobspec.RestoreArgs{Archive: "x.tar.gz"}, "not a backup archive name"},
		{"restore: empty components", jobspec.RestoreArgs{Archive: archive, Components: []string{}}, "components is empty"},
		{"restore: unknown component", jobspec.RestoreArgs{Archive: archive, Components: []string{"everything"}}, `component "everything"`},
		{"train", jobspec.ChromaTrainArgs{}, ""},
		{"clear all", jobspec.ChromaClearArgs{}, ""},
		{"clear one", jobspec.ChromaClearArgs{CollectionName: "ddl"}, ""},
		{"clear: unknown collection", jobspec.ChromaClearArgs{CollectionName: "nope"}, "collection_name"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			err := tc.args.Validate()
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("Validate: %v", err)
			case tc.want == "":
				return
			case err == nil:
				t.Fatalf("Validate accepted %+v", tc.args)
			case !errors.Is(err, jobs.CodeInvalidParams) || !jobs.IsPermanent(err):
				t.Fatalf("Validate: %v (code %s), want a permanent %s", err, jobs.CodeOf(err), jobs.CodeInvalidParams)
			case !strings.Contains(err.Error(), tc.want):
				t.Fatalf("Validate: %q does not say %q", err, tc.want)
			}
		})
	}
}

// TestSpecsCoverEveryKindOnce: Specs has one entry per job kind, in the
// order of jobs.Kinds.
func TestSpecsCoverEveryKindOnce(t *testing.T) {
	t.Parallel()
	var kinds []string
	for _, s := range jobspec.Specs {
		kinds = append(kinds, s.Kind())
	}
	if !slices.Equal(kinds, jobs.Kinds) {
		t.Fatalf("Specs kinds %v, jobs.Kinds %v", kinds, jobs.Kinds)
	}
}

// TestRestoreNormalizedOrdersComponents: Normalized merges repeated
// components in archive order and keeps nil for every component.
func TestRestoreNormalizedOrdersComponents(t *testing.T) {
	t.Parallel()
	got := jobspec.RestoreArgs{Archive: archive, Components: []string{"chroma", "system", "chroma"}}.Normalized()
	if !slices.Equal(got.Components, []string{"system", "chroma"}) {
		t.Errorf("Normalized components %v", got.Components)
	}
	if (jobspec.RestoreArgs{Archive: archive}).Normalized().Components != nil {
		t.Error("nil components became non-nil")
	}
}
