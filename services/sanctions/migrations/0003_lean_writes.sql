-- depends: 0002_state_as_json
-- A decision's payload is only ever read whole (a subject's history): plain json keeps the
-- text the outbox publishes, with no conversion to jsonb on insert.
ALTER TABLE sanctions.decisions ALTER COLUMN payload TYPE json USING payload::json;
-- Relayed rows are deleted, never marked sent, so this index only repeated the primary key.
DROP INDEX IF EXISTS sanctions.outbox_unsent_idx;
