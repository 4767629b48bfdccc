-- Sanctions keeps only pseudonymous subject ids and the facts its rules need.
CREATE SCHEMA IF NOT EXISTS sanctions;

CREATE TABLE sanctions.incidents (
    incident_id  uuid PRIMARY KEY,
    subject_id   text NOT NULL,
    occurred_at  timestamptz NOT NULL,
    qualifying   boolean NOT NULL,
    recorded_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX incidents_subject_idx ON sanctions.incidents (subject_id, occurred_at);

CREATE TABLE sanctions.decisions (
    decision_id    uuid PRIMARY KEY,
    subject_id     text NOT NULL,
    event_type     text NOT NULL,
    status         text NOT NULL,
    incident_id    uuid NOT NULL,
    rule           text NOT NULL,
    policy_version text NOT NULL,
    payload        jsonb NOT NULL,
    decided_at     timestamptz NOT NULL
);
CREATE INDEX decisions_subject_idx ON sanctions.decisions (subject_id, decided_at);

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
