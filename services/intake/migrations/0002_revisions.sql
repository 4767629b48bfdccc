-- depends: 0001_incidents
-- Corrections change an incident in place and count its versions; a withdrawn incident is
-- kept (for audit and idempotent retries), never deleted.
ALTER TABLE intake.incidents
    ADD COLUMN revision          int NOT NULL DEFAULT 1 CHECK (revision >= 1),
    ADD COLUMN withdrawn_at      timestamptz,
    ADD COLUMN withdrawal_reason text,
    ADD CONSTRAINT incidents_withdrawal_complete CHECK ((withdrawn_at IS NULL) = (withdrawal_reason IS NULL));
