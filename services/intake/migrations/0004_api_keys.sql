-- depends: 0003_idempotency_keys
-- One key per upstream system: only a SHA-256 digest of the secret is kept, so a stolen
-- table does not let anyone submit; `sources` lists the source_system names it may use.
CREATE TABLE intake.api_keys (
    key_id        text PRIMARY KEY,
    name          text NOT NULL,
    secret_sha256 bytea NOT NULL,
    sources       text[] NOT NULL CHECK (cardinality(sources) > 0),
    created_at    timestamptz NOT NULL DEFAULT now(),
    revoked_at    timestamptz
);
