-- depends: 0011_local_id_source
-- Which pseudonym key each version names, as a digest of the key (never the key): a key
-- replaced without a new version would give every person a new subject, silently, and miss
-- every local id and retry stored before. Intake refuses to start with a key that differs.
CREATE TABLE intake.pseudonym_keys (
    version    int PRIMARY KEY,
    key_id     text NOT NULL,
    first_seen timestamptz NOT NULL DEFAULT now()
);
