-- depends: 0007_keyed_fingerprints
-- The purpose a person gives to read an identity is free text ("letter to Mr X about ..."),
-- and can name people or describe their health. The audit keeps who read whose identity,
-- and when, for good; the words only for the retention period, like the narratives and the
-- identities themselves: the one change the append-only rule allows is clearing a purpose,
-- once, with the time it went.
ALTER TABLE intake.audit ADD COLUMN purpose_purged_at timestamptz;
CREATE INDEX audit_purposes_held_idx ON intake.audit (at) WHERE purpose IS NOT NULL AND action = 'identity_read';

CREATE OR REPLACE FUNCTION intake.audit_is_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'UPDATE' AND OLD.action = 'identity_read' AND OLD.purpose IS NOT NULL AND NEW.purpose IS NULL
            AND OLD.purpose_purged_at IS NULL AND NEW.purpose_purged_at IS NOT NULL
            AND (NEW.id, NEW.at, NEW.actor, NEW.action, NEW.subject_id)
                IS NOT DISTINCT FROM (OLD.id, OLD.at, OLD.actor, OLD.action, OLD.subject_id) THEN
        RETURN NEW;
    END IF;
    RAISE EXCEPTION 'intake.audit is append-only (a purpose past its retention may only be cleared)';
END $$;
