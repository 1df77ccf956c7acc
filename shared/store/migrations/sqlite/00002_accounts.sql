-- Accounts (issue 11): token revocation, forced password change, logout
-- and service tokens. Keep it equivalent to ../postgres/00002_accounts.sql.
-- Forward-only: there is no Down section.

-- +goose Up
-- token_version is raised by every password, role or active change: a
-- token carrying an older version is refused. must_change_password marks a
-- password someone else chose (created by an admin, reset, production init).
ALTER TABLE users ADD COLUMN token_version        INTEGER NOT NULL DEFAULT 0;
ALTER TABLE users ADD COLUMN must_change_password INTEGER NOT NULL DEFAULT 0 CHECK (must_change_password IN (0, 1));
ALTER TABLE users ADD COLUMN password_changed_at  TEXT;

-- Login tokens revoked by POST /auth/logout, kept until they expire anyway.
CREATE TABLE revoked_tokens (
    jti        TEXT NOT NULL PRIMARY KEY,
    expires_at TEXT NOT NULL
) STRICT;
CREATE INDEX revoked_tokens_expires_at_idx ON revoked_tokens (expires_at);

-- Service tokens for automation: only the SHA-256 of the secret is stored.
CREATE TABLE service_tokens (
    id           INTEGER PRIMARY KEY,
    name         TEXT    NOT NULL UNIQUE,
    token_hash   TEXT    NOT NULL UNIQUE,
    role         TEXT    NOT NULL CHECK (role IN ('admin', 'operator', 'viewer')),
    created_by   TEXT    NOT NULL,
    created_at   TEXT    NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%f000Z', 'now')),
    expires_at   TEXT    NOT NULL,
    last_used_at TEXT
) STRICT;
