-- Ids that are never reused: users.id and service_tokens.id become
-- INTEGER PRIMARY KEY AUTOINCREMENT. A plain INTEGER PRIMARY KEY hands out
-- max(id)+1, so deleting the newest user or token freed its id for the next
-- one and audit events naming an id became ambiguous. PostgreSQL's identity
-- columns never reuse a value; ../postgres/00003_autoincrement_ids.sql is a
-- no-op that keeps the two dialects at the same schema version.
-- Forward-only: there is no Down section.
--
-- SQLite cannot add AUTOINCREMENT to an existing column, so each table is
-- rebuilt with the documented 12-step procedure
-- (https://www.sqlite.org/lang_altertable.html#otheralter): same columns,
-- constraints and rows (ids included); neither table has indexes beyond
-- its UNIQUE constraints, triggers or views to recreate. sqlite_sequence
-- starts at each table's current max(id); an id deleted above that before
-- this migration ran can be handed out once more.
--
-- NO TRANSACTION, because the procedure must turn foreign keys off
-- (queries.user_id and feedback.user_id reference users ON DELETE SET NULL:
-- with foreign keys on, DROP TABLE users would null them) and PRAGMA
-- foreign_keys is a no-op inside a transaction. goose runs every statement
-- below on one connection, so the pragma, the explicit transaction and
-- the foreign key check all apply to that connection; store.Migrate gives
-- SQLite migrations a connection pool of their own and closes it, so a
-- failure half-way (the transaction open, foreign keys off) rolls back and
-- never reaches the service's pool.

-- +goose NO TRANSACTION
-- +goose Up
PRAGMA foreign_keys = OFF;
BEGIN IMMEDIATE;

CREATE TABLE users_new (
    id                   INTEGER PRIMARY KEY AUTOINCREMENT,
    email                TEXT    NOT NULL UNIQUE,
    password_hash        TEXT    NOT NULL,
    role                 TEXT    NOT NULL CHECK (role IN ('admin', 'operator', 'viewer')),
    is_active            INTEGER NOT NULL DEFAULT 1 CHECK (is_active IN (0, 1)),
    created_at           TEXT    NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%f000Z', 'now')),
    updated_at           TEXT    NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%f000Z', 'now')),
    token_version        INTEGER NOT NULL DEFAULT 0,
    must_change_password INTEGER NOT NULL DEFAULT 0 CHECK (must_change_password IN (0, 1)),
    password_changed_at  TEXT
) STRICT;
INSERT INTO users_new (id, email, password_hash, role, is_active, created_at, updated_at,
                       token_version, must_change_password, password_changed_at)
SELECT id, email, password_hash, role, is_active, created_at, updated_at,
       token_version, must_change_password, password_changed_at
FROM users;
DROP TABLE users;
ALTER TABLE users_new RENAME TO users;

CREATE TABLE service_tokens_new (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    name         TEXT    NOT NULL UNIQUE,
    token_hash   TEXT    NOT NULL UNIQUE,
    role         TEXT    NOT NULL CHECK (role IN ('admin', 'operator', 'viewer')),
    created_by   TEXT    NOT NULL,
    created_at   TEXT    NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%f000Z', 'now')),
    expires_at   TEXT    NOT NULL,
    last_used_at TEXT
) STRICT;
INSERT INTO service_tokens_new (id, name, token_hash, role, created_by, created_at, expires_at, last_used_at)
SELECT id, name, token_hash, role, created_by, created_at, expires_at, last_used_at
FROM service_tokens;
DROP TABLE service_tokens;
ALTER TABLE service_tokens_new RENAME TO service_tokens;

-- Step 10: the rebuild must not break a foreign key (queries and feedback
-- still point at the same user ids). PRAGMA foreign_key_check only lists
-- violations, so count them into a table whose CHECK fails the migration
-- (and, with it, the transaction) when there is one.
CREATE TEMP TABLE migration_00003_fk_violations (n INTEGER NOT NULL CHECK (n = 0));
INSERT INTO migration_00003_fk_violations SELECT count(*) FROM pragma_foreign_key_check;
DROP TABLE migration_00003_fk_violations;

COMMIT;
PRAGMA foreign_keys = ON;
