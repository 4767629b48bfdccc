-- depends: 0002_revisions
-- An upstream retry may carry an Idempotency-Key instead of (or as well as) reusing its
-- source_ref; the key is unique per source system and answers with the original receipt.
ALTER TABLE intake.incidents ADD COLUMN idempotency_key text;
CREATE UNIQUE INDEX incidents_idempotency_key_idx ON intake.incidents (source_system, idempotency_key)
    WHERE idempotency_key IS NOT NULL;
