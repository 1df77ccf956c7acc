package jobs

// Code is the machine-readable reason a job failed: the record's
// error.code, the audit event's detail.error_code. Every code a worker,
// the runtime or the publisher sets is one of the constants below, listed
// with its meaning and retry class in Codes.
type Code string

// The job error codes. "Retried" means the runtime retries the attempt
// with backoff (up to max_attempts, then fails and dead-letters the job);
// "permanent" means the job fails at once.
const (
	// CodeInvalidParams: the params do not decode into the kind's Args or
	// fail its Validate. Permanent.
	CodeInvalidParams Code = "invalid_params"
	// CodeUnknownKind: the worker has no handler for the job's kind. Permanent.
	CodeUnknownKind Code = "unknown_kind"
	// CodeNotImplemented: the kind's work is not in this version. Permanent.
	CodeNotImplemented Code = "not_implemented"
	// CodePanic: the handler panicked. Permanent.
	CodePanic Code = "panic"
	// CodeHandlerError: a handler error without a code of its own. Retried.
	CodeHandlerError Code = "handler_error"
	// CodeCancelled: cancellation was requested (DELETE on the task).
	// Final, not retried.
	CodeCancelled Code = "cancelled"
	// CodeDispatchFailed: the command could not be published after the
	// queued record was written, so nothing will run the job. Permanent.
	CodeDispatchFailed Code = "dispatch_failed"
	// CodeAttemptsExhausted: deliveries went unanswered (workers crashed)
	// until max_attempts. Final: the job is dead-lettered.
	CodeAttemptsExhausted Code = "attempts_exhausted"

	// CodeInvalidConfig: the worker's configuration cannot do the job
	// (BACKUP_COMPRESSION, INIT_ADMIN_PASSWORD, embedder settings …). Permanent.
	CodeInvalidConfig Code = "invalid_config"
	// CodeLockHeld: a LOCKS lease the job needs stayed held by another
	// operation for the whole wait. Retried.
	CodeLockHeld Code = "lock_held"
	// CodeLockLost: a lease the job held was lost (expired or taken over
	// by a later attempt) mid-run. Retried.
	CodeLockLost Code = "lock_lost"
	// CodeLockError: the LOCKS bucket could not be read or written. Retried.
	CodeLockError Code = "lock_error"
	// CodeStoreUnavailable: the backup store could not be opened, read or
	// written. Retried.
	CodeStoreUnavailable Code = "store_unavailable"
	// CodeBackupStoreFull: the backup store has no room left. Permanent
	// (the volume does not free itself within the retry window).
	CodeBackupStoreFull Code = "backup_store_full"
	// CodeBackupFailed: dumping a component or writing the archive
	// failed. Retried.
	CodeBackupFailed Code = "backup_failed"
	// CodePgDumpTooOld: pg_dump is older than the PostgreSQL server. Permanent.
	CodePgDumpTooOld Code = "pg_dump_too_old"
	// CodeNotFound: backup.verify (or a drill, or backup.prune's pin) of an
	// archive that is not in the store. Permanent.
	CodeNotFound Code = "not_found"
	// CodeVerifyFailed: the archive failed verification (the result names
	// the first failing part). Permanent.
	CodeVerifyFailed Code = "verify_failed"
	// CodeVerifyAfter: the backup was made but its backup.verify job could
	// not be submitted. Retried (permanent when the worker has no bus).
	CodeVerifyAfter Code = "verify_after"

	// CodeArchiveNotFound: restore of an archive that is not (or no
	// longer) in the store. Permanent.
	CodeArchiveNotFound Code = "archive_not_found"
	// CodeArchiveInvalid: the archive to restore failed verification or
	// changed since it was verified; nothing was changed. Permanent.
	CodeArchiveInvalid Code = "archive_invalid"
	// CodeArchiveUnsigned: the archive to verify or restore has no
	// signature, or no stored SHA-256 for it to cover; nothing was read
	// from it. Permanent.
	CodeArchiveUnsigned Code = "archive_unsigned"
	// CodeArchiveSignatureInvalid: the archive's signature does not verify
	// with this deployment's keys, or its bytes or manifest are not the
	// signed ones; nothing was executed from it. Permanent.
	CodeArchiveSignatureInvalid Code = "archive_signature_invalid"
	// CodeArchiveUnsafe: the PostgreSQL dump of an archive holds objects
	// the System DB schema does not have (functions, triggers,
	// extensions, …); nothing was restored from it. Permanent.
	CodeArchiveUnsafe Code = "archive_unsafe"
	// CodeArchiveEncryptedNoIdentity: the archive is encrypted with age
	// and this worker has no BACKUP_AGE_IDENTITY_FILE; nothing was read.
	CodeArchiveEncryptedNoIdentity Code = "archive_encrypted_no_identity"
	// CodeArchiveDecryptFailed: no identity of BACKUP_AGE_IDENTITY_FILE
	// decrypts the (signed) archive, or its ciphertext is damaged.
	CodeArchiveDecryptFailed Code = "archive_decrypt_failed"
	// CodeDecompressionLimit: the archive decompresses to more than
	// BACKUP_MAX_DECOMPRESSED or than its manifest's sizes allow (a
	// decompression bomb); reading stopped and nothing was left behind.
	// Permanent.
	CodeDecompressionLimit Code = "decompression_limit"
	// CodePreconditionFailed: the restore cannot run in this deployment
	// (a component it needs is not configured, nothing to restore);
	// nothing was changed. Permanent.
	CodePreconditionFailed Code = "precondition_failed"
	// CodeSafetyBackupFailed: the pre-restore safety backup failed;
	// nothing was changed. Retried unless its cause is permanent.
	CodeSafetyBackupFailed Code = "safety_backup_failed"
	// CodeRestoreFailed: applying a component failed. Retried (a retry
	// restores again from the archive).
	CodeRestoreFailed Code = "restore_failed"
	// CodeCountMismatch: the restored counts differ from the manifest. Permanent.
	CodeCountMismatch Code = "count_mismatch"

	// CodeChromaDisabled: CHROMA_URL is empty: there is no vector store. Permanent.
	CodeChromaDisabled Code = "chroma_disabled"
	// CodeChromaUnavailable: Chroma does not answer. Retried.
	CodeChromaUnavailable Code = "chroma_unavailable"
	// CodeEmbedderMismatch: a collection was filled by another embedder;
	// clear it first. Permanent.
	CodeEmbedderMismatch Code = "embedder_mismatch"
	// CodeInvalidData: Chroma refused the data sent. Permanent.
	CodeInvalidData Code = "invalid_data"
	// CodeInvalidTrainingAsset: a file of ASSETS_DIR/training is not a
	// JSON array of {question, sql} pairs or is too large. Permanent.
	CodeInvalidTrainingAsset Code = "invalid_training_asset"
	// CodeNoTarget: no target database is configured. Permanent.
	CodeNoTarget Code = "no_target"
	// CodeTargetMissing: the target database does not exist (run init
	// first). Permanent.
	CodeTargetMissing Code = "target_missing"
	// CodeTargetUnreadable: the target database cannot be opened. Permanent.
	CodeTargetUnreadable Code = "target_unreadable"
	// CodeTargetURLInvalid: TARGET_DATABASE_URL cannot be parsed. Permanent.
	CodeTargetURLInvalid Code = "target_url_invalid"

	// CodeNoSystemDB: the init worker has no System DB. Permanent.
	CodeNoSystemDB Code = "no_system_db"
	// CodeTargetSourceMissing: TARGET_DB_SOURCE does not exist (with
	// ENABLE_TARGET_DB). Permanent.
	CodeTargetSourceMissing Code = "target_source_missing"
	// CodeTargetSourceInvalid: TARGET_DB_SOURCE is not a SQLite database
	// (with ENABLE_TARGET_DB). Permanent.
	CodeTargetSourceInvalid Code = "target_source_invalid"
	// CodeTargetSourceNotCheckpointed: TARGET_DB_SOURCE has a non-empty
	// -wal or -journal file (with ENABLE_TARGET_DB). Permanent.
	CodeTargetSourceNotCheckpointed Code = "target_source_not_checkpointed"
	// CodeTargetSourceChanged: the golden source changed while it was
	// copied. Retried.
	CodeTargetSourceChanged Code = "target_source_changed"
	// CodeOntologyInvalid: the ontology assets do not parse. Permanent.
	CodeOntologyInvalid Code = "ontology_invalid"
	// CodeTrainIdempotencyConflict: the auto-train job's idempotency key
	// holds a job with other params. Permanent.
	CodeTrainIdempotencyConflict Code = "train_idempotency_conflict"
)

// CodeInfo documents one Code.
type CodeInfo struct {
	Code Code `json:"code"`
	// Meaning says what went wrong, for operators and documentation.
	Meaning string `json:"meaning"`
	// Retried is true when an attempt failing with the code is retried
	// with backoff; false when the job fails at once (or is final).
	Retried bool `json:"retried"`
}

// Codes lists every job error code with its meaning and retry class, in
// the order of the constants; documentation renders it.
var Codes = []CodeInfo{
	{CodeInvalidParams, "the params do not decode into the kind's args or fail its validation", false},
	{CodeUnknownKind, "the worker has no handler for the job's kind", false},
	{CodeNotImplemented, "the job kind's work is not in this version", false},
	{CodePanic, "the handler panicked", false},
	{CodeHandlerError, "a handler error without a code of its own", true},
	{CodeCancelled, "cancellation was requested", false},
	{CodeDispatchFailed, "the command could not be published, so nothing will run the job", false},
	{CodeAttemptsExhausted, "deliveries went unanswered (workers crashed) until max_attempts; dead-lettered", false},
	{CodeInvalidConfig, "the worker's configuration cannot do the job", false},
	{CodeLockHeld, "a lease the job needs stayed held by another operation for the whole wait", true},
	{CodeLockLost, "a lease the job held was lost mid-run", true},
	{CodeLockError, "the LOCKS bucket could not be read or written", true},
	{CodeStoreUnavailable, "the backup store could not be opened, read or written", true},
	{CodeBackupStoreFull, "the backup store has no room left", false},
	{CodeBackupFailed, "dumping a component or writing the archive failed", true},
	{CodePgDumpTooOld, "pg_dump is older than the PostgreSQL server", false},
	{CodeNotFound, "the archive to verify or pin is not in the backup store (a drill: the store holds no archive)", false},
	{CodeVerifyFailed, "the archive failed verification; the result names the first failing part", false},
	{CodeVerifyAfter, "the backup was made but its verify job could not be submitted (permanent without a bus)", true},
	{CodeArchiveNotFound, "the archive to restore is not (or no longer) in the backup store", false},
	{CodeArchiveInvalid, "the archive to restore failed verification or changed since; nothing was changed", false},
	{CodeArchiveUnsigned, "the archive to verify or restore has no signature (or no stored SHA-256); nothing was read from it", false},
	{CodeArchiveSignatureInvalid, "the archive's signature does not verify with this deployment's keys, or its bytes or manifest are not the signed ones; nothing was executed", false},
	{CodeArchiveUnsafe, "the archive's PostgreSQL dump holds objects the System DB schema does not have (functions, triggers, extensions, …); nothing was restored", false},
	{CodeArchiveEncryptedNoIdentity, "the archive is encrypted (age) and this worker has no BACKUP_AGE_IDENTITY_FILE to decrypt it; nothing was read from it", false},
	{CodeArchiveDecryptFailed, "no identity in BACKUP_AGE_IDENTITY_FILE decrypts the archive (its key was dropped, or another key), or its ciphertext is damaged; nothing was changed", false},
	{CodeDecompressionLimit, "the archive decompresses to more than BACKUP_MAX_DECOMPRESSED or its manifest's sizes allow; reading stopped, nothing was changed or left behind", false},
	{CodePreconditionFailed, "the restore cannot run in this deployment; nothing was changed", false},
	{CodeSafetyBackupFailed, "the pre-restore safety backup failed; nothing was changed (permanent when its cause is)", true},
	{CodeRestoreFailed, "applying a component failed; a retry restores again from the archive", true},
	{CodeCountMismatch, "the restored counts differ from the manifest", false},
	{CodeChromaDisabled, "CHROMA_URL is empty: there is no vector store", false},
	{CodeChromaUnavailable, "Chroma does not answer", true},
	{CodeEmbedderMismatch, "a collection was filled by another embedder; clear it first", false},
	{CodeInvalidData, "Chroma refused the data sent", false},
	{CodeInvalidTrainingAsset, "a training asset is not a JSON array of {question, sql} pairs or is too large", false},
	{CodeNoTarget, "no target database is configured", false},
	{CodeTargetMissing, "the target database does not exist: run init first", false},
	{CodeTargetUnreadable, "the target database cannot be opened", false},
	{CodeTargetURLInvalid, "TARGET_DATABASE_URL cannot be parsed", false},
	{CodeNoSystemDB, "the init worker has no System DB", false},
	{CodeTargetSourceMissing, "TARGET_DB_SOURCE does not exist (with ENABLE_TARGET_DB)", false},
	{CodeTargetSourceInvalid, "TARGET_DB_SOURCE is not a SQLite database (with ENABLE_TARGET_DB)", false},
	{CodeTargetSourceNotCheckpointed, "TARGET_DB_SOURCE has a non-empty -wal or -journal file (with ENABLE_TARGET_DB)", false},
	{CodeTargetSourceChanged, "the golden source changed while it was copied", true},
	{CodeOntologyInvalid, "the ontology assets do not parse", false},
	{CodeTrainIdempotencyConflict, "the auto-train job's idempotency key holds a job with other params", false},
}

// Info returns the documentation of c, and false for a code not in Codes.
func (c Code) Info() (CodeInfo, bool) {
	for _, i := range Codes {
		if i.Code == c {
			return i, true
		}
	}
	return CodeInfo{}, false
}

// String returns the code itself.
func (c Code) String() string { return string(c) }
