package jobspec

import (
	"time"

	"github.com/insightops/insightops/shared/jobs"
)

// RestoreArgs are the params of restore.run, as the API submits them
// (POST /admin/db/backup/restore/{name}).
type RestoreArgs struct {
	// Archive is the archive's name in the backup store.
	Archive string `json:"archive"`
	// Components to restore; empty means every component the archive includes.
	Components []string `json:"components,omitempty"`
	// SkipSafetyBackup skips the backup of the current state.
	SkipSafetyBackup bool `json:"skip_safety_backup,omitempty"`
}

// Kind is jobs.KindRestore.
func (RestoreArgs) Kind() string { return jobs.KindRestore }

// Validate checks the archive name's shape and the components (known;
// a repeated one is merged by Normalized) without looking at the store.
func (a RestoreArgs) Validate() error {
	if err := validArchiveName("archive", a.Archive); err != nil {
		return err
	}
	return validComponents("components", a.Components, true)
}

// Normalized returns a with its components de-duplicated in archive
// order (nil stays nil: every component the archive includes).
func (a RestoreArgs) Normalized() RestoreArgs {
	if a.Components != nil {
		a.Components = ordered(a.Components)
	}
	return a
}

// RestoreResult is the result of restore.run.
type RestoreResult struct {
	// Archive is the archive restored.
	Archive string `json:"archive"`
	// ArchiveSHA256 is the SHA-256 of the archive as verified.
	ArchiveSHA256 string `json:"archive_sha256"`
	// CreatedAt is the archive's creation time (manifest).
	CreatedAt time.Time `json:"created_at"`
	// Components are the components restored, in archive order.
	Components []string `json:"components"`
	// Skipped are the components not restored, with the reason.
	Skipped map[string]string `json:"skipped,omitempty"`
	// SafetyBackup is the pre-restore archive; nil when skipped, with
	// the reason in SafetyBackupSkipped.
	SafetyBackup        *SafetyBackup `json:"safety_backup,omitempty"`
	SafetyBackupSkipped string        `json:"safety_backup_skipped,omitempty"`
	// System, Target and Chroma describe each restored component.
	System *RestoredSystem `json:"system,omitempty"`
	Target *RestoredTarget `json:"target,omitempty"`
	Chroma *RestoredChroma `json:"chroma,omitempty"`
	// CountsOK is true when every restored count matches the manifest.
	CountsOK bool `json:"counts_ok"`
	// CountProblems lists the differences found, if any.
	CountProblems []string `json:"count_problems,omitempty"`
}

// SafetyBackup is the archive of the state before the restore.
type SafetyBackup struct {
	Archive string `json:"archive"`
	SHA256  string `json:"sha256,omitempty"`
	Bytes   int64  `json:"bytes,omitempty"`
	// Reused is true when an earlier attempt of the same job had taken it.
	Reused bool `json:"reused,omitempty"`
}

// RestoredSystem describes the System DB restore.
type RestoredSystem struct {
	Kind string `json:"kind"` // pg_dump or sqlite
	// Rows after the restore, per table; Expected from the manifest.
	Rows     map[string]int64 `json:"rows"`
	Expected map[string]int64 `json:"expected,omitempty"`
	// AuditReinserted counts audit rows newer than the archive put back.
	AuditReinserted int64 `json:"audit_reinserted"`
	// AuditResynced counts events copied from the AUDIT stream afterwards.
	AuditResynced int `json:"audit_resynced"`
	// Migrations applied after the restore (an older archive's schema).
	Migrations    []int64 `json:"migrations,omitempty"`
	SchemaVersion int64   `json:"schema_version"`
}

// RestoredTarget describes the Target DB restore.
type RestoredTarget struct {
	Path     string           `json:"path"`
	Tables   map[string]int64 `json:"tables"`
	Expected map[string]int64 `json:"expected,omitempty"`
	SHA256   string           `json:"sha256"`
	Bytes    int64            `json:"bytes"`
}

// RestoredChroma describes the vector store restore.
type RestoredChroma struct {
	URL         string               `json:"url"`
	Collections []RestoredCollection `json:"collections"`
}

// RestoredCollection is one restored collection.
type RestoredCollection struct {
	Name     string `json:"name"`
	Imported int    `json:"imported"`
	Count    int    `json:"count"`    // counted after the restore
	Expected int64  `json:"expected"` // the manifest's record count
	// Cleared is true for a collection the archive does not hold, emptied.
	Cleared bool `json:"cleared,omitempty"`
}
