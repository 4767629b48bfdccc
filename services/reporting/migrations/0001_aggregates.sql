-- Reporting holds counts only: no subject id, identifier or narrative.
-- `vanda migrate` makes the schema before this runs, unless an administrator made it for
-- the service's own database user, who then need not be allowed to create schemas.

CREATE TABLE reporting.monthly_counts (
    month        date NOT NULL,
    organisation text NOT NULL,
    site         text NOT NULL,
    measure      text NOT NULL,
    dimension    text NOT NULL,
    count        bigint NOT NULL CHECK (count >= 0),
    PRIMARY KEY (month, organisation, site, measure, dimension)
);

-- The cells each incident counts in (categories only), so an amendment or withdrawal
-- can take back exactly what the incident added.
CREATE TABLE reporting.incident_cells (
    incident_id uuid PRIMARY KEY,
    cells       jsonb NOT NULL
);

CREATE TABLE reporting.outbox (
    seq        bigserial PRIMARY KEY,
    event_id   text NOT NULL UNIQUE,
    topic      text NOT NULL,
    key        text NOT NULL,
    event_type text NOT NULL,
    payload    bytea NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    sent_at    timestamptz
);
CREATE INDEX outbox_unsent_idx ON reporting.outbox (seq) WHERE sent_at IS NULL;

CREATE TABLE reporting.inbox (
    event_id     text PRIMARY KEY,
    topic        text NOT NULL,
    processed_at timestamptz NOT NULL DEFAULT now()
);
