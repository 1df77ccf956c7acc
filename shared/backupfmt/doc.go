// Package backupfmt is the insightops backup archive format: its name, its
// manifest, a streaming Writer, and readers that verify (Verify), stream
// (Walk) and safely extract (Extract) an archive. It knows nothing about
// databases or stores: dumps come in as io.Readers, checks that need a
// tool (pg_restore --list, SQLite integrity_check) are plugged in as
// Checkers, and where the archive bytes live is package backupstore's job.
//
// # Layout
//
// An archive is named backup-<UTC yyyymmddThhmmssZ>-<job id>.tar.gz (gzip)
// or .tar.zst (zstd), followed by .age (EncryptedExt) when the stored bytes
// are the age ciphertext of that archive (package backupcrypt; readers here
// read the plaintext); ParseArchiveName is the only gate for names from the
// outside. It is a tar stream:
//
//	system/system.dump | system/system.db   pg_dump -Fc, or a SQLite copy
//	target/<name>.db                         SQLite copy of the runtime target DB
//	chroma/<collection>.jsonl                one record per line: id, document, metadata, embedding
//	manifest.json                            LAST entry: format version, created_at, job id,
//	                                         app version, per component status, source and
//	                                         files (size, sha256, count, kind, parts)
//
// The manifest is the last entry, not the first, because the archive is
// written in one pass with no temporary copy: a pg_dump streamed from its
// stdout has no known size or hash until it ends. Every reader here handles
// that: Verify hashes while streaming and compares at the end; Walk and
// Extract accept the manifest of a previous Verify (ReadOptions.Expect) to
// enforce names, sizes and hashes while streaming, so a restore fails
// before the consumer sees the end of a tampered file. A tool reads the
// manifest with `tar -xzf <archive> manifest.json` (tar reads to the end
// anyway).
//
// # Parts
//
// tar needs each entry's size in its header. A stream of unknown length is
// buffered one chunk at a time (DefaultChunkSize, 16 MiB): if it ends within
// the first chunk it becomes one entry named as the file; otherwise it is
// written as consecutive entries <path>.part-000001, <path>.part-000002, …,
// each a full chunk but the last, listed in the manifest with their own
// size and SHA-256, the file's size and SHA-256 being those of the
// concatenation. Memory stays at one chunk whatever the length;
// `cat <path>.part-*` after `tar -x` gives the file back.
//
// # Compression
//
// Each tar header and each entry's data is its own gzip member or zstd frame
// (with checksum). gzip, zstd and tar read the concatenation as one stream;
// this package detects a corrupt compressed byte within the entry that holds
// it, and reports that entry. The archive's own SHA-256 (Writer's Result,
// Report.ArchiveSHA256) covers the bytes no checksum covers, such as a gzip
// header's timestamp.
//
// # Safety
//
// Readers accept only regular-file entries whose names pass ValidatePath:
// <component>/<name>, relative, clean, a conservative character set, no
// element starting with a dot. Links, directories, devices, absolute paths
// and ".." are refused, so is anything after manifest.json. Extract writes
// through an os.Root confined to its directory, creates files exclusively,
// and removes what it wrote when anything fails. Decompression is capped
// (ReadOptions.MaxDecompressed, and the manifest's sizes with Expect): a
// decompression bomb stops at the cap with ErrDecompressionLimit.
package backupfmt
