-- Sanctions keeps only pseudonymous subject ids and the facts its rules need.
-- `vanda migrate` makes the schema before this runs, unless an administrator made it for
-- the service's own database user, who then need not be allowed to create schemas.

-- One row per subject: the domain state as JSON, rewritten in the transaction that changes it.
CREATE TABLE sanctions.subjects (
    subject_id text PRIMARY KEY,
    state      jsonb NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now()
);

-- A queryable copy of each card, for lookups by id, worklists and the scheduler.
CREATE TABLE sanctions.cards (
    sanction_id uuid PRIMARY KEY,
    subject_id  text NOT NULL REFERENCES sanctions.subjects (subject_id),
    kind        text NOT NULL,
    status      text NOT NULL,
    incident_id uuid NOT NULL,
    starts_at   timestamptz,
    ends_at     timestamptz,
    review_sent boolean NOT NULL DEFAULT false,
    appeal      text NOT NULL DEFAULT 'none',
    updated_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX cards_subject_idx ON sanctions.cards (subject_id);
CREATE INDEX cards_active_idx ON sanctions.cards (ends_at) WHERE status = 'active';
CREATE INDEX cards_pending_idx ON sanctions.cards (status) WHERE status = 'proposed';

-- Every decision event, as published: the explainable history.
CREATE TABLE sanctions.decisions (
    decision_id    uuid PRIMARY KEY,
    subject_id     text NOT NULL,
    event_type     text NOT NULL,
    incident_id    uuid NOT NULL,
    rule           text NOT NULL,
    policy_version text NOT NULL,
    payload        jsonb NOT NULL,
    decided_at     timestamptz NOT NULL,
    seq            bigserial
);
CREATE INDEX decisions_subject_idx ON sanctions.decisions (subject_id, seq);

-- Who decided what and why; rows are only ever inserted.
CREATE TABLE sanctions.audit (
    id          bigserial PRIMARY KEY,
    at          timestamptz NOT NULL DEFAULT now(),
    actor       text NOT NULL,
    action      text NOT NULL,
    sanction_id uuid,
    subject_id  text,
    reason      text
);
CREATE FUNCTION sanctions.audit_is_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'sanctions.audit is append-only';
END $$;
CREATE TRIGGER audit_append_only BEFORE UPDATE OR DELETE ON sanctions.audit
    FOR EACH ROW EXECUTE FUNCTION sanctions.audit_is_append_only();

CREATE TABLE sanctions.outbox (
    seq        bigserial PRIMARY KEY,
    event_id   text NOT NULL UNIQUE,
    topic      text NOT NULL,
    key        text NOT NULL,
    event_type text NOT NULL,
    payload    bytea NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    sent_at    timestamptz
);
CREATE INDEX outbox_unsent_idx ON sanctions.outbox (seq) WHERE sent_at IS NULL;

CREATE TABLE sanctions.inbox (
    event_id     text PRIMARY KEY,
    topic        text NOT NULL,
    processed_at timestamptz NOT NULL DEFAULT now()
);
