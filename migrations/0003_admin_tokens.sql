-- Admin API tokens. Only the SHA-256 of each secret is kept: a token is 256 random bits, so a
-- fast hash is as good as a slow one, and a lookup by hash never compares secrets.
CREATE TABLE admin_tokens (
    name TEXT PRIMARY KEY,
    role TEXT NOT NULL,
    secret_sha256 TEXT NOT NULL UNIQUE,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NULL,
    created_by TEXT NOT NULL
);
