-- depends: 0004_api_keys
-- The only place a subject's identifier is kept: encrypted (AES-GCM) for letters to the
-- patient and their GP, read only by the correspondence role, purged after retention.
CREATE TABLE intake.identities (
    subject_id   text PRIMARY KEY,
    kind         text NOT NULL CHECK (kind IN ('nhs', 'local')),
    organisation text NOT NULL,
    nonce        bytea NOT NULL,
    ciphertext   bytea NOT NULL,
    first_seen   timestamptz NOT NULL DEFAULT now(),
    last_seen    timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX identities_last_seen_idx ON intake.identities (last_seen);

-- Pseudonym digests per key version, so a new key finds the subject an older key named.
CREATE TABLE intake.pseudonyms (
    key_version int NOT NULL,
    digest      text NOT NULL,
    subject_id  text NOT NULL,
    PRIMARY KEY (key_version, digest)
);

-- Every re-identification and purge, with who and why; rows are only ever inserted.
CREATE TABLE intake.audit (
    id         bigserial PRIMARY KEY,
    at         timestamptz NOT NULL DEFAULT now(),
    actor      text NOT NULL,
    action     text NOT NULL,
    subject_id text,
    purpose    text
);
CREATE FUNCTION intake.audit_is_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'intake.audit is append-only';
END $$;
CREATE TRIGGER audit_append_only BEFORE UPDATE OR DELETE ON intake.audit
    FOR EACH ROW EXECUTE FUNCTION intake.audit_is_append_only();
CREATE INDEX incidents_received_idx ON intake.incidents (received_at) WHERE narrative IS NOT NULL;
