-- System DB schema, SQLite dialect. Keep it equivalent to
-- ../postgres/00001_init.sql: same tables, columns, constraints and indexes.
-- STRICT tables enforce the declared column types. Timestamps are TEXT in the
-- fixed-width UTC form 2006-01-02T15:04:05.000000Z (sortable as text), dates
-- are TEXT YYYY-MM-DD, booleans INTEGER 0/1, JSON is TEXT checked by json_valid.

-- +goose Up
CREATE TABLE users (
    id            INTEGER PRIMARY KEY,
    email         TEXT    NOT NULL UNIQUE,
    password_hash TEXT    NOT NULL,
    role          TEXT    NOT NULL CHECK (role IN ('admin', 'operator', 'viewer')),
    is_active     INTEGER NOT NULL DEFAULT 1 CHECK (is_active IN (0, 1)),
    created_at    TEXT    NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%f000Z', 'now')),
    updated_at    TEXT    NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%f000Z', 'now'))
) STRICT;

-- The text-to-SQL app's query log.
CREATE TABLE queries (
    id         INTEGER PRIMARY KEY,
    user_id    INTEGER REFERENCES users (id) ON DELETE SET NULL,
    question   TEXT    NOT NULL,
    sql        TEXT    NOT NULL DEFAULT '',
    status     TEXT    NOT NULL DEFAULT 'pending',
    created_at TEXT    NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%f000Z', 'now'))
) STRICT;
CREATE INDEX queries_user_id_idx ON queries (user_id);
CREATE INDEX queries_created_at_idx ON queries (created_at);

-- rating: +1 (good answer) or -1 (bad answer).
CREATE TABLE feedback (
    id         INTEGER PRIMARY KEY,
    query_id   INTEGER NOT NULL REFERENCES queries (id) ON DELETE CASCADE,
    user_id    INTEGER REFERENCES users (id) ON DELETE SET NULL,
    rating     INTEGER NOT NULL CHECK (rating IN (-1, 1)),
    comment    TEXT    NOT NULL DEFAULT '',
    created_at TEXT    NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%f000Z', 'now'))
) STRICT;
CREATE INDEX feedback_query_id_idx ON feedback (query_id);
CREATE INDEX feedback_user_id_idx ON feedback (user_id);

-- Append-only copy of the AUDIT stream; event_id deduplicates redeliveries.
CREATE TABLE audit_logs (
    id         INTEGER PRIMARY KEY,
    event_id   TEXT    NOT NULL UNIQUE,
    stream_seq INTEGER NOT NULL DEFAULT 0,
    at         TEXT    NOT NULL,
    actor      TEXT    NOT NULL DEFAULT '',
    role       TEXT    NOT NULL DEFAULT '',
    action     TEXT    NOT NULL,
    resource   TEXT    NOT NULL DEFAULT '',
    job_id     TEXT    NOT NULL DEFAULT '',
    outcome    TEXT    NOT NULL DEFAULT '',
    detail     TEXT    CHECK (detail IS NULL OR json_valid(detail)),
    source_ip  TEXT    NOT NULL DEFAULT '',
    request_id TEXT    NOT NULL DEFAULT '',
    prev_hash  TEXT    NOT NULL DEFAULT '',
    hash       TEXT    NOT NULL DEFAULT ''
) STRICT;
CREATE INDEX audit_logs_at_idx ON audit_logs (at);
CREATE INDEX audit_logs_actor_idx ON audit_logs (actor);
CREATE INDEX audit_logs_action_idx ON audit_logs (action);

CREATE TABLE configurations (
    key        TEXT PRIMARY KEY,
    value      TEXT NOT NULL,
    updated_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%f000Z', 'now'))
) STRICT;

-- The business glossary; synonyms and tables are JSON arrays of strings.
CREATE TABLE business_ontologies (
    id             INTEGER PRIMARY KEY,
    term           TEXT NOT NULL UNIQUE,
    definition     TEXT NOT NULL DEFAULT '',
    synonyms       TEXT NOT NULL DEFAULT '[]' CHECK (json_valid(synonyms) AND json_type(synonyms) = 'array'),
    "tables"       TEXT NOT NULL DEFAULT '[]' CHECK (json_valid("tables") AND json_type("tables") = 'array'),
    sql_hint       TEXT NOT NULL DEFAULT '',
    content_sha256 TEXT NOT NULL,
    updated_at     TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%f000Z', 'now'))
) STRICT;

-- Demo data; amounts in integer cents, positive = money in, negative = money out.
CREATE TABLE accounting_transactions (
    id           INTEGER PRIMARY KEY,
    external_ref TEXT    NOT NULL UNIQUE,
    txn_date     TEXT    NOT NULL CHECK (txn_date GLOB '[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]'),
    account      TEXT    NOT NULL,
    description  TEXT    NOT NULL DEFAULT '',
    amount_cents INTEGER NOT NULL,
    currency     TEXT    NOT NULL DEFAULT 'USD' CHECK (length(currency) = 3),
    created_at   TEXT    NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%f000Z', 'now'))
) STRICT;
CREATE INDEX accounting_transactions_txn_date_idx ON accounting_transactions (txn_date);
CREATE INDEX accounting_transactions_account_idx ON accounting_transactions (account);

-- +goose Down
DROP TABLE accounting_transactions;
DROP TABLE business_ontologies;
DROP TABLE configurations;
DROP TABLE audit_logs;
DROP TABLE feedback;
DROP TABLE queries;
DROP TABLE users;
