-- depends: 0002_facts
-- Every read of unsuppressed counts, by whom; rows are only ever inserted.
CREATE TABLE reporting.audit (
    id     bigserial PRIMARY KEY,
    at     timestamptz NOT NULL DEFAULT now(),
    actor  text NOT NULL,
    action text NOT NULL,
    what   text NOT NULL
);
CREATE FUNCTION reporting.audit_is_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'reporting.audit is append-only';
END $$;
CREATE TRIGGER audit_append_only BEFORE UPDATE OR DELETE ON reporting.audit
    FOR EACH ROW EXECUTE FUNCTION reporting.audit_is_append_only();
