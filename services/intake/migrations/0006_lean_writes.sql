-- depends: 0005_identity_vault
-- The stored event is only ever read whole: plain json keeps the text as written, so
-- PostgreSQL no longer converts every incident to jsonb on insert.
ALTER TABLE intake.incidents ALTER COLUMN event TYPE json USING event::json;
-- Relayed rows are deleted, never marked sent, so this index only repeated the primary key
-- while costing a second index entry for every event staged.
DROP INDEX IF EXISTS intake.outbox_unsent_idx;
