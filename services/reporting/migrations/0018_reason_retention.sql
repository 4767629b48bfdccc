-- depends: 0017_incidents_withdrawn
-- Why a footage deletion was retracted is free text, and can name a person or describe
-- their health. The retractions and the audit keep who did what, and when, for good, but
-- the words only for the retention period (REPORTING_RETENTION_DAYS), as sanctions keeps
-- reviewers' reasons: the one change the append-only rule allows is clearing a reason,
-- once, with the time it went.
ALTER TABLE reporting.footage_retractions ALTER COLUMN reason DROP NOT NULL,
    ADD COLUMN reason_purged_at timestamptz;
ALTER TABLE reporting.audit ADD COLUMN reason_purged_at timestamptz;
CREATE INDEX footage_retractions_reasons_held_idx ON reporting.footage_retractions (retracted_at)
    WHERE reason IS NOT NULL;
CREATE INDEX audit_reasons_held_idx ON reporting.audit (at)
    WHERE action = 'footage_deletion_retracted' AND reason_purged_at IS NULL;

-- A retraction's audit row ends " reason=<the words>": cleared, it ends " reason=(cleared)".
-- From the first " reason=", so that whatever else the row holds, no part of the words stays.
CREATE FUNCTION reporting.reason_cleared(what text) RETURNS text LANGUAGE sql IMMUTABLE AS $$
    SELECT left(what, position(' reason=' IN what) - 1) || ' reason=(cleared)'
$$;

CREATE OR REPLACE FUNCTION reporting.audit_is_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'UPDATE' AND OLD.action = 'footage_deletion_retracted' AND position(' reason=' IN OLD.what) > 0
            AND OLD.reason_purged_at IS NULL AND NEW.reason_purged_at IS NOT NULL
            AND NEW.what = reporting.reason_cleared(OLD.what)
            AND (NEW.id, NEW.at, NEW.actor, NEW.action) IS NOT DISTINCT FROM (OLD.id, OLD.at, OLD.actor, OLD.action) THEN
        RETURN NEW;
    END IF;
    RAISE EXCEPTION 'reporting.audit is append-only (a reason past its retention may only be cleared)';
END $$;

-- The retractions had the audit's function; they get one of their own, as their columns differ.
CREATE FUNCTION reporting.footage_retractions_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'UPDATE' AND OLD.reason IS NOT NULL AND NEW.reason IS NULL
            AND OLD.reason_purged_at IS NULL AND NEW.reason_purged_at IS NOT NULL
            AND (NEW.id, NEW.incident_id, NEW.deleted_at, NEW.recorded_by, NEW.unplanned, NEW.retracted_by,
                 NEW.retracted_at)
                IS NOT DISTINCT FROM (OLD.id, OLD.incident_id, OLD.deleted_at, OLD.recorded_by, OLD.unplanned,
                                      OLD.retracted_by, OLD.retracted_at) THEN
        RETURN NEW;
    END IF;
    RAISE EXCEPTION 'reporting.footage_retractions is append-only (a reason past its retention may only be cleared)';
END $$;
DROP TRIGGER footage_retractions_append_only ON reporting.footage_retractions;
CREATE TRIGGER footage_retractions_append_only BEFORE UPDATE OR DELETE ON reporting.footage_retractions
    FOR EACH ROW EXECUTE FUNCTION reporting.footage_retractions_append_only();
