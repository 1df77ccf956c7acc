// Package snapshot takes consistent dumps of the System DB and of the Target
// DB as streams, checks them, and restores them, for the backup, verify and
// restore workers. Packaging the streams into an archive (tar, compression,
// manifest, SHA-256 of each file) is not done here: every dump writes to an
// io.Writer and every check or restore reads from an io.Reader, so the
// caller decides where the bytes go and memory stays flat whatever the size.
//
// # System DB on PostgreSQL
//
// [DumpSystem] first compares the pg_dump major version with the server's
// (an older pg_dump cannot dump a newer server), then opens a REPEATABLE
// READ, READ ONLY transaction, exports its snapshot (pg_export_snapshot),
// counts the rows of every System DB table inside it and runs
// pg_dump -Fc --snapshot=<id>, so the dump and the counts describe the very
// same instant. pg_dump's stdout is copied straight into the writer; nothing
// is written to disk. [RestoreSystem] streams the reader into
// pg_restore --clean --if-exists --single-transaction --exit-on-error: a
// failure at any point (a truncated or corrupt dump included) rolls the
// whole restore back and leaves the database as it was.
//
// The connection settings for pg_dump and pg_restore come from the pool's
// own pgx configuration. The URL handed to the tool (--dbname) never holds
// the password: it travels in the PGPASSWORD environment variable of the
// child process only, and is redacted from every error. Every process is
// started with exec.CommandContext, so cancelling the context kills it; its
// stderr is part of the returned error.
//
// # System DB on SQLite, and the Target DB
//
// The SQLite System DB is copied with VACUUM INTO into a scratch
// directory, then streamed and deleted: VACUUM INTO runs in one read
// transaction, so in WAL mode writers keep writing meanwhile and the copy
// is the database as of the transaction's start (it also drops free
// pages). The Target DB, which can be large, is not copied at all: in one
// read transaction of a read-only connection, its rows are counted and its
// pages are streamed, in order, from SQLite's sqlite_dbpage table, each as
// that transaction sees it (WAL frames included), so writers go on and the
// stream is one consistent snapshot. Page 1's file format bytes are set to
// rollback journal, so the archived file stands alone (no -wal needed) and
// opens with the plain sqlite3 tool, read-only media included. The row
// counts come from the same transaction, so they match the archived
// bytes exactly. (The online backup API into a scratch file, used before,
// wrote and read back the whole database once more: a 1 GB backup went
// from 7.9 to 7.1 s here without it.)
//
// [RestoreSystem] on SQLite never renames a file under the running process:
// the stream is written to a scratch copy, checked (PRAGMA integrity_check,
// every System DB table present), and only then copied page by page into the
// live database with SQLite's online backup API in the restore direction
// (modernc.org/sqlite's NewRestore on a pooled connection). The backup API
// writes the whole database as one write transaction, so readers see the old
// content or the new, never a mix; open connections stay valid and see the
// new content at their next statement. If the copy fails or the context is
// cancelled half-way, the transaction is rolled back.
//
// [RestoreTarget] replaces the runtime copy of the read-only Target DB the
// way golden.Sync installs it: a temp file beside it, fsync, full
// integrity_check, stale -wal/-shm/-journal removed, atomic rename, fsync of
// the directory. It refuses to write to the golden source.
//
// # Audit history is never rolled back
//
// [RestoreSystem] keeps every audit_logs row that exists when it runs:
// the rows are streamed to a JSONL file in the scratch directory, and every
// saved event missing from the restored data is inserted back (matched by
// event_id, keeping its id, stream sequence and hashes; a new id only if the
// dump gives its id to another event), so events recorded after the backup
// survive and the events in the backup are there too.
//
// On SQLite this happens inside the restore: a first backup step of zero
// pages takes the live database's write lock, the live rows are read (WAL
// readers are not blocked) and merged into the verified copy, then the pages
// are copied and committed together, so no event can slip in between.
//
// On PostgreSQL pg_restore runs in its own transaction, so the rows are
// saved just before it and inserted back just after it (then the identity
// sequence is moved past the highest id). An event the audit sink stores
// while pg_restore runs can be lost from the table (the AUDIT stream remains
// the source of truth to re-sync it from). If inserting back fails, the
// error names the JSONL file, which is kept.
package snapshot
