-- Initial schema of the control plane. Portable between Postgres and SQLite: BIGINT integers,
-- unix-millisecond timestamps, JSON as TEXT, 0/1 instead of BOOLEAN.

-- The one row holding the latest revision. Every write starts by incrementing it, which
-- serialises writers (row lock on Postgres, write lock on SQLite).
CREATE TABLE revision_head (
    id BIGINT PRIMARY KEY CHECK (id = 1),
    revision BIGINT NOT NULL
);

INSERT INTO revision_head (id, revision) VALUES (1, 0);

-- One row per committed revision.
CREATE TABLE revisions (
    revision BIGINT PRIMARY KEY,
    actor TEXT NOT NULL,
    message TEXT NOT NULL,
    digest TEXT NOT NULL,
    created_at BIGINT NOT NULL
);

-- The current state: one row per entity, spec = the entity JSON.
CREATE TABLE resources (
    kind TEXT NOT NULL,
    name TEXT NOT NULL,
    spec TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    revision BIGINT NOT NULL,
    PRIMARY KEY (kind, name)
);

-- What each revision changed; a NULL spec means the entity was deleted.
CREATE TABLE resource_history (
    revision BIGINT NOT NULL,
    kind TEXT NOT NULL,
    name TEXT NOT NULL,
    spec TEXT NULL,
    PRIMARY KEY (revision, kind, name)
);

-- Data-plane workers as last seen by any control-plane replica. `stream` identifies the stream
-- that owns the row, so that a stale stream closing late cannot mark a reconnected worker as
-- disconnected.
CREATE TABLE nodes (
    id TEXT PRIMARY KEY,
    node_group TEXT NOT NULL,
    build TEXT NOT NULL,
    applied_revision BIGINT NOT NULL,
    applied_digest TEXT NOT NULL,
    last_error TEXT NULL,
    connected BIGINT NOT NULL,
    last_seen BIGINT NOT NULL,
    first_seen BIGINT NOT NULL,
    replica TEXT NOT NULL,
    stream TEXT NOT NULL
);
