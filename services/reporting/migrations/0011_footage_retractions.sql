-- depends: 0010_footage_notice_rounds
-- A deletion recorded in error (the wrong incident, or the clip found after all) is
-- retracted: its record moves here with who retracted it, when and why, and the footage
-- reads as it stands again. Rows are only ever inserted, like the audit's.
CREATE TABLE reporting.footage_retractions (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    incident_id  uuid NOT NULL,
    deleted_at   timestamptz NOT NULL,
    recorded_by  text NOT NULL,
    unplanned    boolean NOT NULL,
    retracted_by text NOT NULL,
    retracted_at timestamptz NOT NULL DEFAULT now(),
    reason       text NOT NULL
);
CREATE INDEX footage_retractions_incident_idx ON reporting.footage_retractions (incident_id);
CREATE TRIGGER footage_retractions_append_only BEFORE UPDATE OR DELETE ON reporting.footage_retractions
    FOR EACH ROW EXECUTE FUNCTION reporting.audit_is_append_only();
