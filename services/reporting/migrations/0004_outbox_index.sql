-- depends: 0003_audit
-- Relayed rows are deleted, never marked sent, so this index only repeated the primary key.
DROP INDEX IF EXISTS reporting.outbox_unsent_idx;
