-- Intake owns the only copy of the narrative; identifiers are never stored, only pseudonyms.
-- `vanda migrate` makes the schema before this runs, unless an administrator made it for
-- the service's own database user, who then need not be allowed to create schemas.

CREATE TABLE intake.incidents (
    incident_id           uuid PRIMARY KEY,
    source_system         text NOT NULL,
    source_ref            text NOT NULL,
    subject_id            text,
    pseudonym_key_version int,
    fingerprint           text NOT NULL,
    event                 jsonb NOT NULL,
    narrative             text,
    received_at           timestamptz NOT NULL DEFAULT now(),
    UNIQUE (source_system, source_ref)
);
CREATE INDEX incidents_subject_idx ON intake.incidents (subject_id);

CREATE TABLE intake.outbox (
    seq        bigserial PRIMARY KEY,
    event_id   text NOT NULL UNIQUE,
    topic      text NOT NULL,
    key        text NOT NULL,
    event_type text NOT NULL,
    payload    bytea NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    sent_at    timestamptz
);
CREATE INDEX outbox_unsent_idx ON intake.outbox (seq) WHERE sent_at IS NULL;

CREATE TABLE intake.inbox (
    event_id     text PRIMARY KEY,
    topic        text NOT NULL,
    processed_at timestamptz NOT NULL DEFAULT now()
);
