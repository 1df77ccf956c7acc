package jobspec

import (
	"slices"
	"time"

	"github.com/insightops/insightops/shared/backupfmt"
	"github.com/insightops/insightops/shared/jobs"
)

// MaxBackupNote bounds the note of a backup, in bytes (the manifest
// accepts 4096).
const MaxBackupNote = 1024

// BackupCreateArgs are the params of backup.create.
type BackupCreateArgs struct {
	// Components to back up: "system", "target", "chroma". Empty means
	// every enabled one; a component that is not enabled is then skipped
	// with its reason in the manifest, while naming it explicitly makes
	// the backup fail (permanently) with that reason.
	Components []string `json:"components,omitempty"`
	// Note is kept in the manifest and the store's Meta (at most
	// MaxBackupNote bytes of text).
	Note string `json:"note,omitempty"`
	// VerifyAfter submits a backup.verify job of the archive once it is
	// made (once per job); the scheduler sets it from BACKUP_VERIFY_AFTER.
	VerifyAfter bool `json:"verify_after,omitempty"`
	// Schedule is set on scheduled backups: the schedule and the tick.
	Schedule *ScheduleTrigger `json:"schedule,omitempty"`
}

// Kind is jobs.KindBackupCreate.
func (BackupCreateArgs) Kind() string { return jobs.KindBackupCreate }

// Validate checks the components (known, each once; nil for every
// enabled one) and the note.
func (a BackupCreateArgs) Validate() error {
	if err := validComponents("components", a.Components, false); err != nil {
		return err
	}
	return validText("note", a.Note, MaxBackupNote)
}

// ScheduleTrigger is what a scheduled backup's params record about the
// schedule that started it.
type ScheduleTrigger struct {
	// Schedule is BACKUP_SCHEDULE, normalised.
	Schedule string `json:"schedule"`
	// Tick is the instant the backup was scheduled for (UTC).
	Tick time.Time `json:"tick"`
}

// ComponentSummary is what an archive holds of one component.
type ComponentSummary struct {
	Status string `json:"status"`           // backupfmt.StatusIncluded or StatusSkipped
	Reason string `json:"reason,omitempty"` // why it was skipped
	Source string `json:"source,omitempty"` // where it came from, without credentials
	// Files are the archive paths of the component's files.
	Files []string `json:"files,omitempty"`
	// Bytes is the uncompressed size of its files.
	Bytes int64 `json:"bytes"`
	// Count is the rows (system, target) or records (chroma) archived,
	// -1 when not counted.
	Count int64 `json:"count"`
	// Counts are per table (system, target) or per collection (chroma).
	Counts map[string]int64 `json:"counts,omitempty"`
}

// ArchiveSummary describes an archive made (or reused) by a backup.
type ArchiveSummary struct {
	// Archive is the archive's name in the store.
	Archive string `json:"archive"`
	// SHA256 is the archive file's own SHA-256 (hex).
	SHA256 string `json:"sha256"`
	// Bytes is the archive's (compressed) size.
	Bytes int64 `json:"bytes"`
	// Components summarises every component, included or skipped.
	Components map[string]ComponentSummary `json:"components"`
	// Reused is true when a redelivered job found its own complete archive
	// from an earlier attempt and returned it instead of making another.
	Reused bool `json:"reused,omitempty"`
	// Encryption says how the archive was encrypted at rest (nil: not
	// encrypted); SHA256 and Bytes are then the ciphertext's.
	Encryption *backupfmt.Encryption `json:"encryption,omitempty"`
	// Manifest is the archive's manifest. It is not part of the job
	// result JSON (it can be large: one line per 16 MiB part); read it
	// from the archive.
	Manifest backupfmt.Manifest `json:"-"`
}

// BackupCreateResult is the result of backup.create: the archive and what
// retention did after it.
type BackupCreateResult struct {
	ArchiveSummary
	// Retention is what the retention run after the backup kept and
	// deleted; RetentionError why it failed (the backup stands).
	Retention      *BackupPruneResult `json:"retention,omitempty"`
	RetentionError string             `json:"retention_error,omitempty"`
}

// BackupVerifyArgs are the params of backup.verify.
type BackupVerifyArgs struct {
	// Name is the archive's name, as listed. A drill may leave it empty:
	// the newest archive when the job runs.
	Name string `json:"name"`
	// Drill is set on restore drills (BACKUP_DRILL_SCHEDULE): the
	// schedule and the tick. The outcome is recorded as the archive's
	// last drill too (Meta.Drill), which the "last_drill" health
	// component and the drill metrics report.
	Drill *ScheduleTrigger `json:"drill,omitempty"`
}

// Kind is jobs.KindBackupVerify.
func (BackupVerifyArgs) Kind() string { return jobs.KindBackupVerify }

// Validate checks that Name is an archive name (or empty in a drill).
func (a BackupVerifyArgs) Validate() error {
	if a.Drill != nil && a.Name == "" {
		return nil
	}
	return validArchiveName("archive name", a.Name)
}

// Checks run on archive files, as VerifiedFile.Check reports them.
const (
	CheckScratchRestore = "pg_restore into a scratch database"
	CheckRestoreList    = "pg_restore --list"
	CheckSQLite         = "sqlite integrity_check"
	CheckJSONL          = "jsonl parsed"
	CheckChecksum       = "sha256 only"
)

// VerifiedFile is what verification found of one file of an archive.
type VerifiedFile struct {
	Path  string `json:"path"`
	Kind  string `json:"kind"`
	Bytes int64  `json:"bytes"`
	// Count is the rows or records the check counted (-1: not counted).
	Count int64 `json:"count"`
	// Check is the test restore that ran (Check* constants).
	Check string `json:"check"`
}

// BackupVerifyResult is the outcome of verifying an archive (the result of
// backup.verify).
type BackupVerifyResult struct {
	Archive    string    `json:"archive"`
	Outcome    string    `json:"outcome"` // backupstore.OutcomePassed or OutcomeFailed
	VerifiedAt time.Time `json:"verified_at"`
	// SHA256 and Bytes are those of the archive as read.
	SHA256 string         `json:"sha256"`
	Bytes  int64          `json:"bytes"`
	Files  []VerifiedFile `json:"files"`
	// Problems, first failing part first ("target/vanna_db.db: sha256 mismatch: …").
	Problems []string `json:"problems,omitempty"`
	// Manifest is the archive's manifest when it could be read (not in
	// the job result JSON).
	Manifest backupfmt.Manifest `json:"-"`
}

// MaxPinNames bounds the archive names of one prune's pin and unpin.
const MaxPinNames = 100

// BackupPruneArgs are the params of backup.prune.
type BackupPruneArgs struct {
	// DryRun lists what would be deleted and why, and deletes nothing.
	DryRun bool `json:"dry_run,omitempty"`
	// Pin and Unpin set and clear the pin of these archives (Meta.Pinned)
	// before retention runs, dry run or not: a pinned archive is never
	// deleted by retention.
	Pin   []string `json:"pin,omitempty"`
	Unpin []string `json:"unpin,omitempty"`
}

// Kind is jobs.KindBackupPrune.
func (BackupPruneArgs) Kind() string { return jobs.KindBackupPrune }

// Validate checks that pin and unpin hold archive names, at most
// MaxPinNames, none in both.
func (a BackupPruneArgs) Validate() error {
	if len(a.Pin)+len(a.Unpin) > MaxPinNames {
		return jobs.Invalid("pin and unpin name %d archives, more than %d", len(a.Pin)+len(a.Unpin), MaxPinNames)
	}
	for _, n := range a.Pin {
		if err := validArchiveName("pin: archive name", n); err != nil {
			return err
		}
		if slices.Contains(a.Unpin, n) {
			return jobs.Invalid("archive %s is both in pin and in unpin", n)
		}
	}
	for _, n := range a.Unpin {
		if err := validArchiveName("unpin: archive name", n); err != nil {
			return err
		}
	}
	return nil
}

// Why an archive is kept (besides the dated rules of package retention,
// e.g. "newest of day 2025-11-27 (BACKUP_RETENTION_DAILY)").
const (
	KeptNewest         = "among the newest BACKUP_RETENTION_COUNT"
	KeptNewestVerified = "newest verified archive"
	KeptPinned         = "pinned"
	// KeptLocked: retention would delete it, but the S3 server refused
	// (object-lock retention, BACKUP_S3_LOCK_DAYS, on a bucket without
	// versioning); a later prune deletes it once the lock has expired.
	KeptLocked = "under object lock: the store refused to delete it"
)

// PrunedArchive is one archive in a BackupPruneResult.
type PrunedArchive struct {
	Name      string    `json:"name"`
	CreatedAt time.Time `json:"created_at"`
	Bytes     int64     `json:"bytes"`
	Verified  bool      `json:"verified"`
	Pinned    bool      `json:"pinned,omitempty"`
	// Reason says why it is kept (every rule that keeps it, joined by
	// "; "), why it goes, or why it was left alone (unreadable).
	Reason string `json:"reason,omitempty"`
}

// BackupPruneResult is what retention kept and deleted, newest first (the
// result of backup.prune).
type BackupPruneResult struct {
	DryRun         bool `json:"dry_run"`
	RetentionCount int  `json:"retention_count"`
	// Policy is the whole retention policy applied, e.g. "last 7, daily
	// 7, weekly 4, monthly 12" (config.Retention.String).
	Policy      string          `json:"policy,omitempty"`
	Kept        []PrunedArchive `json:"kept"`
	Deleted     []PrunedArchive `json:"deleted"`
	WouldDelete []PrunedArchive `json:"would_delete,omitempty"`
	// Unreadable archives (no readable manifest, so no creation time)
	// are neither counted nor deleted: an operator looks at them.
	Unreadable []PrunedArchive `json:"unreadable,omitempty"`
}
