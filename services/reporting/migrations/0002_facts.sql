-- Fact tables replace the first cut's counters: metrics are computed from facts per period,
-- so a definition can change without replaying anything, and a rebuild can be compared row
-- by row. No NHS number, name or narrative: events never carry them.
DROP TABLE IF EXISTS reporting.monthly_counts;
DROP TABLE IF EXISTS reporting.incident_cells;

CREATE TABLE reporting.incidents (
    incident_id      uuid PRIMARY KEY,
    -- Keyed pseudonym: counts repeat perpetrators; never shown on a board output.
    subject_id       text,
    occurred_at      timestamptz NOT NULL,
    organisation     text NOT NULL,
    site             text NOT NULL,
    location_type    text NOT NULL,
    category         text NOT NULL,
    sexual_assault   boolean NOT NULL,
    harm             text NOT NULL,
    perpetrator_kind text NOT NULL,
    medical_factors  boolean NOT NULL,
    age_band         text,
    vulnerabilities  text[] NOT NULL,
    staff            jsonb NOT NULL,
    hate_aggravation text[] NOT NULL,
    body_worn_camera boolean NOT NULL,
    police_informed  boolean NOT NULL,
    crime_reference  text,
    referred_at      timestamptz,
    police_outcome   text,
    revision         integer NOT NULL,
    withdrawn        boolean NOT NULL DEFAULT false
);
CREATE INDEX incidents_when_idx ON reporting.incidents (occurred_at);
CREATE INDEX incidents_where_idx ON reporting.incidents (organisation, site, occurred_at);

CREATE TABLE reporting.decisions (
    decision_id  uuid PRIMARY KEY,
    kind         text NOT NULL,
    sanction_id  uuid NOT NULL,
    incident_id  uuid NOT NULL,
    subject_id   text NOT NULL,
    organisation text NOT NULL,
    site         text NOT NULL,
    occurred_at  timestamptz NOT NULL,
    decided_at   timestamptz NOT NULL,
    starts_at    timestamptz,
    ends_at      timestamptz
);
CREATE INDEX decisions_when_idx ON reporting.decisions (decided_at);

-- One row per incident that met the referral criteria: PoliceReferralRequired went out once.
CREATE TABLE reporting.police_referrals (
    incident_id uuid PRIMARY KEY,
    criteria    text[] NOT NULL,
    required_at timestamptz NOT NULL DEFAULT now()
);

-- Staff in post, as the trust loads it per period (PUT /v1/workforce/{period}).
CREATE TABLE reporting.workforce (
    period       text NOT NULL,
    first_month  date NOT NULL,
    organisation text NOT NULL,
    site         text NOT NULL,
    staff_group  text NOT NULL,
    ethnic_group text NOT NULL,
    headcount    integer NOT NULL CHECK (headcount >= 0),
    PRIMARY KEY (period, organisation, site, staff_group, ethnic_group)
);

CREATE TABLE reporting.objectives (
    metric     text PRIMARY KEY,
    target     double precision NOT NULL,
    direction  text NOT NULL,
    tolerance  double precision NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now()
);

-- Closed months whose BoardMetricsPublished is in the outbox: each goes out once.
CREATE TABLE reporting.published_months (
    month        date NOT NULL,
    organisation text NOT NULL,
    event_id     text NOT NULL,
    published_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (month, organisation)
);
