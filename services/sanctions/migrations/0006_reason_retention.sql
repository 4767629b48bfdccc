-- depends: 0005_two_people
-- Reviewers' reasons and appeal grounds are free text and can name people or describe their
-- health. The audit keeps who did what for good, but the words only for the retention period:
-- the one change the append-only rule allows is clearing a reason, once, with the time it went.
ALTER TABLE sanctions.audit ADD COLUMN reason_purged_at timestamptz;
CREATE INDEX audit_reasons_held_idx ON sanctions.audit (at) WHERE reason IS NOT NULL;

CREATE OR REPLACE FUNCTION sanctions.audit_is_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'UPDATE' AND OLD.reason IS NOT NULL AND NEW.reason IS NULL
            AND OLD.reason_purged_at IS NULL AND NEW.reason_purged_at IS NOT NULL
            AND (NEW.id, NEW.at, NEW.actor, NEW.action, NEW.sanction_id, NEW.subject_id)
                IS NOT DISTINCT FROM (OLD.id, OLD.at, OLD.actor, OLD.action, OLD.sanction_id, OLD.subject_id) THEN
        RETURN NEW;
    END IF;
    RAISE EXCEPTION 'sanctions.audit is append-only (a reason past its retention may only be cleared)';
END $$;
